"""The world tokenizer: every world word is one token; it saves, reloads and feeds open_clip's HFTokenizer."""

from __future__ import annotations

from harness.world.scene import WORDS
from harness.world.tokenizer import learn_merges, shapes_tokenizer


def test_every_world_word_is_one_token():
    tokenizer = shapes_tokenizer()
    for word in WORDS:
        ids = tokenizer(word).input_ids
        assert len(ids) == 3, (word, tokenizer.convert_ids_to_tokens(ids))
    caption = "a purple star at the bottom and a white circle in the center"
    ids = tokenizer(caption).input_ids
    assert len(ids) == len(caption.split()) + 2
    assert tokenizer.decode(ids, skip_special_tokens=True) == caption


def test_other_text_still_encodes_through_bytes():
    tokenizer = shapes_tokenizer()
    text = "zebra 日本"
    assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True).replace(" ", "") == text.replace(
        " ", ""
    )


def test_round_trip_through_save_pretrained(tmp_path):
    from transformers import AutoTokenizer

    tokenizer = shapes_tokenizer()
    tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    caption = "a red circle on the left and a blue square at the top"
    assert reloaded(caption).input_ids == tokenizer(caption).input_ids
    assert reloaded.model_max_length == 32


def test_learned_merges_are_deterministic():
    assert learn_merges(["red", "green"]) == learn_merges(["red", "green"])
    _merges, symbols = learn_merges(["ab", "abc"])
    assert symbols[-1] in ("abc</w>", "ab</w>")


def test_t5_tokenizer_makes_world_words_single_pieces_and_saves(tmp_path):
    from transformers import AutoTokenizer

    from harness.world.tokenizer import shapes_t5_tokenizer

    tokenizer = shapes_t5_tokenizer()
    caption = "a purple star at the bottom and a white circle in the center"
    ids = tokenizer(caption).input_ids
    assert len(ids) == len(caption.split()) + 1  # one piece a word, then </s>
    assert tokenizer.decode(ids, skip_special_tokens=True) == caption
    assert len(tokenizer("zebra").input_ids) > 2  # other text still encodes, by characters
    tokenizer.save_pretrained(tmp_path)
    assert AutoTokenizer.from_pretrained(tmp_path)(caption).input_ids == ids

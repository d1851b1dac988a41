"""File-free tokenizers encode any text and decode it back."""

from __future__ import annotations

from harness.pipelines.tokenizers import byte_clip_tokenizer, byte_gemma_tokenizer, byte_symbols


def test_byte_symbols_are_a_bijection():
    symbols = byte_symbols()
    assert len(symbols) == 256 == len(set(symbols))
    assert symbols[ord("a")] == "a"


def test_clip_tokenizer_round_trips_any_text():
    tokenizer = byte_clip_tokenizer()
    assert len(tokenizer) == 514 and tokenizer.model_max_length == 77
    text = "a red circle, ünïcode 日本 & emoji 🙂"
    ids = tokenizer(text).input_ids
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded.replace(" ", "") == text.lower().replace(" ", "")


def test_clip_tokenizer_merged_words_are_single_tokens():
    tokenizer = byte_clip_tokenizer(merges=["r e", "re d</w>"], words=["re", "red</w>"])
    ids = tokenizer("red").input_ids
    assert len(ids) == 3  # bos, red, eos


def test_gemma_tokenizer_round_trips():
    tokenizer = byte_gemma_tokenizer()
    assert len(tokenizer) == 262
    text = "a blue square 日本"
    assert tokenizer.decode(tokenizer(text).input_ids, skip_special_tokens=True) == text

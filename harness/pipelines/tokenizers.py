"""Tokenizers built from no files, so the built-in pipelines need nothing on disk.

Both encode any text: the CLIP one through its 256 byte-level symbols (plus their
end-of-word forms), the Gemma one through byte fallback.
"""

from __future__ import annotations

from typing import Any


def byte_symbols() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for raw bytes, in byte order."""
    printable = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    by_byte = dict(zip(printable, codes, strict=True))
    return [chr(by_byte[byte]) for byte in range(256)]


def byte_clip_tokenizer(
    model_max_length: int = 77, merges: list[str] | None = None, words: list[str] | None = None
) -> Any:
    """A ``CLIPTokenizer`` over byte symbols (514 tokens), optionally with extra merged words.

    ``merges`` are BPE merge rules (``"a b"``) and ``words`` the merged tokens they produce;
    the shapes world uses them to make each of its words a single token.
    """
    from transformers import CLIPTokenizer

    symbols = byte_symbols()
    vocab: dict[str, int] = {}
    for symbol in symbols:
        vocab[symbol] = len(vocab)
    for symbol in symbols:
        vocab[symbol + "</w>"] = len(vocab)
    for word in words or []:
        vocab.setdefault(word, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    pairs = [tuple(rule.split(" ")) for rule in merges or []]
    # transformers 5 annotates merges as strings, but its Rust backend takes (left, right) tuples
    tokenizer = CLIPTokenizer(vocab=vocab, merges=pairs)  # type: ignore[arg-type]
    tokenizer.model_max_length = model_max_length
    return tokenizer


def byte_gemma_tokenizer(model_max_length: int = 300) -> Any:
    """A ``GemmaTokenizer`` of 262 tokens: specials, the 256 ``<0xNN>`` bytes and the word marker."""
    from transformers import GemmaTokenizer

    vocab: dict[str, int] = {"<pad>": 0, "<eos>": 1, "<bos>": 2, "<unk>": 3, "<mask>": 4}
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    vocab["▁"] = len(vocab)
    tokenizer = GemmaTokenizer(vocab=vocab, merges=[])
    tokenizer.model_max_length = model_max_length
    return tokenizer


def byte_t5_tokenizer(model_max_length: int = 512) -> Any:
    """A ``T5Tokenizer`` (Unigram) over single characters: specials, the word marker and printable ASCII.

    Any other character maps to ``<unk>``; word pieces are single characters, so every
    prompt encodes the same way on every machine with no vocabulary file.
    """
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(chr(code), -3.0) for code in range(ord("!"), ord("~") + 1)]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    tokenizer.model_max_length = model_max_length
    return tokenizer

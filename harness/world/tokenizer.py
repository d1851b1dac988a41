"""The shapes world's tokenizer: a byte-level CLIPTokenizer whose world words are single tokens.

The merges are learned by plain BPE on the world's words (most frequent adjacent pair
first, ties broken alphabetically), applied until every word is one symbol, so each
word tokenizes to exactly one id while any other text still encodes through bytes.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

from harness.pipelines.tokenizers import byte_clip_tokenizer
from harness.world.scene import WORDS

CONTEXT = 32


def learn_merges(words: list[str]) -> tuple[list[str], list[str]]:
    """BPE merges (``"a b"``) that make each word one symbol, and the new symbols in order."""
    segmented = [[*list(word[:-1]), word[-1] + "</w>"] for word in words if len(word) > 1]
    merges: list[str] = []
    symbols: list[str] = []
    while any(len(parts) > 1 for parts in segmented):
        pairs = Counter((a, b) for parts in segmented for a, b in itertools.pairwise(parts))
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))
        merged = best[0] + best[1]
        merges.append(f"{best[0]} {best[1]}")
        symbols.append(merged)
        for index, parts in enumerate(segmented):
            out, position = [], 0
            while position < len(parts):
                if position + 1 < len(parts) and (parts[position], parts[position + 1]) == best:
                    out.append(merged)
                    position += 2
                else:
                    out.append(parts[position])
                    position += 1
            segmented[index] = out
    return merges, symbols


def shapes_tokenizer() -> Any:
    """514 byte tokens plus the merged world words; context length 32."""
    merges, symbols = learn_merges(WORDS)
    return byte_clip_tokenizer(model_max_length=CONTEXT, merges=merges, words=symbols)


def shapes_t5_tokenizer(model_max_length: int = 64, words: list[str] | None = None) -> Any:
    """A ``T5Tokenizer`` (Unigram) whose world words (``words``, default the still world's) are one piece each
    (``"▁red"``), for the T5-style encoders.

    Other text falls back to the character pieces of the built-in T5 tokenizer, so any
    prompt still encodes. The scores make a whole word beat its spelling.
    """
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + word, -1.0) for word in (WORDS if words is None else words)]
    pieces += [(chr(code), -3.0) for code in range(ord("!"), ord("~") + 1)]
    tokenizer = T5Tokenizer(vocab=pieces, extra_ids=0)
    tokenizer.model_max_length = model_max_length
    return tokenizer

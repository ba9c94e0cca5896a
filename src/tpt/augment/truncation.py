"""Cut documents to the teacher's token budget (`--max-doc-tokens`), for every backend.

The kept text is always a prefix of the document, and its count is exact in the teacher's tokenizer:
a cut after token n can re-merge at its end when the prefix is tokenized alone, so every cut text is
re-counted and cut again until it fits. `truncate_texts` takes a `tokenizers.Tokenizer` (the openai
backend's `--tokenizer`) or a transformers tokenizer (the transformers and vllm backends), whose Rust
backend does the work in batches; a slow, Python-only transformers tokenizer is cut by decoding.
Without any tokenizer (openai with no `--tokenizer`), `truncate_approx` estimates 4 characters per
token.
"""

from __future__ import annotations

from typing import Any

APPROX_CHARS_PER_TOKEN = 4


def truncate_texts(tokenizer: Any, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
    """(kept prefix, its token count, cut?) per text, at most max_tokens tokens each."""
    rust = rust_tokenizer(tokenizer)
    if rust is None:
        return [_truncate_slow(tokenizer, text, max_tokens) for text in texts]
    return _truncate_fast(rust, texts, max_tokens)


def rust_tokenizer(tokenizer: Any) -> Any | None:
    """The `tokenizers.Tokenizer` behind `tokenizer` as documents are encoded: a copy without
    truncation, padding or matched control tokens (control.text_only; a document's `<|im_end|>` is
    counted as the text it is); None if slow."""
    from tpt.core.control_tokens import text_only

    return text_only(tokenizer)


def truncate_approx(text: str, max_tokens: int) -> tuple[str, int, bool]:
    """~4 characters per token, cut at a whitespace boundary: the count is an estimate."""
    limit = max(0, max_tokens) * APPROX_CHARS_PER_TOKEN
    if len(text) <= limit:
        return text, -(-len(text) // APPROX_CHARS_PER_TOKEN), False
    cut = max(text.rfind(ws, 0, limit + 1) for ws in " \n\t")
    if cut < limit // 2:  # no whitespace near the limit (a URL, CJK text): cut mid-word
        cut = limit
    kept = text[:cut].rstrip()
    return kept, -(-len(kept) // APPROX_CHARS_PER_TOKEN), True


def _truncate_fast(tokenizer: Any, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
    """Cut after token max_tokens, then recount the kept text (a cut can re-merge at its end)."""
    if max_tokens <= 0:
        return [("", 0, bool(t)) for t in texts]
    heads = _encode_heads(tokenizer, texts, max_tokens)
    out = [_first_cut(text, enc, max_tokens) for text, enc in heads]
    todo = [i for i, (_, _, cut) in enumerate(out) if cut]
    for _ in range(8):  # each round strictly shortens any text still over the limit
        if not todo:
            break
        kept_texts = [out[i][0] for i in todo]
        encodings = tokenizer.encode_batch(kept_texts, add_special_tokens=False)
        again = []
        for i, kept, enc in zip(todo, kept_texts, encodings, strict=True):
            if len(enc.ids) <= max_tokens:
                out[i] = (kept, len(enc.ids), True)
                continue
            start, end = enc.offsets[max_tokens - 1]
            # A character split over several byte-level tokens ends where it ends: cut before it.
            out[i] = (kept[: end if end < len(kept) else start], -1, True)
            again.append(i)
        todo = again
    for i in todo:  # not reached in practice; keep the count honest anyway
        kept = out[i][0]
        out[i] = (kept, len(tokenizer.encode(kept, add_special_tokens=False).ids), True)
    return out


def _encode_heads(tokenizer: Any, texts: list[str], max_tokens: int) -> list[tuple[str, Any]]:
    """(text, encoding of enough of its head to cut it), batch-encoded."""
    # Encoding a 1 MB page to keep 2k tokens is waste, and encoding time grows with characters:
    # encode 6 characters per wanted token (English averages ~4), and the whole text only when
    # that prefix holds too few tokens (long tokens: whitespace runs, repeated characters).
    window = max_tokens * 6
    heads = [t[:window] for t in texts]
    pairs = []
    for text, head, enc in zip(
        texts, heads, tokenizer.encode_batch(heads, add_special_tokens=False), strict=True
    ):
        if len(enc.ids) <= max_tokens and len(head) < len(text):
            enc = tokenizer.encode(text, add_special_tokens=False)
        pairs.append((text, enc))
    return pairs


def _first_cut(text: str, enc: Any, max_tokens: int) -> tuple[str, int, bool]:
    if len(enc.ids) <= max_tokens:
        return text, len(enc.ids), False
    return text[: enc.offsets[max_tokens - 1][1]], -1, True  # -1: recounted by the caller


def _truncate_slow(tok: Any, text: str, max_tokens: int) -> tuple[str, int, bool]:
    """A slow transformers tokenizer (no offsets): cut by decoding n tokens, stepping back until the
    decoded prefix re-counts within max_tokens."""
    ids = tok(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    if len(ids) <= max_tokens:
        return text, len(ids), False
    for n in range(max(0, max_tokens), 0, -1):
        kept = tok.decode(ids[:n], skip_special_tokens=False, clean_up_tokenization_spaces=False)
        if not text.startswith(kept):  # decoding normalised something: keep a true prefix
            kept = text[: len(kept)]
        count = len(tok(kept, add_special_tokens=False, split_special_tokens=True)["input_ids"])
        if count <= max_tokens:
            return kept, count, True
    return "", 0, True

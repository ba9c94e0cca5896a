"""The testbed's student tokenizer: one token per word, every number split into single digits, saved as a
Hugging Face tokenizer directory that decodes back to ordinary text (so numbers can be read off generations).

Its words are the testbed's own plus the GENERAL_WORDS most frequent words of the bundled sample corpus
(English prose, not the testbed and not any evaluation set), so that a real LLM teacher's thinking is
mostly words and not `<unk>`; the share of a teacher's words it covers is reported. The vocabulary is
fixed before any teacher runs, the same for every arm.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from tpt.core.artifacts import write_atomic, write_json
from tpt.reproduce.knowledge import vocabulary as knowledge_vocabulary
from tpt.reproduce.problems import vocabulary

EOS = "<|endoftext|>"
PAD = "<pad>"
UNK = "<unk>"
THINK_TAGS = ("<think>", "</think>")
SPACE = "\u2581"  # the Metaspace marker: "has 55." -> "▁has", "▁5", "5", "."
PUNCTUATION = (".", ",", "?", ":", "!", ";", "=", "+", "-", "(", ")")
# After Metaspace, each piece is a word, one digit or one symbol, with the space marker kept on its front:
# "▁has▁55." -> "▁has", "▁5", "5", "."
PIECE = r"\u2581?[0-9]|\u2581?[A-Za-z]+|\u2581?[^A-Za-z0-9\u2581]"


def build_vocab() -> dict[str, int]:
    """Specials first (pad 0, eos 1, unk 2), think tags, the space marker, digits, punctuation, words."""
    symbols = [*"0123456789", *PUNCTUATION]
    tokens = [PAD, EOS, UNK, *THINK_TAGS, SPACE, *symbols, *(SPACE + s for s in symbols)]
    tokens += [SPACE + w for w in vocabulary() if w not in PUNCTUATION]
    tokens += [SPACE + w for w in general_words()]
    # The knowledge world's words come last, so the arithmetic world's ids are those it always had.
    tokens += [SPACE + w for w in knowledge_vocabulary()]
    return {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}


GENERAL_WORDS = 1000


def general_words(n: int = GENERAL_WORDS) -> list[str]:
    """The n most frequent words (letter runs, case kept) of the bundled sample corpus; ties by spelling."""
    from tpt.reproduce.trajectories import WORD, sample_corpus_dir

    counts: Counter[str] = Counter()
    for path in sorted(sample_corpus_dir().glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                counts.update(WORD.findall(json.loads(line)["text"]))
    return [w for w, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def word_coverage(texts: list[str]) -> float:
    """Share of the words (letter runs) of `texts` that the tokenizer has (the rest become `<unk>`)."""
    from tpt.reproduce.trajectories import WORD

    vocab = {tok.removeprefix(SPACE) for tok in build_vocab()}
    words = [w for t in texts for w in WORD.findall(t)]
    return sum(w in vocab for w in words) / len(words) if words else 1.0


def tokenizer_json() -> dict:
    """A `tokenizers` WordLevel model with Metaspace + digit + punctuation pre-tokenization."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel(vocab=build_vocab(), unk_token=UNK))
    # Whitespace runs become one space, and none is kept around the think tags (a lone "▁" token would
    # be wasted): the testbed's layout carries no information, only its words do.
    tok.normalizer = normalizers.Sequence(
        [normalizers.Replace(Regex(r"\s+"), " ")]
        + [normalizers.Replace(Regex(rf"\s*{tag}\s*"), tag) for tag in THINK_TAGS]
    )
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Metaspace(replacement=SPACE, prepend_scheme="always", split=True),
            pre_tokenizers.Split(Regex(PIECE), behavior="isolated"),
        ]
    )
    tok.decoder = decoders.Metaspace(replacement=SPACE, prepend_scheme="always", split=True)
    tok.add_special_tokens([PAD, EOS, UNK])
    tok.add_tokens(list(THINK_TAGS))
    return json.loads(tok.to_str())


def save_testbed_tokenizer(out_dir: Path) -> Path:
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json; return the directory."""
    out_dir = Path(out_dir)
    write_atomic(out_dir / "tokenizer.json", json.dumps(tokenizer_json(), ensure_ascii=False, indent=1))
    specials = {"eos_token": EOS, "pad_token": PAD, "unk_token": UNK}
    write_json(
        out_dir / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": 1 << 20,
            "clean_up_tokenization_spaces": False,
            **specials,
        },
    )
    write_json(out_dir / "special_tokens_map.json", specials)
    return out_dir

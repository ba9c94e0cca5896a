"""`tpt pack --control shuffled|filler`: construction on the bundled sample corpus, and the pure API."""

from __future__ import annotations

import collections
import json
import random
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from tpt.cli import main
from tpt.core.errors import ConfigError, InputError
from tpt.pack.controls import (
    BucketKey,
    Derangement,
    Filler,
    _Permutation,
    derangement,
    filler_text,
    filler_unit,
    thinking_bucket,
)
from tpt.pack.stage import PackConfig, run
from tpt.quality.checks import CheckConfig

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))
# The synthetic thinking restates its document (copy check off); one document repeats itself.
CHECKS = CheckConfig(disabled=frozenset({"copy", "repetition"}))


@pytest.fixture(scope="module")
def bpe(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bpe") / "tok"
    assert main(["tokenizer", "train", str(CORPUS), "--vocab-size", "1000", "--output", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def augmented(tmp_path_factory) -> Path:
    """The 48 sample documents, each with a distinct synthetic trajectory (its sentences reversed, cut
    to a length that varies by document so that several length buckets are filled)."""
    out = tmp_path_factory.mktemp("aug") / "records.jsonl"
    with open(out, "w", encoding="utf-8") as f:
        for n, path in enumerate(sorted(CORPUS.glob("*.jsonl"))):
            for i, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
                doc = json.loads(line)
                words = " ".join(reversed(doc["text"].split(". "))).split()
                thinking = f"Step {n}.{i}: " + " ".join(words[: 30 + 40 * ((i * 7 + n) % 12)])
                rec = {"id": doc["id"], "text": doc["text"], "thinking": thinking, "source": doc["source"]}
                f.write(json.dumps({**rec, "finish_reason": "stop"}) + "\n")
    return out


def pack(tmp_path: Path, inputs, tok, name: str, **kw) -> tuple[Path, dict]:
    kw.setdefault("shuffle_buffer", 0)
    kw.setdefault("checks", CHECKS)
    kw.setdefault("workers", 0)
    out = tmp_path / name
    summary = run(
        PackConfig(inputs=tuple(map(str, inputs)), output=out, tokenizer=str(tok), seq_len=128, **kw),
        log=lambda *_: None,
    )
    return out, summary.to_json()


def samples(out: Path) -> list[dict]:
    """The packed samples in order (shuffle buffer 0): document, thinking (None: raw) and template ids."""
    index = json.loads((out / "index.json").read_text())
    tokens = np.concatenate([np.load(out / f"{s['name']}.tokens.npy").ravel() for s in index["shards"]])
    kinds = np.concatenate([np.load(out / f"{s['name']}.kinds.npy").ravel() for s in index["shards"]])
    cut = np.flatnonzero(np.diff(kinds)) + 1
    found: list[dict] = []
    for ids, kind in zip(np.split(tokens, cut), np.split(kinds, cut), strict=True):
        k = int(kind[0])
        if k == 1:
            found.append({"document": tuple(ids.tolist()), "thinking": None, "template": []})
        elif k == 2:
            found[-1]["thinking"] = tuple(ids.tolist())
        elif k == 3:
            found[-1]["template"].append(tuple(ids.tolist()))
    return found


def token_counts(stats: dict) -> dict:
    keys = ("documents", "raw_samples", "augmented_samples", "rows", "document_tokens", "thinking_tokens",
            "template_tokens", "total_tokens", "pad_tokens", "records")  # fmt: skip
    per_source = {
        name: {k: s[k] for k in ("documents", "document_tokens", "thinking_tokens", "template_tokens")}
        for name, s in stats["by_source"].items()
    }
    return {**{k: stats[k] for k in keys}, "by_source": per_source}


def source_of(records: Path) -> list[str]:
    return [json.loads(line)["source"] for line in records.read_text().splitlines()]


def test_shuffled_pairs_every_document_with_another_documents_trajectory(tmp_path, bpe, augmented):
    tpt, tpt_stats = pack(tmp_path, [augmented], bpe, "tpt")
    ctl, ctl_stats = pack(tmp_path, [augmented], bpe, "shuffled", control="shuffled")
    a, b = samples(tpt), samples(ctl)
    assert len(a) == len(b) == 48
    # Every byte but the thinking is the TPT arm's, and so is the token accounting, per source too.
    assert [s["document"] for s in a] == [s["document"] for s in b]
    assert [s["template"] for s in a] == [s["template"] for s in b]
    assert token_counts(ctl_stats) == token_counts(tpt_stats)
    # The same multiset of trajectories, each used once; no document keeps its own.
    own = [s["thinking"] for s in a]
    got = [s["thinking"] for s in b]
    assert collections.Counter(got) == collections.Counter(own) and len(set(own)) == 48
    partner = [own.index(t) for t in got]
    assert all(p != i for i, p in enumerate(partner))
    # Within the buckets: the same source, and a length bucket of its own merged group.
    sources = source_of(augmented)
    assert all(sources[p] == sources[i] for i, p in enumerate(partner))
    buckets = [thinking_bucket(len(t)) for t in own]
    # Greedy merging joins only buckets of one trajectory to a neighbour: of two partners in different
    # buckets, one bucket holds a single trajectory of their source.
    size = collections.Counter(zip(sources, buckets, strict=True))
    for i, p in enumerate(partner):
        if buckets[p] != buckets[i]:
            assert 1 in (size[sources[i], buckets[i]], size[sources[p], buckets[p]])
    assert sum(buckets[p] == buckets[i] for i, p in enumerate(partner)) > 24
    assert len(set(buckets)) >= 4  # the fixture fills several buckets
    # It is the pure API's pairing of the same items.
    keys = [BucketKey(s, b) for s, b in zip(sources, buckets, strict=True)]
    assert derangement(keys, seed=0) == partner
    control = ctl_stats["control"]
    assert control["name"] == "shuffled" and control["seed"] == 0 and "bit_length" in control["bucket_rule"]
    assert control["items"] == 48 and control["smallest_group"] >= 2
    assert tpt_stats["control"] is None
    assert json.loads((ctl / "index.json").read_text())["control"] == "shuffled"
    assert not (ctl / "control-spill").exists()


def test_shuffled_is_deterministic_per_seed_and_seeds_differ(tmp_path, bpe, augmented):
    first, _ = pack(tmp_path, [augmented], bpe, "s0", control="shuffled")
    # Worker processes and batch sizes do not change it (pass 2 must meet pass 1's order).
    again, _ = pack(tmp_path, [augmented], bpe, "s0b", control="shuffled", workers=2, batch_size=7)
    other, stats = pack(tmp_path, [augmented], bpe, "s1", control="shuffled", control_seed=1)
    read = lambda out: [s["thinking"] for s in samples(out)]  # noqa: E731
    assert read(first) == read(again)
    assert read(first) != read(other) and stats["control"]["seed"] == 1
    assert collections.Counter(read(first)) == collections.Counter(read(other))
    for name in ("tokens", "kinds"):
        assert (
            np.load(first / f"shard-00000.{name}.npy") == np.load(again / f"shard-00000.{name}.npy")
        ).all()


def test_shuffled_with_weights_and_mix_uses_each_trajectory_as_often_as_the_tpt_arm(tmp_path, bpe, augmented):
    """A document with two augmented samples (weight 2) gets two other documents' trajectories; a raw
    copy (--mix) keeps no thinking; downsampled records pair with nothing."""
    weights = {"openstax-introduction-to-python-programming": 2.0, "wikitext-2-raw-v1/test": 0.5}
    kw = dict(weights={**weights, "discrete-mathematics-an-open-introduction": 1.6}, raw_fraction=0.2)
    tpt, tpt_stats = pack(tmp_path, [augmented], bpe, "tpt", **kw)
    ctl, ctl_stats = pack(tmp_path, [augmented], bpe, "shuffled", control="shuffled", **kw)
    assert token_counts(ctl_stats) == token_counts(tpt_stats)
    a, b = samples(tpt), samples(ctl)
    assert [s["document"] for s in a] == [s["document"] for s in b]
    assert [s["thinking"] is None for s in a] == [s["thinking"] is None for s in b]
    own = [s["thinking"] for s in a if s["thinking"]]
    got = [s["thinking"] for s in b if s["thinking"]]
    assert collections.Counter(got) == collections.Counter(own)
    doc_of = {s["thinking"]: s["document"] for s in a if s["thinking"]}
    assert all(doc_of[s["thinking"]] != s["document"] for s in b if s["thinking"])
    assert ctl_stats["documents"] > 48 and ctl_stats["raw_samples"] > 0  # copies and mix happened


def test_filler_keeps_the_token_count_of_every_thinking(tmp_path, bpe, augmented):
    tpt, tpt_stats = pack(tmp_path, [augmented], bpe, "tpt", raw_fraction=0.25)
    ctl, ctl_stats = pack(tmp_path, [augmented], bpe, "filler", control="filler", raw_fraction=0.25)
    assert token_counts(ctl_stats) == token_counts(tpt_stats)
    a, b = samples(tpt), samples(ctl)
    assert [s["document"] for s in a] == [s["document"] for s in b]
    assert [s["template"] for s in a] == [s["template"] for s in b]
    control = ctl_stats["control"]
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(bpe / "tokenizer.json"))
    for x, y in zip(a, b, strict=True):
        if x["thinking"] is None:
            assert y["thinking"] is None
            continue
        assert y["thinking"] == (control["unit_id"],) * len(x["thinking"])
        assert tok.decode(list(y["thinking"])) == filler_text(tok, len(x["thinking"]))
    assert control["name"] == "filler" and control["unit"] == filler_unit(tok)[0]


def test_controls_refuse_what_they_cannot_do(tmp_path, bpe, augmented, capsys):
    with pytest.raises(ConfigError, match="needs --mode tpt"):
        PackConfig(
            inputs=("x",), output=tmp_path / "o", tokenizer="t", seq_len=8, mode="raw", control="shuffled"
        )
    with pytest.raises(ConfigError, match="--control must be one of"):
        PackConfig(inputs=("x",), output=tmp_path / "o", tokenizer="t", seq_len=8, control="paired")
    with pytest.raises(ConfigError, match="needs it"):
        PackConfig(inputs=("x",), output=tmp_path / "o", tokenizer="t", seq_len=8, control_seed=3)
    one = tmp_path / "one.jsonl"
    one.write_text(augmented.read_text().splitlines()[0] + "\n")
    argv = ["pack", str(one), "--output", str(tmp_path / "o1"), "--tokenizer", str(bpe), "--seq-len", "64",
            "--disable-check", "copy", "--control", "shuffled", "--workers", "0"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "1 augmented sample(s) to pair" in err and "Traceback" not in err
    raw = ["pack", str(one), "--output", str(tmp_path / "o2"), "--tokenizer", str(bpe), "--seq-len", "64",
           "--mode", "raw", "--control", "filler"]  # fmt: skip
    assert main(raw) == 2 and "needs --mode tpt" in capsys.readouterr().err


# --- the pure API --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3, 4, 5, 31, 1000, 4099])
def test_the_permutation_is_a_bijection_and_its_inverse(n):
    perm = _Permutation(n, b"k")
    forward = perm.forward(np.arange(n))
    assert sorted(forward.tolist()) == list(range(n))
    assert (perm.inverse(forward) == np.arange(n)).all()


def test_derangement_on_random_buckets_and_repeated_documents():
    rng = random.Random(7)
    checked = 0
    for trial in range(150):
        n = rng.randint(2, 80)
        docs = []
        for i in range(n):
            docs.append(rng.choice(docs) if docs and rng.random() < 0.25 else f"d{i}")
        key_of = {d: BucketKey(rng.choice("abc"), rng.randint(0, 5)) for d in docs}
        keys = [key_of[d] for d in docs]
        if max(collections.Counter(docs).values()) * 2 > n:
            with pytest.raises(InputError, match="more than half"):
                derangement(keys, trial, docs)
            continue
        partner = derangement(keys, trial, docs)
        assert sorted(partner) == list(range(n))
        assert all(docs[p] != docs[i] for i, p in enumerate(partner))
        assert derangement(keys, trial, docs) == partner
        checked += 1
    assert checked > 100


def test_derangement_stays_in_its_bucket_and_merges_only_single_items():
    keys = [BucketKey("a", 3)] * 5 + [BucketKey("a", 5)] + [BucketKey("b", 2)] * 4 + [BucketKey("c", 1)]
    partner = derangement(keys, seed=11)
    assert all(keys[p].source == "a" for p in partner[:6])  # a/5 joins a/3 (its source, shorter)
    assert all(keys[p].source in "bc" for p in partner[6:10])
    assert keys[partner[10]] == BucketKey("b", 2)  # a lone source joins the nearest length of another
    assert derangement(keys, seed=12) != partner
    with pytest.raises(InputError, match="at least 2"):
        derangement([BucketKey("a", 1)], seed=0)


def test_derangement_at_scale_is_constant_memory_per_item():
    counts = {BucketKey("web", b): 200_000 for b in range(8, 13)}
    plan = Derangement(counts, seed=3, doc_of=lambda k, r: (k, r))
    key = BucketKey("web", 10)
    ranks = np.arange(200_000)
    got = np.empty(200_000, dtype=np.int64)
    for pkey, pranks, where in plan.partners(key, ranks):
        assert pkey == key
        got[where] = pranks
    assert (got != ranks).all() and len(np.unique(got)) == 200_000
    assert plan.facts()["groups"] == 5


def test_filler_text_has_exactly_the_token_count_in_a_production_tokenizer():
    """SmolLM2's 49k byte-level BPE (the embedded model): ' .' is one token, any number of times."""
    from tokenizers import Tokenizer

    from tpt.core.hfmodel import resolve_model_dir

    tok = Tokenizer.from_file(str(resolve_model_dir("embedded") / "tokenizer.json"))
    assert filler_unit(tok)[0] == " ."
    filler = Filler(tok)
    assert filler.facts()["exact_by"] == "proof"
    for n in [*range(0, 70), 511, 4096, 8191]:
        assert len(tok.encode(filler_text(tok, n), add_special_tokens=False).ids) == n
        assert filler.ids(n).tolist() == tok.encode(filler_text(tok, n), add_special_tokens=False).ids


def test_filler_falls_back_and_refuses_clearly(word_tok):
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer.from_file(str(word_tok))  # a word-level vocabulary without punctuation
    assert filler_unit(tok) == (" the", 4)
    filler = Filler(tok)
    assert filler.facts()["exact_by"] == "check" and filler.ids(5).tolist() == [4] * 5
    chars = Tokenizer(models.WordLevel(vocab={"[UNK]": 0, "x": 1}, unk_token="[UNK]"))
    chars.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    with pytest.raises(ConfigError, match="no filler of an exact token count"):
        filler_unit(chars)

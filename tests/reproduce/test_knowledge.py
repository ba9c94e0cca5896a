"""The knowledge world's construction: anaphoric oracle thinking, strata, and the two controls built on it."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from tokenizers import Tokenizer

from tpt.augment.backends.base import GenerationRequest, SamplingParams, build_backend
from tpt.core.errors import ConfigError
from tpt.pack.controls import BucketKey, Filler, derangement, thinking_bucket
from tpt.reproduce import knowledge
from tpt.reproduce.testbed_tokenizer import tokenizer_json

CONFIG = knowledge.KnowledgeConfig(seen=120, heldout=40, world_seed=1234, test_seed=0)


@pytest.fixture(scope="module")
def world() -> knowledge.KnowledgeWorld:
    return knowledge.make_world(CONFIG)


@pytest.fixture(scope="module")
def tok() -> Tokenizer:
    import json

    return Tokenizer.from_str(json.dumps(tokenizer_json()))


def _thinking(rec: dict) -> str:
    backend = build_backend("procedural", {"engine_args": {}})
    req = GenerationRequest(key=0, messages=({"role": "user", "content": rec["text"]},), seed=1,
                            meta={"text": rec["text"], "id": rec["id"], "record": rec})  # fmt: skip
    [res] = backend.generate([req], SamplingParams())
    assert res.error is None, res.error
    return res.text.removeprefix("<think>\n").removesuffix("\n</think>")


def test_oracle_thinking_never_names_its_entity_and_restates_the_document(world) -> None:
    recs = knowledge.records(world)
    for rec in recs:
        e = knowledge.Entity.from_dict(rec["entity"])
        thinking = _thinking(rec)
        assert e.name not in thinking and e.city not in thinking
        assert not any(name in thinking for name in knowledge.NAMES)
        nums = [int(x) for x in re.findall(r"\d+", thinking)]
        assert nums[:2] == [e.crates, e.jars] and nums[-1] == e.crates * e.jars
        assert f"{e.crates} crates of {e.jars} jars" in rec["text"]


def test_strata_are_disjoint_and_heldout_entities_never_train(world) -> None:
    seen = {e.name for e in world.seen}
    held = {e.name for e in world.heldout}
    assert not seen & held and len(seen) == CONFIG.seen and len(held) == CONFIG.heldout
    train_text = " ".join(r["text"] for r in knowledge.records(world))
    assert not any(re.search(rf"\b{n}\b", train_text) for n in held)
    rows = knowledge.test_items(world, per_stratum=30, seed=0)
    assert Counter(r["stratum"] for r in rows) == {"seen": 30, "heldout": 30}
    for r in rows:  # the answer is never in the prompt, and the prompt is the document as trained on
        assert f"holds {r['answer']}" not in r["question"] and r["direct"].startswith(r["question"])
    assert knowledge.test_items(world, per_stratum=30, seed=0) == rows
    assert knowledge.test_items(world, per_stratum=30, seed=7) != rows
    assert abs(len(world.stated) - 0.25 * CONFIG.seen) <= 1


def test_world_seed_changes_the_world_and_bad_entities_are_refused() -> None:
    a = knowledge.make_world(CONFIG)
    b = knowledge.make_world(knowledge.KnowledgeConfig(seen=120, heldout=40, world_seed=20261207))
    assert a.seen != b.seen
    with pytest.raises(ConfigError):
        knowledge.KnowledgeConfig(seen=800, heldout=1)
    backend = build_backend("procedural", {"engine_args": {}})
    rec = {"id": "x", "text": "t", "world": "knowledge", "entity": {"name": "Balan"}}
    req = GenerationRequest(key=0, messages=({"role": "user", "content": "t"},), seed=1, meta={"record": rec})
    [res] = backend.generate([req], SamplingParams())
    assert res.error and res.error.startswith("bad_entity")


def test_tokenizer_covers_every_word_of_the_world(world, tok) -> None:
    unk = tok.token_to_id("<unk>")
    rec = knowledge.records(world)[0]
    for text in (rec["text"], _thinking(rec), *(knowledge.document(e) for e in world.heldout)):
        assert unk not in tok.encode(text).ids, text


def test_shuffled_control_is_a_multiset_equal_derangement_that_binds_wrongly(world, tok) -> None:
    recs = knowledge.records(world)
    thinking = [_thinking(r) for r in recs]
    keys = [BucketKey("k", thinking_bucket(len(tok.encode(t).ids)), 0) for t in thinking]
    partner = derangement(keys, seed=3, docs=[r["id"] for r in recs])
    shuffled = [thinking[p] for p in partner]
    assert Counter(shuffled) == Counter(thinking)
    assert all(p != i for i, p in enumerate(partner))
    # attached to another document, the thinking states another trader's product: a wrong binding
    wrong = sum(int(re.findall(r"\d+", s)[-1]) != knowledge.Entity.from_dict(r["entity"]).holds
                for s, r in zip(shuffled, recs, strict=True))  # fmt: skip
    assert wrong / len(recs) > 0.8


def test_filler_control_keeps_each_trajectorys_token_count(world, tok) -> None:
    filler = Filler(tok)
    for rec in knowledge.records(world)[:20]:
        n = len(tok.encode(_thinking(rec)).ids)
        ids = filler.ids(n)
        assert len(ids) == n and len(tok.encode(filler.unit * n).ids) == n

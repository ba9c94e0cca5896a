"""The one lazy registry (src/tpt/core/registry.py): lazy import strings, one-line did-you-mean errors, tpt's
own in-tree declarations, and third-party entry points read from a real distribution on sys.path."""

from __future__ import annotations

import json
import sys
import textwrap
from importlib.metadata import distribution
from pathlib import Path

import pytest

from tpt.augment.backends.base import BACKENDS
from tpt.augment.executors import EXECUTORS
from tpt.augment.servers.engines import SERVERS, ServeSpec, server_command
from tpt.cli import main
from tpt.core.errors import ConfigError
from tpt.core.registry import Registry, in_tree_entries
from tpt.evaluate.builtin import TASKS, get_builtin
from tpt.evaluate.engine import ENGINES
from tpt.quality.checks import PLUGIN_CHECKS

FAMILIES = {
    "tpt.backends": BACKENDS,
    "tpt.tasks": TASKS,
    "tpt.engines": ENGINES,
    "tpt.servers": SERVERS,
    "tpt.checks": PLUGIN_CHECKS,
    "tpt.executors": EXECUTORS,
}

PLUGIN = '''
"""A third-party tpt plugin: a backend, a task and a check."""
from dataclasses import replace

from tpt.augment.backends.base import GenerationResult


class Shout:
    name = "shout"
    model_id = "shout-1"

    def truncate(self, texts, max_tokens):
        return [(t, len(t.split()), False) for t in texts]

    def generate(self, requests, sampling):
        for r in requests:
            yield GenerationResult(key=r.key, text="<think>" + r.meta["text"].upper() + "</think>")

    def close(self):
        pass


def build(options):
    return Shout()


def task():
    from tpt.evaluate.builtin import gsm8k

    return replace(gsm8k(), name="gsm8k_shout", description="gsm8k, from a plugin")


def serve_command(spec, port):
    return ["shout-serve", "--port", str(port), "--model", spec.model]


def no_lowercase(record):
    return "the thinking has lowercase letters" if record.thinking and record.thinking != record.thinking.upper() else None
'''


@pytest.fixture
def plugin_dist(tmp_path, monkeypatch):
    """A real distribution `tpt-shout` (a dist-info directory: METADATA + entry_points.txt) and its module,
    on sys.path; the registries re-read the entry points before and after."""
    site = tmp_path / "site"
    info = site / "tpt_shout-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tpt-shout\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [tpt.backends]
            shout = tpt_shout:build
            procedural = tpt_shout:build
            [tpt.tasks]
            gsm8k_shout = tpt_shout:task
            [tpt.checks]
            no_lowercase = tpt_shout:no_lowercase
            [tpt.servers]
            shout-server = tpt_shout:serve_command
            """
        )
    )
    (site / "tpt_shout.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    for registry in FAMILIES.values():
        registry.refresh()
    yield site
    monkeypatch.undo()
    sys.modules.pop("tpt_shout", None)
    for registry in FAMILIES.values():
        registry.refresh()


def test_a_registry_imports_nothing_until_a_name_is_used(tmp_path, monkeypatch):
    (tmp_path / "lazy_mod.py").write_text("import sys\nsys.modules[__name__].imported = True\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[int] = Registry("test-lazy", {"answer": "lazy_mod:VALUE"}, kind="thing")
    assert "answer" in reg and list(reg) == ["answer"] and "lazy_mod" not in sys.modules
    assert reg.entry("answer") == "lazy_mod:VALUE" and "lazy_mod" not in sys.modules
    assert reg["answer"] == 42 and sys.modules["lazy_mod"].imported
    sys.modules.pop("lazy_mod")


def test_an_unknown_name_is_one_line_with_a_did_you_mean():
    with pytest.raises(ConfigError) as err:
        BACKENDS.get_or_raise("opnai")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(
        "unknown backend 'opnai'; did you mean 'openai'? Choose one of transformers, openai"
    )
    with pytest.raises(ConfigError, match=r"^unknown task 'zzz'; choose one of gsm8k, .*; add your own with"):
        get_builtin("zzz")
    with pytest.raises(ConfigError, match="^unknown executor 'rya'; did you mean 'ray'"):
        EXECUTORS.get_or_raise("rya")
    with pytest.raises(
        ConfigError, match=r"^--serve must be one of vllm, .*, got 'vlm' \(did you mean 'vllm'\?\)$"
    ):
        ServeSpec(engine="vlm", model="m")
    empty: Registry[object] = Registry("test-empty", {}, kind="check")
    with pytest.raises(ConfigError, match="^unknown check 'x': none is installed"):
        empty.get_or_raise("x")


def test_a_plugin_cannot_take_a_name_already_registered():
    reg: Registry[int] = Registry("test-taken", {"a": "json:dumps"}, kind="thing")
    reg.add("b", "json:loads")
    reg.add("b", "json:loads")  # the same entry again is no change
    with pytest.raises(ConfigError, match="thing 'a' is already registered"):
        reg.add("a", "json:loads", replace=True)  # a built-in never
    with pytest.raises(ConfigError, match="thing 'b' is already registered"):
        reg.add("b", "json:JSONDecoder")
    reg.add("b", "json:JSONDecoder", replace=True)
    assert reg["b"] is json.JSONDecoder
    with pytest.raises(ConfigError, match="is not an import string"):
        reg.add("c", "dumps")


def test_a_broken_import_string_is_a_config_error_naming_it():
    reg: Registry[object] = Registry(
        "test-broken", {"gone": "no_such_module_xyz:f", "typo": "json:dumsp"}, kind="x"
    )
    with pytest.raises(ConfigError, match="import string 'no_such_module_xyz:f': no module"):
        reg.get_or_raise("gone")
    with pytest.raises(ConfigError, match="module 'json' has no 'dumsp'"):
        reg.get_or_raise("typo")


def test_the_built_ins_above_a_family_come_from_their_own_package():
    """`procedural` is reproduce's, declared in src/tpt/reproduce/entry_points.txt (no install metadata
    needed); augment's own table never names it."""
    assert ("procedural", "tpt.reproduce.teacher:build") in in_tree_entries()["tpt.backends"]
    assert BACKENDS.entry("procedural") == "tpt.reproduce.teacher:build"
    assert "procedural" not in BACKENDS._builtin


def test_a_third_party_distribution_adds_a_backend_task_and_check(plugin_dist, tmp_path, capsys):
    assert distribution("tpt-shout").entry_points.select(group="tpt.backends")  # a real distribution
    assert "shout" in BACKENDS and "gsm8k_shout" in TASKS and "no_lowercase" in PLUGIN_CHECKS
    assert BACKENDS.entry("procedural") == "tpt.reproduce.teacher:build"  # a plugin cannot take a name

    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "two plus two"}) + "\n")
    assert (
        main(
            ["augment", str(corpus), "--output", str(tmp_path / "aug"), "--backend", "shout", "--no-progress"]
        )
        == 0
    )
    record = json.loads((tmp_path / "aug" / "shards" / "part-00000000.jsonl").read_text())
    assert record["thinking"] == "TWO PLUS TWO" and record["provenance"]["backend"] == "shout"

    assert get_builtin("gsm8k_shout").description == "gsm8k, from a plugin"
    capsys.readouterr()
    assert main(["eval", "--list-tasks"]) == 0
    assert "gsm8k_shout" in capsys.readouterr().out


def test_an_unknown_name_lists_the_plugins_too(plugin_dist, capsys, tmp_path):
    corpus = tmp_path / "c.jsonl"
    corpus.write_text(json.dumps({"id": "a", "text": "x"}) + "\n")
    assert (
        main(["augment", str(corpus), "--output", str(tmp_path / "o"), "--backend", "shuot", "--no-progress"])
        == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "unknown backend 'shuot'; did you mean 'shout'? Choose one of transformers, openai, vllm, procedural, shout"
        in err
    )


def test_a_third_party_server_and_check(plugin_dist, tmp_path):
    from tpt.formats.reading import RecordLine
    from tpt.quality.checks import CheckConfig, Validator

    spec = ServeSpec(engine="shout-server", model="m")
    assert server_command(spec, 8001) == ["shout-serve", "--port", "8001", "--model", "m"]
    with pytest.raises(
        ConfigError, match="^--serve must be one of vllm, sglang, llama.cpp, command, shout-server"
    ):
        ServeSpec(engine="nope", model="m")

    records = [
        RecordLine(
            id=i, text="doc " * 30, thinking=t, finish_reason="stop", source="s", file="f", line=n, raw=b""
        )
        for n, (i, t) in enumerate((("a", "WORD " * 30), ("b", "word " * 30)))
    ]
    plain = Validator(CheckConfig(disabled=frozenset({"copy", "repetition", "contamination"})))
    assert plain.judge(records) == [None, None]
    checked = Validator(
        CheckConfig(disabled=frozenset({"copy", "repetition", "contamination"}), plugins=("no_lowercase",))
    )
    [kept, flagged] = checked.judge(records)
    assert kept is None and (flagged.reason, flagged.detail) == (
        "no_lowercase",
        "the thinking has lowercase letters",
    )
    with pytest.raises(ConfigError, match="^unknown check 'no_lowercas'; did you mean 'no_lowercase'"):
        CheckConfig(plugins=("no_lowercas",))


@pytest.mark.parametrize("group", sorted(FAMILIES))
def test_every_family_reads_its_entry_point_group(group):
    assert FAMILIES[group].group == group


def test_every_built_in_import_string_names_a_top_level_definition():
    """Each registered name's module:attr exists, read from the source (no engine is imported)."""
    import ast
    import importlib.util

    for group, registry in FAMILIES.items():
        for name in registry:
            module_name, _, attr = registry.entry(name).partition(":")
            spec = importlib.util.find_spec(module_name)
            assert spec is not None and spec.origin, f"{group} {name}: no module {module_name}"
            tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
            defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
            assert attr in defined, f"{group} {name}: {module_name} defines no {attr}"


def test_the_in_tree_declarations_are_shipped_with_the_package():
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"*/entry_points.txt"' in pyproject

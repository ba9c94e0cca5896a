"""tpt.core.configs: the drift check between a config dataclass and its command line, and from_args."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from tpt.core.configs import defaults, drift, from_args


@dataclass(frozen=True, kw_only=True, slots=True)
class Example:
    output: str
    size: int = 10
    names: tuple[str, ...] = ("a", "b")
    progress: bool = False


def parser(size_default: object = 10, names_default: str = "a,b") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    p.add_argument("--output", required=True)
    p.add_argument("--size", type=int, default=size_default)
    p.add_argument("--names", default=names_default)
    p.add_argument("--no-progress", action="store_true")
    return p


def names(text: str) -> tuple[str, ...]:
    return tuple(text.split(","))


def test_defaults_lists_the_fields_that_have_one():
    assert defaults(Example) == {"size": 10, "names": ("a", "b"), "progress": False}


def test_no_drift_when_the_defaults_agree():
    assert drift(parser(), Example, convert={"names": names}, cli_only={"no_progress"}) == []


def test_a_changed_default_is_reported():
    problems = drift(parser(size_default=12), Example, convert={"names": names}, cli_only={"no_progress"})
    assert problems == ["--size defaults to 12 but Example.size to 10"]
    problems = drift(parser(names_default="a"), Example, convert={"names": names}, cli_only={"no_progress"})
    assert problems == ["--names defaults to ('a',) but Example.names to ('a', 'b')"]


def test_an_option_that_fills_no_field_is_reported_unless_cli_only():
    assert drift(parser(), Example, convert={"names": names}) == [
        "--no-progress fills no field of Example (map it in dests, or list it in cli_only)"
    ]
    # Mapped to the field it fills, with its value converted: --no-progress's default False is progress True.
    assert drift(
        parser(),
        Example,
        dests={"no_progress": "progress"},
        convert={"names": names, "no_progress": lambda v: not v},
    ) == ["--no-progress defaults to True but Example.progress to False"]


def test_a_none_default_writes_none_and_from_args_leaves_it_to_the_config():
    assert drift(parser(size_default=None), Example, convert={"names": names}, cli_only={"no_progress"}) == []
    args = parser(size_default=None).parse_args(["--output", "o", "--names", "x,y"])
    assert from_args(Example, args, convert={"names": names}) == Example(output="o", names=("x", "y"))
    assert from_args(Example, args, convert={"names": names}, size=3).size == 3


def test_a_help_text_that_states_another_default_is_reported():
    p = parser()
    p.add_argument("--other", type=int, default=3, help="a number (default 4)")
    p.add_argument("--fine", type=float, default=0.5, help="a share (default 0.5; 0: off)")
    p.add_argument("--unset", type=int, default=None, help="from the config (default 12)")

    @dataclass(frozen=True, kw_only=True, slots=True)
    class More(Example):
        other: int = 3
        fine: float = 0.5
        unset: int = 10

    assert drift(p, More, convert={"names": names}, cli_only={"no_progress"}) == [
        "--other's help says default 4 but the default is 3",
        "--unset's help says default 12 but the default is 10",
    ]

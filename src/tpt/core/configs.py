"""A stage's config dataclass and its command line, kept from drifting apart.

Every stage's options live in one frozen dataclass (its config: the defaults are written there); its
`cli.py` declares the argparse options. Two helpers tie them together (argparse and dataclasses only,
so a `cli.py` may import this module and stay light):

- `drift(parser, Config, ...)` lists every option whose default differs from the default of the
  config field it fills, whose help states another number as its default ("(default 64)"), and every
  option that fills no field without being declared CLI-only. A test per stage asserts
  `drift(...) == []`, so a default written on both sides cannot change on one.
- `from_args(Config, args, ...)` builds the config from a parsed namespace: an option left at None
  takes the config's default, so a CLI option may declare `default=None` and write no default at all.

    parser = argparse.ArgumentParser(); add_arguments(parser)
    assert drift(parser, PackConfig, dests={"mix": "raw_fraction"}, cli_only={"paper_faithful"}) == []
"""

from __future__ import annotations

import argparse
import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

_NO_DEFAULT = object()
_STATED = re.compile(r"\bdefault:? (-?[0-9][0-9,_]*(?:\.[0-9]+)?(?:e-?[0-9]+)?)\b")
"""A number a help text gives as the default: "(default 64)", "(default: 0.5)", "default 1e-8"."""


def defaults(cls: type) -> dict[str, object]:
    """Field name -> default of a config dataclass (default factories called); fields without one left out."""
    out: dict[str, object] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def _actions(parser: argparse.ArgumentParser) -> Iterable[argparse.Action]:
    for action in parser._actions:  # argparse offers no public list of a parser's options
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction | argparse._VersionAction):
            continue
        yield action


def drift(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    dests: Mapping[str, str] | None = None,
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
    cli_only: Iterable[str] = (),
) -> list[str]:
    """What disagrees between `parser`'s options and `cls`'s fields, one line each (empty: nothing).

    An option fills the field named by its dest, or by `dests[dest]`; `convert[dest]` turns the
    option's default into the field's form first (e.g. a comma-separated string into a tuple). An
    option whose default is None writes no default (the config's applies, see `from_args`). Options in
    `cli_only` (e.g. --no-progress's inverse, --list-tasks) fill no field and are not compared.
    """
    dests, convert, skip = dict(dests or {}), dict(convert or {}), set(cli_only)
    fields = {f.name for f in dataclasses.fields(cls)}
    known = defaults(cls)
    problems = []
    for action in _actions(parser):
        if action.dest in skip:
            continue
        name = dests.get(action.dest, action.dest)
        flag = action.option_strings[0] if action.option_strings else action.dest
        if name not in fields:
            problems.append(
                f"{flag} fills no field of {cls.__name__} (map it in dests, or list it in cli_only)"
            )
            continue
        field_default = known.get(name, _NO_DEFAULT)
        if action.default is None or action.default is argparse.SUPPRESS:
            if field_default is not _NO_DEFAULT and (stated := _stated_default(action, field_default)):
                problems.append(stated)
            continue
        value = convert[action.dest](action.default) if action.dest in convert else action.default
        if stated := _stated_default(action, value):
            problems.append(stated)
        if field_default is _NO_DEFAULT:
            problems.append(f"{flag} has a default ({value!r}) but {cls.__name__}.{name} has none")
        elif value != field_default:
            problems.append(f"{flag} defaults to {value!r} but {cls.__name__}.{name} to {field_default!r}")
    return problems


def _stated_default(action: argparse.Action, default: Any) -> str | None:
    """A complaint if the help says the default is a number other than `default` (numbers only)."""
    match = _STATED.search(action.help or "")
    if not match or isinstance(default, bool) or not isinstance(default, int | float):
        return None
    stated = float(match.group(1).replace(",", "").replace("_", ""))
    if stated == float(default):
        return None
    flag = action.option_strings[0] if action.option_strings else action.dest
    return f"{flag}'s help says default {match.group(1)} but the default is {default!r}"


def from_args(
    cls: type,
    args: argparse.Namespace,
    *,
    dests: Mapping[str, str] | None = None,
    convert: Mapping[str, Callable[[Any], Any]] | None = None,
    **values: Any,
) -> Any:
    """`cls(...)` from the namespace's values of its fields (None: left to the config's default), with
    `values` given explicitly on top. `dests` and `convert` as in `drift`."""
    dests, convert = dict(dests or {}), dict(convert or {})
    fields = {f.name for f in dataclasses.fields(cls)}
    kwargs: dict[str, object] = {}
    for dest, value in vars(args).items():
        name = dests.get(dest, dest)
        if name in fields and value is not None:
            kwargs[name] = convert[dest](value) if dest in convert else value
    kwargs.update(values)
    return cls(**kwargs)

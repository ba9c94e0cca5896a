"""One lazy registry type for every pluggable family: backends, eval tasks, eval engines, teacher
servers, quality checks, executors.

A registry maps names to import strings (`"package.module:attr"`); the module is imported only when its
entry is used, so listing names or validating a config imports nothing. Names come from four places, in
this order (the first one to claim a name keeps it, so a plugin cannot change what a built-in name means):

1. the built-ins, given in code by the package that owns the family (at its own level);
2. names added at run time with `Registry.add` (a Python caller's own plugin);
3. tpt's own packages above the family: each declares its entries in `src/tpt/<package>/entry_points.txt`
   (the format of a distribution's entry_points.txt), read from the source tree: reproduce's
   `procedural` backend lives there, so augment never names a module above it, and it needs no install
   metadata (an editable install made before the entry existed still finds it);
4. the entry points of installed distributions in the family's group `tpt.<family>`, e.g. a third-party
   package's `[project.entry-points."tpt.backends"]  mybackend = "mypkg.backend:build"`.

3 and 4 are read once, on the first listing or unknown name (scanning the installed distributions is not
free). An unknown name is a one-line ConfigError with a did-you-mean and the names to choose from.
"""

from __future__ import annotations

import configparser
import difflib
import functools
import importlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Generic, TypeVar

from tpt.core.errors import ConfigError

T = TypeVar("T")

GROUP_PREFIX = "tpt."
"""Entry-point groups are `tpt.<family>`: tpt.backends, tpt.tasks, tpt.engines, tpt.servers, tpt.checks,
tpt.executors."""
IN_TREE = "entry_points.txt"
"""The file in which a package of tpt declares its entries in other packages' registries."""


def load(entry: str) -> object:
    """The object an import string (`package.module:name`, or a bare module) names, imported now."""
    module_name, _, attr = entry.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):  # the entry's own module, not a dependency
            raise ConfigError(f"import string {entry!r}: no module {exc.name!r}") from None
        raise
    if not attr:
        return module
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"import string {entry!r}: module {module_name!r} has no {attr!r}") from None


@functools.cache
def in_tree_entries() -> dict[str, tuple[tuple[str, str], ...]]:
    """group -> ((name, import string), ...) declared by tpt's own packages (src/tpt/*/entry_points.txt),
    in package order. A package may only declare its own modules (tests/core/test_import_graph.py)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(Path(__file__).resolve().parents[1].glob(f"*/{IN_TREE}")):
        parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # names are case-sensitive
        parser.read(path, encoding="utf-8")
        for group in parser.sections():
            out.setdefault(group, []).extend(parser.items(group))
    return {group: tuple(items) for group, items in out.items()}


class Registry(Mapping[str, T], Generic[T]):
    """Names -> objects, each imported on first use. A read-only Mapping (`in`, iteration, `[name]`)
    plus `add` (register a name) and `get_or_raise` (the lookup with the did-you-mean error).

    `family` is the entry-point group's tail (`backends` -> group `tpt.backends`); `kind` the singular
    noun of the error messages (`backend`); `hint` is appended to the unknown-name error (what else the
    user may do, e.g. "add your own with --task-file FILE")."""

    def __init__(
        self,
        family: str,
        builtins: Mapping[str, str],
        *,
        kind: str,
        hint: str = "",
    ) -> None:
        self.family = family
        self.group = GROUP_PREFIX + family
        self.kind = kind
        self.hint = hint
        self._entries: dict[str, str] = dict(builtins)
        self._builtin = frozenset(builtins)
        self._loaded: dict[str, T] = {}
        self._scanned: set[str] | None = None  # the names the scan added; None: not scanned yet

    # --- registration -------------------------------------------------------------------------------

    def add(self, name: str, entry: str, *, replace: bool = False) -> None:
        """Register `name` -> import string. A name already taken is refused unless `replace`; a
        built-in can never be replaced (a plugin cannot change what `--backend openai` means)."""
        if ":" not in entry and "." not in entry:
            raise ConfigError(f"{self.kind} {name!r}: {entry!r} is not an import string ('module:attr')")
        taken = self._entries.get(name)
        if taken == entry:
            return
        if taken is not None and (name in self._builtin or not replace):
            raise ConfigError(f"{self.kind} {name!r} is already registered ({taken}); cannot add {entry}")
        self._entries[name] = entry
        self._loaded.pop(name, None)

    def _scan(self) -> None:
        """Add tpt's in-tree declarations, then the installed entry points of the family's group (once;
        a name already taken keeps its entry)."""
        if self._scanned is not None:
            return
        from importlib.metadata import entry_points

        self._scanned = set()
        found = [
            *in_tree_entries().get(self.group, ()),
            *((ep.name, ep.value) for ep in entry_points(group=self.group)),
        ]
        for name, entry in found:
            if name not in self._entries:
                self._entries[name] = entry
                self._scanned.add(name)

    def refresh(self) -> None:
        """Forget what the scan found, so that the next lookup reads the installed entry points again
        (a distribution installed, or put on sys.path, after the first lookup of this process)."""
        for name in self._scanned or ():
            self._entries.pop(name, None)
            self._loaded.pop(name, None)
        self._scanned = None

    # --- lookup -------------------------------------------------------------------------------------

    def entry(self, name: str) -> str:
        """The import string behind `name` (nothing imported); ConfigError if unknown."""
        if name not in self._entries:
            self._scan()
        if name not in self._entries:
            raise self.unknown(name)
        return self._entries[name]

    def get_or_raise(self, name: str) -> T:
        """The object `name` names, imported on first use; ConfigError with a did-you-mean if unknown."""
        if name in self._loaded:
            return self._loaded[name]
        entry = self.entry(name)
        value: T = load(entry)  # type: ignore[assignment]
        self._loaded[name] = value
        return value

    def unknown(self, name: str) -> ConfigError:
        """The one-line error for a name nobody registered."""
        names = self.names()
        hint = f"; {self.hint}" if self.hint else ""
        if not names:
            return ConfigError(f"unknown {self.kind} {name!r}: none is installed (docs/plugins.md){hint}")
        close = self.close_match(name)
        mean = f"; did you mean {close!r}? Choose" if close else "; choose"
        return ConfigError(f"unknown {self.kind} {name!r}{mean} one of {', '.join(names)}{hint}")

    def close_match(self, name: str) -> str | None:
        """The registered name most like `name` (difflib), or None."""
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        return close[0] if close else None

    def names(self) -> tuple[str, ...]:
        """Every name, built-ins first (their order in code), then added and entry-point ones."""
        self._scan()
        return tuple(self._entries)

    # --- Mapping ------------------------------------------------------------------------------------

    def __getitem__(self, name: str) -> T:
        if name not in self:
            raise KeyError(name)
        return self.get_or_raise(name)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name not in self._entries:
            self._scan()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    def __repr__(self) -> str:
        return f"Registry({self.group!r}, {list(self._entries)})"

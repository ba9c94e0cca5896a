"""tpt: Thinking-augmented Pre-Training (arXiv 2509.20186) as a toolkit.

Stages, each a `tpt` subcommand that talks to the next through files on disk:
augment (teacher writes thinking) -> validate -> pack (token shards) -> train -> eval -> reproduce (report).

Importing `tpt` is light on purpose: torch, transformers, vllm, ray and matplotlib load only inside the
modules that need them (a test enforces it).
"""

__version__ = "0.1.0"

from tpt import _aliases

_aliases.install()  # old import paths of moved modules, for one release (docs/architecture.md)

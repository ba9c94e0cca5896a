"""The command line that starts each inference engine's OpenAI-compatible server, and what it needs.

Every engine is asked for the same things: listen on 127.0.0.1:PORT (loopback only: the worker that
starts the server is its only client) and serve the model under the name the `openai` backend sends.
All three answer `GET /v1/models` once the model is loaded, which is the health check.
"""

from __future__ import annotations

import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tpt.core.errors import ConfigError, MissingDependencyError
from tpt.core.registry import Registry

SERVERS: Registry[Callable[[ServeSpec, int], list[str]]] = Registry(
    "servers",
    {
        name: f"tpt.augment.servers.engines:{attr}"
        for name, attr in (
            ("vllm", "vllm_command"),
            ("sglang", "sglang_command"),
            ("llama.cpp", "llamacpp_command"),
            ("command", "user_command"),
        )
    },
    kind="server",
)
"""--serve NAME -> "module:function"; function(spec, port) -> the argv that starts the server on
127.0.0.1:port. A third-party server is an entry point in group `tpt.servers` (docs/plugins.md)."""
ENGINES = ("vllm", "sglang", "llama.cpp", "command")
"""The built-in servers' names (SERVERS lists the plugins' too)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ServeSpec:
    """What server to run for the teacher; one is started per worker (per GPU under Ray)."""

    engine: str
    """vllm, sglang, llama.cpp, or command (a user command line with {port} and {model} placeholders)."""
    model: str
    """The model to load: an HF model dir or hub name (vllm, sglang), a .gguf file (llama.cpp)."""
    served_model_name: str | None = None
    """The name the server answers to (the `openai` backend's --model); default: `model`."""
    extra_args: tuple[str, ...] = ()
    """More engine flags, appended as given (e.g. --max-num-seqs 256 --gpu-memory-utilization 0.9)."""
    command: str | None = None
    """engine=command only: the command line, e.g. 'my-server --port {port} --model {model}'."""
    startup_timeout_s: float = 900.0
    """How long one start may take until /v1/models answers (vLLM: weights load + CUDA graphs)."""
    max_restarts: int = 3
    """Restarts after unexpected exits or hangs; one more death stops the run (re-run to resume)."""
    health_interval_s: float = 10.0
    """Seconds between health probes while running."""
    hang_probes: int | None = None
    """Failed probes in a row that count as a hang (restart); 0: only an exit counts. Default: 3 for vllm
    and sglang, whose API servers answer while the engine is busy; 0 for llama.cpp, whose server does not
    answer GET /v1/models while it generates (a busy server is not a hung one)."""
    env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables for the server process."""
    python: str | None = None
    """The Python that has the engine installed (engines often live in their own venv, as vLLM pins
    torch); default: this one. For vllm, the `vllm` command beside it is used."""

    def __post_init__(self) -> None:
        if self.engine not in SERVERS:
            close = SERVERS.close_match(self.engine)
            mean = f" (did you mean {close!r}?)" if close else ""
            raise ConfigError(f"--serve must be one of {', '.join(SERVERS)}, got {self.engine!r}{mean}")
        if self.engine == "command":
            if not self.command or "{port}" not in self.command:
                raise ConfigError("--serve command needs --serve-command with a {port} placeholder")
        elif not self.model:
            raise ConfigError(f"--serve {self.engine} needs --model (what the server should load)")
        if self.startup_timeout_s <= 0 or self.health_interval_s <= 0:
            raise ConfigError("--serve-startup-timeout and the health interval must be > 0")
        if self.max_restarts < 0:
            raise ConfigError(f"--serve-max-restarts must be >= 0, got {self.max_restarts}")

    @property
    def name(self) -> str:
        return self.served_model_name or self.model

    @property
    def probes_for_hang(self) -> int:
        if self.hang_probes is not None:
            return self.hang_probes
        return 3 if self.engine in ("vllm", "sglang") else 0


def server_command(spec: ServeSpec, port: int) -> list[str]:
    """The argv that starts `spec`'s server on 127.0.0.1:port (the server registry's function)."""
    return SERVERS.get_or_raise(spec.engine)(spec, port)


def _host(port: int) -> list[str]:
    return ["--host", "127.0.0.1", "--port", str(port)]


def vllm_command(spec: ServeSpec, port: int) -> list[str]:
    # `vllm serve` (vLLM >= 0.5): the model is positional; the name clients use is --served-model-name.
    vllm = str(Path(spec.python).parent / "vllm") if spec.python else _executable("vllm", "vllm")
    return [
        vllm,
        "serve",
        spec.model,
        *_host(port),
        "--served-model-name",
        spec.name,
        *_generation_config(spec),
        *spec.extra_args,
    ]


def sglang_command(spec: ServeSpec, port: int) -> list[str]:
    return [
        spec.python or sys.executable,
        "-m",
        "sglang.launch_server",
        "--model-path",
        spec.model,
        *_host(port),
        "--served-model-name",
        spec.name,
        *spec.extra_args,
    ]


def llamacpp_command(spec: ServeSpec, port: int) -> list[str]:
    # llama-cpp-python's server: flags are its settings' field names (snake_case).
    return [
        spec.python or sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        spec.model,
        *_host(port),
        "--model_alias",
        spec.name,
        *spec.extra_args,
    ]


def user_command(spec: ServeSpec, port: int) -> list[str]:
    """engine=command: the user's command line, its {port}, {model} and {name} filled in."""
    if spec.command is None:
        raise ConfigError("--serve command needs --serve-command with a {port} placeholder")
    return [part.format(port=port, model=spec.model, name=spec.name) for part in shlex.split(spec.command)]


def generation_config(spec: ServeSpec) -> str | None:
    """vllm: where the server takes its default sampling parameters from. `vllm serve` applies the
    model's generation_config.json (Qwen3: top-k 20, min-p 0) to every field a request leaves out; tpt
    starts it with `--generation-config vllm` (vLLM's neutral defaults) unless --serve-arg sets it."""
    if spec.engine != "vllm":
        return None
    for i, arg in enumerate(spec.extra_args):
        if arg == "--generation-config" and i + 1 < len(spec.extra_args):
            return spec.extra_args[i + 1]
        if arg.startswith("--generation-config="):
            return arg.split("=", 1)[1]
    return "vllm"


def _generation_config(spec: ServeSpec) -> list[str]:
    user_set = any(a.split("=", 1)[0] == "--generation-config" for a in spec.extra_args)
    return [] if user_set else ["--generation-config", "vllm"]


def check_installed(spec: ServeSpec) -> None:
    """Fail before any worker starts when the engine is not installed here."""
    import importlib.util

    if spec.python:
        if not Path(spec.python).is_file():
            raise ConfigError(f"--serve-python {spec.python}: no such file")
        return  # another environment: its server's own start-up error will tell
    if spec.engine == "vllm":
        _executable("vllm", "vllm")
    elif spec.engine == "sglang" and importlib.util.find_spec("sglang") is None:
        raise MissingDependencyError("sglang[all]", "--serve sglang")
    elif spec.engine == "llama.cpp" and importlib.util.find_spec("llama_cpp") is None:
        raise MissingDependencyError("llama-cpp-python[server]", "--serve llama.cpp")


def _executable(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingDependencyError(package, f"--serve {name} (the `{name}` command is not on PATH)")
    return path

"""The contract between `tpt augment` and a generation backend, and the lazy registry of backends.

A backend turns chat requests into completions. It pulls requests from an iterator only as fast as it
has capacity (so memory stays flat however large the corpus) and yields results in completion order,
each carrying the `key` of its request. A request that fails for good yields a result with `error` set;
only a backend that cannot go on at all raises BackendError.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tpt.augment.loopguard import LoopGuardOptions
from tpt.core.errors import ConfigError
from tpt.core.jsontypes import JSONObject

NEUTRAL_SAMPLING: dict[str, int | float] = {
    "top_k": -1,
    "min_p": 0.0,
    "repetition_penalty": 1.0,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
"""Every sampling control besides temperature and top-p, switched off (top_k -1: no top-k cut), as the
paper's decoding has none. tpt sends these with each request and records them, so that no server
default (a model's generation_config, llama.cpp's top-k 40) applies unseen."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SamplingParams:
    """Decoding settings; the defaults are the paper's (App. A.1)."""

    temperature: float = 0.6
    top_p: float = 0.9
    max_tokens: int = 8192
    """Most thinking tokens generated per document."""
    stop: tuple[str, ...] = ("</think>",)
    seed: int | None = None
    """Base seed; each request gets its own seed derived from this and the document id."""
    repetition_penalty: float = 1.0
    """> 1 makes every token already in the prompt or the output less likely (logits divided by it
    when positive, multiplied when negative; vLLM's and transformers' definition). 1: off (the paper)."""
    frequency_penalty: float = 0.0
    """Subtracted from a token's logit once per time it occurs in the output (OpenAI's definition)."""
    presence_penalty: float = 0.0
    """Subtracted from the logit of every token that occurs in the output at all."""
    loop_guard: LoopGuardOptions = field(default_factory=LoopGuardOptions)
    """Stop a trajectory that falls into a repetition loop while it is generated (loopguard.py)."""

    def __post_init__(self) -> None:
        if not 0 <= self.temperature <= 5:
            raise ConfigError(f"--temperature must be in [0, 5], got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.max_tokens < 1:
            raise ConfigError(f"--max-thinking-tokens must be >= 1, got {self.max_tokens}")
        if not 0 < self.repetition_penalty <= 10:
            raise ConfigError(f"--repetition-penalty must be in (0, 10], got {self.repetition_penalty}")
        for name in ("frequency_penalty", "presence_penalty"):
            if not -2 <= getattr(self, name) <= 2:
                flag = "--" + name.replace("_", "-")
                raise ConfigError(
                    f"{flag} must be in [-2, 2] (the OpenAI API's range), got {getattr(self, name)}"
                )

    def penalties(self) -> dict[str, float]:
        return {
            "repetition_penalty": self.repetition_penalty,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
        }

    def as_dict(self) -> JSONObject:
        """What fingerprints a run's output directory. The penalties and the loop guard appear only when
        set away from their defaults, so that directories written before they existed still resume."""
        out: JSONObject = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            "stop": list(self.stop),
            "seed": self.seed,
        }
        out.update({k: v for k, v in self.penalties().items() if v != NEUTRAL_SAMPLING[k]})
        if self.loop_guard != LoopGuardOptions():
            out["loop_guard"] = self.loop_guard.as_dict()
        return out

    def in_force(self) -> JSONObject:
        """Every sampling parameter a backend that honours these settings decodes with."""
        plain = {k: v for k, v in self.as_dict().items() if k != "loop_guard"}
        return {**plain, **NEUTRAL_SAMPLING, **self.penalties()}


@dataclass(frozen=True, kw_only=True, slots=True)
class BackendOptions:
    """The options a backend factory reads (`AugmentConfig.backend_options` holds them as a dict, see
    `as_dict`); each default is written here once, and a key a caller leaves out takes it."""

    model: str | None = None
    """HF model dir or .gguf file (transformers, vllm; None: the embedded teacher), or the served name."""
    base_url: str | None = None
    """openai: the server, e.g. http://127.0.0.1:8000/v1 (None: $OPENAI_BASE_URL)."""
    api_key_env: str = "OPENAI_API_KEY"
    """openai: the NAME of the environment variable holding the key (the key is never written)."""
    concurrency: int = 64
    """openai: requests in flight."""
    request_timeout_s: float = 600.0
    """openai: seconds per request."""
    max_retries: int = 6
    """openai: retries of transient errors."""
    tokenizer: str | None = None
    """openai: a local HF tokenizer of the served model, for exact truncation."""
    batch_size: int = 16
    """transformers: sequences decoded together (vllm: the least kept in flight)."""
    dtype: str = "bfloat16"
    device: str = "auto"
    open_think: str = "auto"
    """Open the assistant turn with <think>: auto (only for non-reasoning teachers), on, off."""
    engine_args: JSONObject = field(default_factory=dict)
    """--engine-arg KEY=VALUE pairs (a value parsed as JSON when it can be, else the string)."""
    sampling_fields: str = "full"
    """openai: full (also top_k -1, min_p 0, neutral penalties) or standard (the OpenAI API's fields)."""
    seed: int | None = None

    def as_dict(self) -> dict[str, object]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}

    def get(self, options: Mapping[str, object], key: str) -> Any:
        """options[key], or this default when the key is missing or None."""
        value = options.get(key)
        return getattr(self, key) if value is None else value


OPTION_DEFAULTS = BackendOptions()


@dataclass(frozen=True, kw_only=True, slots=True)
class GenerationRequest:
    key: int
    """Opaque handle that links the result back to its document (its position in the input stream)."""
    messages: tuple[dict[str, str], ...]
    """Chat messages, e.g. ({"role": "user", "content": prompt},); sent through the chat template."""
    seed: int | None = None
    """Per-request seed (the backend uses it where it can: OpenAI `seed`, vLLM per-request seed)."""
    meta: JSONObject = field(default_factory=dict)
    """Backend-specific extras (the procedural teacher reads the document from here)."""
    max_tokens: int | None = None
    """This document's own cap on generated tokens (a --thinking-budget plan, augment/budget.py), at
    most the run's SamplingParams.max_tokens; None: the run's."""

    def token_cap(self, sampling: SamplingParams) -> int:
        """The most tokens this request may generate."""
        if self.max_tokens is None:
            return sampling.max_tokens
        return min(self.max_tokens, sampling.max_tokens)


@dataclass(frozen=True, kw_only=True, slots=True)
class GenerationResult:
    key: int
    text: str = ""
    """Generated assistant text, not including any prefill the backend added."""
    reasoning: str | None = None
    """A server's separate reasoning channel (`reasoning_content` / `reasoning`), when it has one."""
    prefilled_think: bool = False
    """True when the backend opened the assistant turn with `<think>` itself (non-reasoning teachers)."""
    finish_reason: str = "stop"
    """'stop' (end of sequence or a stop string), 'length' (cut by max_tokens) or 'repetition' (the
    loop guard stopped it; `loop_start` says where the loop began)."""
    stop: str | None = None
    """With finish_reason 'stop': the stop string that ended the generation, or 'eos' (an
    end-of-sequence or stop token); None when the backend cannot tell."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    attempts: int = 1
    loop_start: int | None = None
    """With finish_reason 'repetition' (the loop guard stopped it): the offset in the generated tokens
    (teacher tokens; text pieces, loopguard.TEXT_PIECE, for a server without a tokenizer) where the
    loop began. `text` then holds what came before it."""
    error: str | None = None
    """Why the request failed for good (after retries); None on success."""
    refused_fields: tuple[str, ...] = ()
    """Sampling fields the server refused and this request went without (the openai backend drops
    its own neutral extras, e.g. top_k -1, that a server does not accept); the record's provenance then
    leaves them out of `sampling` and lists them in `sampling_refused`."""


class Backend(Protocol):
    """What `tpt augment` needs from a backend. Implementations live in tpt/augment/backends/."""

    name: str
    """Registry name ('transformers', 'openai', ...)."""
    model_id: str
    """What to record as the teacher model in provenance."""

    def truncate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
        """Cut each text to at most max_tokens teacher tokens.

        Returns (kept_text, num_tokens, was_truncated) per text; `num_tokens` counts kept_text in the
        teacher's tokenizer (or an estimate the backend documents when it has no tokenizer).
        """
        ...

    def generate(
        self, requests: Iterable[GenerationRequest], sampling: SamplingParams
    ) -> Iterator[GenerationResult]:
        """Yield one result per request, in completion order."""
        ...

    def close(self) -> None: ...

    # Optional: `sampling_in_force(sampling) -> dict`, every sampling parameter the backend decodes
    # with (what it sends, where that differs from `sampling.in_force()`); recorded in each record.


def sampling_in_force(backend: Backend, sampling: SamplingParams) -> JSONObject:
    """What a record's provenance says the decoding was."""
    own = getattr(backend, "sampling_in_force", None)
    return own(sampling) if own is not None else sampling.in_force()


# name -> "module:factory". A factory takes the parsed CLI options (a dict) and returns a Backend. A
# module is imported only when its backend is chosen, so a backend may live in a package above augment
# (reproduce's testbed teacher) without augment importing it.
BACKENDS: dict[str, str] = {
    "transformers": "tpt.augment.backends.transformers_backend:build",
    "openai": "tpt.augment.backends.openai_http:build",
    "vllm": "tpt.augment.backends.vllm_backend:build",
    "procedural": "tpt.reproduce.teacher:build",
}


def build_backend(name: str, options: dict[str, Any]) -> Backend:
    """Build a backend by registry name; options are the CLI options (model, base_url, ...)."""
    if name not in BACKENDS:
        import difflib

        close = difflib.get_close_matches(name, BACKENDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown backend {name!r}{hint}; choose one of {', '.join(BACKENDS)}")
    module_name, attr = BACKENDS[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr)(options)


def request_seed(base: int | None, doc_id: str) -> int | None:
    """A per-document seed: the same document gets the same seed on every run and in any order."""
    if base is None:
        return None
    import hashlib

    h = hashlib.sha256(f"{base}:{doc_id}".encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF

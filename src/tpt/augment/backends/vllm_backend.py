"""vLLM's in-process offline engine as a `tpt augment` backend, for GPUs (extra: `tpt[vllm]`).

It drives `LLM.llm_engine` with the calls `LLM.generate` itself makes (`add_request`, then `step`
until requests finish; see vLLM's `llm_engine_example.py`), so requests are pulled from the stage's
stream as slots free up instead of in fixed chunks: a long trajectory never holds back the ones
queued behind it. Prompts go in as token ids (rendered with the model's chat template and opened
with `<think>` like the transformers backend), so `prompt_tokens` is exact and the `<think>` prefill
is part of the prompt. Each request carries its own seed in `SamplingParams(seed=...)`, which vLLM
honours per request.

The loop guard: with it on, requests ask for `RequestOutputKind.DELTA`, so each `step()` returns the
tokens every running request just took; they go through the request's `LoopGuard`, and a looping
request is aborted through the engine (`abort_request`) at once, which frees its KV-cache blocks and
its slot in the batch for the next request.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tpt.augment.backends.base import NEUTRAL_SAMPLING, GenerationRequest, GenerationResult, SamplingParams
from tpt.augment.backends.base import OPTION_DEFAULTS as D
from tpt.augment.loopguard import FINISH_REPETITION, LoopGuard
from tpt.core.errors import ConfigError, MissingDependencyError

DEFAULT_MAX_NUM_SEQS = 256  # vLLM's usual default for `max_num_seqs` when the engine does not say


def build(options: dict[str, Any]) -> VllmBackend:
    """Start a vLLM engine for the teacher; --engine-arg KEY=VALUE pairs go to `vllm.LLM`."""
    try:
        import vllm
    except ImportError:
        raise MissingDependencyError("vllm", "the vllm backend", "vllm") from None
    from tpt.core.hfmodel import EMBEDDED_NAME, is_embedded, resolve_model_dir

    open_think = D.get(options, "open_think")
    if open_think not in ("auto", "on", "off"):
        raise ConfigError(f"--open-think must be auto, on or off, got {open_think!r}")
    model_arg = options.get("model")
    # A GGUF (the embedded teacher included) is converted once to a plain HF directory, which every
    # vLLM version loads; a directory is passed through untouched.
    kwargs: dict[str, object] = {"model": str(resolve_model_dir(model_arg))}
    if options.get("dtype"):
        kwargs["dtype"] = options["dtype"]
    if options.get("seed") is not None:
        kwargs["seed"] = options["seed"]
    kwargs.update(options.get("engine_args") or {})
    try:
        llm = vllm.LLM(**kwargs)
    except TypeError as exc:  # an --engine-arg this vLLM does not know
        raise ConfigError(f"vllm.LLM rejected the engine arguments {sorted(kwargs)}: {exc}") from None
    model_id = EMBEDDED_NAME if is_embedded(model_arg) else str(model_arg)
    return VllmBackend(
        llm,
        model_id=model_id,
        open_think=open_think,
        min_in_flight=int(options.get("batch_size") or 0),
    )


class VllmBackend:
    """Streams requests through a `vllm.LLM` engine, keeping about two batches' worth in flight."""

    name = "vllm"

    def __init__(self, llm: Any, *, model_id: str, open_think: str = "auto", min_in_flight: int = 0) -> None:
        from tpt.augment.chat import wants_open_think

        self.llm, self.engine, self.model_id = llm, llm.llm_engine, model_id
        self.tok = llm.get_tokenizer()
        self.open_think = wants_open_think(self.tok, open_think)
        self.max_model_len = int(self.engine.model_config.max_model_len)
        # Twice the engine's batch keeps its scheduler fed while finished requests are replaced.
        self.max_in_flight = max(min_in_flight, 2 * _max_num_seqs(self.engine))
        self._ids = itertools.count()
        self._output_kind = _output_kind("FINAL_ONLY")
        self._delta_kind = _output_kind("DELTA")

    def truncate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
        """Cut each text to max_tokens teacher tokens; the kept text is a prefix of the input."""
        from tpt.augment.truncation import truncate_texts

        return truncate_texts(self.tok, texts, max_tokens)

    def generate(
        self, requests: Iterable[GenerationRequest], sampling: SamplingParams
    ) -> Iterator[GenerationResult]:
        """Yield one result per request as the engine finishes them; max_in_flight pulled ahead."""
        source = iter(requests)
        inflight: dict[str, tuple[GenerationRequest, int, bool]] = {}
        watched: dict[str, _Watched] = {}  # with the loop guard on: what each request generated so far
        try:
            while True:
                errors, exhausted = self._top_up(source, sampling, inflight, watched)
                yield from errors
                if not inflight:
                    if exhausted:
                        return
                    continue
                for output in self.engine.step():
                    rid = output.request_id
                    if rid not in inflight:
                        continue
                    if rid in watched:
                        watch = watched[rid]
                        if watch.take(output, cumulative=self._delta_kind is None):
                            self.engine.abort_request([rid])  # frees its slot and KV blocks now
                            del watched[rid]
                            yield self._looped(watch, *inflight.pop(rid))
                            continue
                        if not output.finished:
                            continue
                        output = watch.as_output(output)
                        del watched[rid]
                    if output.finished:
                        yield self._result(output, *inflight.pop(rid))
                if inflight and not self.engine.has_unfinished_requests():
                    yield from _lost(inflight)  # no final output will come: fail them, do not spin
        finally:
            if inflight:  # the stage stopped early (or failed): free the engine's slots
                self.engine.abort_request(list(inflight))

    def close(self) -> None:
        # Drop our references; vLLM shuts its engine core down when the LLM object is collected.
        self.llm = self.engine = None

    def _top_up(
        self,
        source: Iterator[GenerationRequest],
        sampling: SamplingParams,
        inflight: dict[str, tuple[GenerationRequest, int, bool]],
        watched: dict[str, _Watched],
    ) -> tuple[list[GenerationResult], bool]:
        """Pull requests until max_in_flight are in the engine: (refused ones, exhausted?)."""
        wanted = self.max_in_flight - len(inflight)
        errors, pulled = [], 0
        for request in itertools.islice(source, wanted):
            pulled += 1
            if (error := self._add(request, sampling, inflight)) is not None:
                errors.append(error)
            elif (guard := sampling.loop_guard.guard()) is not None:
                watched[f"tpt-{self._last_id}"] = _Watched(guard)
        return errors, pulled < wanted

    def _add(
        self,
        request: GenerationRequest,
        sampling: SamplingParams,
        inflight: dict[str, tuple[GenerationRequest, int, bool]],
    ) -> GenerationResult | None:
        from vllm import SamplingParams as VllmSamplingParams

        from tpt.augment.chat import prepare_prompt

        prepared = prepare_prompt(
            self.tok, request, self.open_think, request.token_cap(sampling), self.max_model_len
        )
        if isinstance(prepared, GenerationResult):
            return prepared
        ids, prefilled, budget = prepared
        params: dict[str, object] = {
            "n": 1,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            **NEUTRAL_SAMPLING,  # said, not left to vLLM's defaults: the record holds what decoded
            **sampling.penalties(),
            "max_tokens": budget,
            "stop": [s for s in sampling.stop if s],
            "include_stop_str_in_output": False,
            "skip_special_tokens": True,
            "seed": request.seed,
        }
        if sampling.loop_guard.enabled:  # each step's new tokens, for the guard (None: old vLLM,
            if self._delta_kind is not None:  # whose step() returns running requests whole)
                params["output_kind"] = self._delta_kind
        elif self._output_kind is not None:
            params["output_kind"] = self._output_kind  # only finished requests come back from step()
        self._last_id = next(self._ids)
        request_id = f"tpt-{self._last_id}"
        try:
            self.engine.add_request(request_id, {"prompt_token_ids": ids}, VllmSamplingParams(**params))
        except (ValueError, TypeError) as exc:  # vLLM validates each request on its own
            return GenerationResult(
                key=request.key, prompt_tokens=len(ids), error=f"vllm refused the request: {exc}"
            )
        inflight[request_id] = (request, len(ids), prefilled)
        return None

    @staticmethod
    def _result(
        output: Any, request: GenerationRequest, num_prompt: int, prefilled: bool
    ) -> GenerationResult:
        completion = output.outputs[0]
        prompt_tokens = len(output.prompt_token_ids) if output.prompt_token_ids is not None else num_prompt
        if completion.finish_reason not in (
            "stop",
            "length",
        ):  # "abort" or None: no usable trajectory
            return GenerationResult(
                key=request.key,
                prompt_tokens=prompt_tokens,
                error=f"vllm finished the request with {completion.finish_reason!r}",
            )
        stop = getattr(completion, "stop_reason", None)  # the stop string, a stop token id, or None
        return GenerationResult(
            key=request.key,
            text=completion.text,
            prefilled_think=prefilled,
            finish_reason=completion.finish_reason,
            stop=(
                None
                if completion.finish_reason == "length"
                else stop
                if isinstance(stop, str) and stop
                else "eos"
            ),
            prompt_tokens=prompt_tokens,
            completion_tokens=len(completion.token_ids),
        )

    def _looped(
        self, watch: _Watched, request: GenerationRequest, num_prompt: int, prefilled: bool
    ) -> GenerationResult:
        start = watch.guard.loop_start or 0
        text = self.tok.decode(watch.ids[:start], skip_special_tokens=True)
        return GenerationResult(
            key=request.key,
            text=text,
            prefilled_think=prefilled,
            finish_reason=FINISH_REPETITION,
            stop="loop_guard",
            prompt_tokens=num_prompt,
            completion_tokens=len(watch.ids),
            loop_start=start,
        )


@dataclass(slots=True)
class _Watched:
    """A request the loop guard watches: the tokens and text it generated so far."""

    guard: LoopGuard
    ids: list[int] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)

    def take(self, output: Any, *, cumulative: bool) -> bool:
        """Add a step's output (its new tokens, or all of them from an old vLLM); True once looping."""
        completion = output.outputs[0]
        new = list(completion.token_ids)[len(self.ids) :] if cumulative else list(completion.token_ids)
        if cumulative:
            self.texts = [completion.text]
        elif completion.text:
            self.texts.append(completion.text)
        fired = False
        for token in new:  # every token is kept: all were generated (and paid for)
            self.ids.append(token)
            fired = self.guard.feed(token) or fired
        # A request that finished in the same step (a stop string, EOS, max_tokens) ended on its own.
        return fired and not output.finished

    def as_output(self, output: Any) -> Any:
        """The finished request's output with its whole text and tokens (DELTA gives the last step's)."""
        last = output.outputs[0]
        whole = types.SimpleNamespace(
            text="".join(self.texts),
            token_ids=self.ids,
            finish_reason=last.finish_reason,
            stop_reason=getattr(last, "stop_reason", None),
        )
        return types.SimpleNamespace(
            request_id=output.request_id,
            prompt_token_ids=output.prompt_token_ids,
            outputs=[whole],
            finished=output.finished,
        )


def _lost(inflight: dict[str, tuple[GenerationRequest, int, bool]]) -> Iterator[GenerationResult]:
    for request, num_prompt, _ in inflight.values():
        yield GenerationResult(
            key=request.key,
            prompt_tokens=num_prompt,
            error="vllm dropped the request without an output",
        )
    inflight.clear()


def _max_num_seqs(engine: Any) -> int:
    config = getattr(engine, "vllm_config", None)
    value = getattr(getattr(config, "scheduler_config", None), "max_num_seqs", None)
    return int(value) if value else DEFAULT_MAX_NUM_SEQS


def _output_kind(name: str) -> Any:
    try:
        from vllm.sampling_params import RequestOutputKind
    except ImportError:  # older vLLM: step() returns running requests too, whole (cumulative)
        return None
    return getattr(RequestOutputKind, name, None)

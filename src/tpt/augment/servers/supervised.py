"""The `openai` backend in front of a managed server: requests wait while it restarts, and requests a
dying server dropped are sent again instead of being recorded as failed documents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from tpt.augment.backends.base import (
    Backend,
    GenerationRequest,
    GenerationResult,
    SamplingParams,
    build_backend,
    sampling_in_force,
)
from tpt.augment.config import AugmentConfig
from tpt.augment.servers.engines import ServeSpec, generation_config
from tpt.augment.servers.server import ManagedServer
from tpt.core.errors import BackendError

# Error kinds (openai_http.ERROR_KINDS) that a server dying under a request produces; a request that
# fails this way while its server restarted is the server's fault, not the document's.
LOST_KINDS = ("connection", "timeout", "server_error", "bad_response")
MAX_RESENDS = 3
"""Times one request is sent again; then its failure is recorded (a document the server keeps failing on
while the server looks unresponsive, e.g. a busy llama.cpp server, is not resent forever)."""


class SupervisedBackend:
    """A Backend: delegates to `inner` (an openai backend pointed at `server`) and owns the server."""

    name = "openai"

    def __init__(self, server: ManagedServer, inner: Backend) -> None:
        self.server = server
        self.inner = inner
        self.model_id = inner.model_id

    def truncate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
        return self.inner.truncate(texts, max_tokens)

    @property
    def notices(self) -> dict[str, str]:
        return dict(getattr(self.inner, "notices", {}))

    def sampling_in_force(self, sampling: SamplingParams) -> dict[str, Any]:
        """What each request carries, and (vllm) where the server's defaults for the rest come from."""
        in_force = sampling_in_force(self.inner, sampling)
        if (config := generation_config(self.server.spec)) is not None:
            in_force["server_generation_config"] = config
        return in_force

    def generate(
        self, requests: Iterable[GenerationRequest], sampling: SamplingParams
    ) -> Iterator[GenerationResult]:
        """Yield one result per request; lost requests go round again once the server is back."""
        sent: dict[int, tuple[GenerationRequest, int]] = {}
        resends: dict[int, int] = {}
        source: Iterator[GenerationRequest] = iter(requests)
        while True:
            lost: list[GenerationRequest] = []
            for result in self.inner.generate(self._feed(source, sent), sampling):
                request, generation = sent.pop(result.key)
                if (
                    result.error
                    and resends.get(result.key, 0) < MAX_RESENDS
                    and self._lost_to_restart(result.error, generation)
                ):
                    resends[result.key] = resends.get(result.key, 0) + 1
                    lost.append(request)
                    continue
                resends.pop(result.key, None)
                yield result
            if not lost:
                return
            source = iter(lost)

    def _feed(
        self, source: Iterator[GenerationRequest], sent: dict[int, tuple[GenerationRequest, int]]
    ) -> Iterator[GenerationRequest]:
        # Pulled by the inner backend as it has room: holding back here keeps new documents from being
        # burned against a server that is restarting (in-flight ones finish or come back as lost).
        for request in source:
            while not self.server.wait_healthy(timeout_s=60.0):
                if self.server.failed:
                    raise BackendError(self.server.failed)
            sent[request.key] = (request, self.server.generation)
            yield request

    def _lost_to_restart(self, error: str, generation: int) -> bool:
        """A failure of the server's kind, while the server restarted or does not answer right now."""
        if error.split(":", 1)[0] not in LOST_KINDS:
            return False
        # Ask the server itself: the watcher may not have seen a death yet, and requests fail fast then.
        return generation != self.server.generation or not self.server.responding()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.server.stop()


def build_served_backend(spec: ServeSpec, options: dict[str, Any]) -> SupervisedBackend:
    """Start `spec`'s server here, wait for it, and return the openai backend that drives it."""
    server = ManagedServer(spec).start()
    try:
        inner = build_backend(
            "openai",
            {**options, "base_url": server.base_url, "model": spec.name, "server_engine": spec.engine},
        )
    except BaseException:
        server.stop()
        raise
    return SupervisedBackend(server, inner)


@dataclass(frozen=True)
class ServedTeacher:
    """The teacher of `--serve`: each process that builds it (this one, or each Ray worker) starts its
    own server for `spec` and drives it with the openai backend (tpt.augment.executors.Teacher)."""

    spec: ServeSpec

    @property
    def engine(self) -> str:
        """What runs the model (the Ray executor gives a GPU to vllm and sglang)."""
        return self.spec.engine

    def __call__(self, cfg: AugmentConfig) -> SupervisedBackend:
        return build_served_backend(self.spec, cfg.backend_options)

"""A server that refuses tpt's own sampling fields: the openai backend drops exactly those (only the
neutral extras: top_k -1, min_p 0, penalties off), says so in one line, records what was sent, and goes
on; a field of the paper's sampling, a penalty the user set or an --engine-arg field stays an error.

The bodies are those of tests/augment/data/refusals.json (each says where its shape comes from),
replayed by a real HTTP server on 127.0.0.1; the last test runs a real `transformers serve`."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

aiohttp = pytest.importorskip("aiohttp")
from aiohttp import web  # noqa: E402

from tpt.augment.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from tpt.augment.backends.openai_http import OpenAIHttpBackend  # noqa: E402
from tpt.augment.backends.openai_refusals import refused_fields  # noqa: E402
from tpt.augment.loopguard import LoopGuardOptions  # noqa: E402

CASES = json.loads((Path(__file__).parent / "data" / "refusals.json").read_text())["cases"]
IDS = [c["server"] for c in CASES]
REFUSED_NAMES = ("top_k", "min_p", "repetition_penalty")


def _body(case: dict, name: str) -> bytes:
    if "body_text" in case:
        return case["body_text"].replace("{name}", name).encode()
    return json.dumps(case["body"]).replace("{name}", name).encode()


class Replay:
    """An OpenAI-compatible server on 127.0.0.1 that answers a request carrying any of `refuses`
    with the case's refusal, and any other with a short completion (streamed when asked)."""

    def __init__(self, case: dict) -> None:
        self.case = case
        self.bodies: list[dict] = []
        self.refusals = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.bodies.append(body)
        present = [name for name in self.case["refuses"] if name in body]
        if present:
            self.refusals += 1
            name = present[0]
            return web.Response(
                status=self.case["status"],
                body=_body(self.case, name),
                headers={"Content-Type": self.case["content_type"]},
            )
        text = "A short thought about " + body["messages"][-1]["content"][:20]
        usage = {"prompt_tokens": 7, "completion_tokens": len(text.split())}
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return web.json_response({"choices": [choice], "usage": usage})
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for word in text.split(" "):
            delta = {"choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
            await resp.write(f"data: {json.dumps(delta)}\n\n".encode())
        end = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await resp.write(
            f"data: {json.dumps(end)}\n\ndata: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode()
        )
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "m"}]})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def __enter__(self) -> Replay:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


def req(i: int) -> GenerationRequest:
    return GenerationRequest(
        key=i, messages=({"role": "user", "content": f"document {i} on groups"},), seed=i
    )


def generate(base_url: str, n: int = 6, guard: bool = True, **options: object):
    notes = io.StringIO()
    sampling = {k: options.pop(k) for k in list(options) if k in ("repetition_penalty", "top_p")}
    backend = OpenAIHttpBackend(
        model="m", base_url=base_url, concurrency=3, max_retries=0, retry_base_s=0.01, **options
    )  # type: ignore[arg-type]
    backend.notice_stream = notes
    guard_options = LoopGuardOptions() if guard else LoopGuardOptions(enabled=False)
    try:
        params = SamplingParams(loop_guard=guard_options, **sampling)  # type: ignore[arg-type]
        results = sorted(backend.generate((req(i) for i in range(n)), params), key=lambda r: r.key)
        in_force = backend.sampling_in_force(params)
    finally:
        backend.close()
    return results, notes.getvalue(), in_force


def _sent_by_default(case: dict) -> list[str]:
    backend = OpenAIHttpBackend(
        model="m", base_url="http://127.0.0.1:1/v1", engine_args=case.get("engine_args")
    )
    return [*backend.body_template(SamplingParams()), "seed"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_body_names_the_fields_the_server_does_not_accept(case):
    body = _body(case, case["refuses"][0])
    assert refused_fields(body, _sent_by_default(case)) == frozenset(case["names"])


def test_only_fields_the_request_carried_count():
    body = b"{\"detail\": \"Unexpected fields in the request: {'top_k', 'foo'}\"}"
    assert refused_fields(body, ["top_k", "min_p"]) == {"top_k"}
    assert refused_fields(body, []) == frozenset()
    assert refused_fields(b"<html>Bad Request</html>", ["top_k"]) == frozenset()
    # a field inside a message is not a field of the request
    nested = {"detail": [{"type": "extra_forbidden", "loc": ["body", "messages", 0, "top_k"]}]}
    assert refused_fields(json.dumps(nested).encode(), ["top_k", "messages"]) == frozenset()


@pytest.mark.parametrize("guard", [True, False], ids=["streamed", "plain"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_the_run_goes_on_without_exactly_the_refused_fields(case, guard):
    n = 6 if case["outcome"] == "dropped" else 3  # 4 rejections before any success stop the run
    with Replay(case) as server:
        results, notes, in_force = generate(server.base_url, n, guard, engine_args=case.get("engine_args"))
        bodies, refusals = server.bodies, server.refusals
    if case["outcome"] == "failed":
        assert all(r.error and r.error.startswith("bad_request: HTTP") for r in results)
        assert notes == "" and all(r.refused_fields == () for r in results)
        if case["names"]:  # named, but not tpt's to drop
            assert all("not dropped" in r.error for r in results)
        return
    refused = sorted(case["refuses"])
    assert [r.error for r in results] == [None] * 6
    assert all(r.refused_fields == tuple(refused) for r in results)
    assert all(r.text.startswith("A short thought about document") for r in results)
    lines = notes.splitlines()
    # one line per field set the server named: all at once, or one field at a time
    assert len(lines) == (len(refused) if case.get("one_at_a_time") else 1)
    assert all(line.startswith("tpt augment: note: the server at ") for line in lines)
    assert sorted(n for line in lines for n in REFUSED_NAMES if n in line.split(";")[0]) == refused
    answered = [b for b in bodies if not set(case["refuses"]) & set(b)]
    assert len(answered) == 6
    for body in answered:  # everything else is still sent, as before
        assert (
            body["temperature"] == 0.6
            and body["top_p"] == 0.9
            and body["max_tokens"] == SamplingParams().max_tokens
        )
        assert body["presence_penalty"] == 0.0 and body["frequency_penalty"] == 0.0
        assert set(REFUSED_NAMES) - set(refused) <= set(body)
    # the drop is once for the run: refusals stop once every request goes without the fields
    assert refusals <= 3 * (len(refused) if case.get("one_at_a_time") else 1)
    assert not set(refused) & set(in_force)


def _transformers_case() -> dict:
    return next(c for c in CASES if c["server"] == "transformers serve")


@pytest.mark.parametrize(
    ("refuses", "options", "why"),
    [
        (["top_p"], {}, "the paper's sampling"),
        (["temperature", "top_k"], {}, "the paper's sampling"),
        (["repetition_penalty"], {"repetition_penalty": 1.1}, "a value you set"),
        (["top_k"], {"engine_args": {"top_k": -1}}, "a value you set"),
    ],
)
def test_a_field_tpt_must_not_drop_stays_an_error(refuses, options, why):
    names = ", ".join(f"'{n}'" for n in refuses)
    case = {
        **_transformers_case(),
        "body": {"detail": f"Unexpected fields in the request: {{{names}}}"},
        "refuses": refuses,
    }
    with Replay(case) as server:
        results, notes, _ = generate(server.base_url, n=3, **options)
    assert notes == ""
    for r in results:
        assert r.error.startswith("bad_request: HTTP 422: Unexpected fields")
        assert f"the server refuses {', '.join(sorted(set(refuses) - {'top_k'}) or refuses)}" in r.error
        assert "not dropped" in r.error and why in r.error


def test_the_stage_records_what_was_sent_in_provenance_and_summary(tmp_path):
    from tpt.cli import main

    corpus = tmp_path / "in.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"Text {i} on rings."}) + "\n" for i in range(4))
    )
    out = tmp_path / "out"
    with Replay(_transformers_case()) as server:
        code = main(["augment", str(corpus), "--output", str(out), "--backend", "openai",
                     "--base-url", server.base_url, "--model", "m", "--no-progress"])  # fmt: skip
    assert code == 0
    records = [json.loads(line) for f in sorted((out / "shards").glob("*.jsonl")) for line in f.open()]
    assert len(records) == 4
    for record in records:
        prov = record["provenance"]
        assert prov["sampling_refused"] == ["min_p", "repetition_penalty", "top_k"]
        assert not set(REFUSED_NAMES) & set(prov["sampling"])
        assert prov["sampling"]["temperature"] == 0.6 and prov["sampling"]["presence_penalty"] == 0.0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 4 and summary["failures"] == 0
    assert summary["sampling_refused_this_run"] == ["min_p", "repetition_penalty", "top_k"]
    assert summary["sampling_sent_this_run"] == [records[0]["provenance"]["sampling"]]


# --- a real `transformers serve` ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serving_skip_reason() -> str | None:
    try:
        from transformers.utils.import_utils import is_serve_available
    except ImportError:
        return "transformers is not installed (the hf extra)"
    if not is_serve_available():
        return "transformers serve needs the serving extra: pip install 'transformers[serving]'"
    if shutil.which("transformers", path=os.path.dirname(sys.executable)) is None:
        return "no `transformers` command beside this Python"
    return None


@pytest.mark.slow
def test_the_default_command_against_a_real_transformers_serve(tmp_path, capfd):
    if reason := _serving_skip_reason():
        pytest.skip(reason)
    from tpt.cli import main
    from tpt.core.errors import TptError
    from tpt.core.hfmodel import resolve_model_dir

    try:
        model = str(resolve_model_dir(None))  # the embedded SmolLM2-135M-Instruct, as a HF directory
    except TptError as exc:
        pytest.skip(f"no local SmolLM2-135M directory: {exc}")
    port = _free_port()
    command = [os.path.join(os.path.dirname(sys.executable), "transformers"), "serve", model,
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]  # fmt: skip
    # One thread: on a loaded 2-core machine torch's default threads make a 24-token answer take
    # minutes (measured 136 s against 9 s with one thread); a 135M model needs no more.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(
                        f"transformers serve did not start: {(tmp_path / 'serve.log').read_text()[-400:]}"
                    )
                time.sleep(0.5)
        corpus = tmp_path / "in.jsonl"
        texts = ["The Nile flows north.", "Bees dance to share where flowers are.",
                 "Iron rusts in damp air.", "A prime has two divisors."]  # fmt: skip
        corpus.write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts)))
        out = tmp_path / "out"
        capfd.readouterr()
        code = main(["augment", str(corpus), "--output", str(out), "--backend", "openai",
                     "--base-url", f"http://127.0.0.1:{port}/v1", "--model", model,
                     "--max-thinking-tokens", "24", "--concurrency", "2", "--no-progress"])  # fmt: skip
        err = capfd.readouterr().err
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    assert code == 0, err
    notes = [line for line in err.splitlines() if line.startswith("tpt augment: note:")]
    assert len(notes) == 1 and "does not accept min_p, repetition_penalty, top_k (HTTP 422)" in notes[0]
    records = [json.loads(line) for f in sorted((out / "shards").glob("*.jsonl")) for line in f.open()]
    assert sorted(r["id"] for r in records) == ["d0", "d1", "d2", "d3"]
    assert all(r["thinking"] and r["completion_tokens"] > 0 for r in records)
    for record in records:
        assert record["provenance"]["sampling_refused"] == ["min_p", "repetition_penalty", "top_k"]
        assert "top_k" not in record["provenance"]["sampling"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sampling_refused_this_run"] == ["min_p", "repetition_penalty", "top_k"]

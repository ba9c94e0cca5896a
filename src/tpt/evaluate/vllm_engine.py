"""Generation with vLLM (`--engine vllm`), for GPU users: the same prompts, stops and sampling as `hf`.

vLLM needs a GPU and is not installed on the CPU machines where tpt is tested, so this module is tested
against a fake `vllm` module that checks the calls made to it (tests/evaluate/test_vllm_engine.py);
run it for real with `pip install vllm` on a GPU machine.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tpt.core.errors import BackendError, MissingDependencyError
from tpt.evaluate.engine import Completion, GenParams, cut_at_stop
from tpt.evaluate.models import encode_prompts, prompt_bos


class VllmEngine:
    """Offline `vllm.LLM` generation; vLLM schedules its own batches (batch_size is not used)."""

    name = "vllm"

    def __init__(
        self,
        model_dir: Path,
        *,
        dtype: str = "auto",
        device: str = "cuda",
        batch_size: int = 32,
        seed: int = 0,
    ):
        try:
            import vllm
        except ImportError:
            raise MissingDependencyError("vllm", "--engine vllm", "vllm") from None
        self.vllm = vllm
        self.dtype = dtype
        self.bos = prompt_bos(Path(model_dir))
        """(known, bos_id): a tpt checkpoint's BOS convention; prompts then go in as token ids."""
        try:
            self.llm = vllm.LLM(model=str(model_dir), dtype=dtype, seed=seed)
        except Exception as exc:  # vLLM raises many types (CUDA, config, OOM)
            raise BackendError(f"vLLM could not load {model_dir}: {exc}") from exc

    def close(self) -> None:
        self.llm = None

    def generate(self, prompts: Sequence[str], params: GenParams) -> list[list[Completion]]:
        sampling = self.vllm.SamplingParams(
            n=params.samples,
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_new_tokens,
            stop=list(params.stop),
            seed=params.seed,
        )
        inputs: list = list(prompts)
        if self.bos[0]:  # encoded as training packed them, not by vLLM's add_special_tokens default
            ids = encode_prompts(self.llm.get_tokenizer(), list(prompts), self.bos)
            inputs = [{"prompt_token_ids": row} for row in ids]
        outputs = self.llm.generate(inputs, sampling, use_tqdm=False)
        results = []
        for out in outputs:
            row = []
            for c in out.outputs:
                text, found = cut_at_stop(c.text, params.stop)  # vLLM already cuts; kept for safety
                if c.finish_reason == "length":
                    reason = "length"
                elif found or getattr(c, "stop_reason", None) is not None:
                    reason = "stop"
                else:
                    reason = "eos"
                row.append(Completion(text=text, num_tokens=len(c.token_ids), finish_reason=reason))
            results.append(row)
        return results

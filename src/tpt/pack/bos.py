"""The BOS convention: whether every training sample, and so every evaluation prompt, starts with BOS.

One convention for both sides. `tpt pack --bos auto` (the default) follows the student tokenizer: when
it puts a beginning-of-sequence token in front of a text it encodes with special tokens (Llama 3's
`<|begin_of_text|>`), every packed sample starts with it; when it adds none (GPT-2, Qwen2, the
tokenizers `tpt tokenizer train` makes), no sample does. That is right for both kinds of student: a
checkpoint mid-trained with its own tokenizer keeps the convention it was pre-trained with, and a student
trained from scratch sees BOS in training exactly where evaluation will put it. `--bos on|off` forces it.

The choice is recorded in `index.json` (`bos_id`, `bos_token`; null: no BOS); `tpt train` copies `bos_id`
into every checkpoint's `tpt_checkpoint.json`, and `tpt eval` encodes prompts by it (BOS + prompt, or the
prompt alone) instead of by the tokenizer's own default. Models that are not tpt checkpoints are encoded
with their tokenizer's default, which is their own pre-training convention.
"""

from __future__ import annotations

from tpt.core.errors import ConfigError
from tpt.formats.student import StudentTokenizer

BOS_SETTINGS = ("auto", "on", "off")


def resolve_bos(student: StudentTokenizer, setting: str) -> int | None:
    """The id every sample starts with, or None."""
    if setting not in BOS_SETTINGS:
        raise ConfigError(f"--bos must be one of {', '.join(BOS_SETTINGS)}, got {setting!r}")
    if setting == "off":
        return None
    if student.bos_id is not None:
        return student.bos_id
    if setting == "on":
        name = student.config.get("bos_token")
        name = name.get("content") if isinstance(name, dict) else name
        bos = student.tokenizer.token_to_id(name) if isinstance(name, str) and name else None
        if bos is None:
            raise ConfigError(
                f"--bos on: the tokenizer {student.source} has no beginning-of-sequence token "
                "(no bos_token in its tokenizer_config.json); use --bos auto or off"
            )
        return int(bos)
    return None

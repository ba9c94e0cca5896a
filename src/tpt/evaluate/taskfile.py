"""Read user task files (`--task-file FILE`, YAML or JSON) into TaskSpecs; the format is in docs/eval.md.

A file holds one task (a mapping) or several (`{"tasks": [...]}`). Relative paths are relative to the file.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from tpt.core.errors import ConfigError, InputError, MissingDependencyError
from tpt.core.jsontypes import JSONObject
from tpt.evaluate.spec import DataSource, FewShotSpec, TaskSpec

TASK_KEYS = {
    "name", "description", "data", "question_field", "answer_field", "id_field", "prompt", "target",
    "preamble", "target_delimiter", "fewshot_delimiter", "fewshot", "stop", "max_new_tokens", "extract",
    "compare", "loglik_target",
}  # fmt: skip
FEWSHOT_KEYS = {
    "k",
    "file",
    "examples",
    "order",
    "seed",
    "match_field",
    "question_field",
    "answer_field",
    "id_field",
}
REQUIRED = ("name", "data", "prompt", "extract")
STRING_FIELDS = (
    "target",
    "preamble",
    "target_delimiter",
    "fewshot_delimiter",
    "description",
    "compare",
    "loglik_target",
)


def _check_keys(obj: JSONObject, allowed: set[str], where: str) -> None:
    for key in obj:
        if key not in allowed:
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r}{hint} (allowed: {', '.join(sorted(allowed))})")


def parse_file(path: Path) -> Any:
    if not path.is_file():
        raise InputError(f"task file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise MissingDependencyError("pyyaml", "a YAML task file") from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"task file {path} is not valid YAML ({exc})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"task file {path} is not valid JSON ({exc}); use .yaml/.yml for YAML") from None


def load_task_file(path: str | Path) -> list[TaskSpec]:
    """All tasks of a task file, validated."""
    path = Path(path).expanduser().resolve()
    raw = parse_file(path)
    if isinstance(raw, dict) and "tasks" in raw:
        if set(raw) != {"tasks"} or not isinstance(raw["tasks"], list):
            raise ConfigError(f"task file {path}: 'tasks' must be the only key, holding a list of tasks")
        items = raw["tasks"]
    elif isinstance(raw, dict):
        items = [raw]
    else:
        raise ConfigError(f"task file {path}: expected a mapping (one task) or {{tasks: [...]}}")
    tasks = [
        task_from_dict(item, base=path.parent, where=f"task file {path} (task {i + 1})")
        for i, item in enumerate(items)
    ]
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ConfigError(f"task file {path}: task names repeat: {names}")
    return tasks


def _as_str_tuple(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where}: expected a string or a list of strings, got {value!r}")


def task_from_dict(obj: Any, *, base: Path, where: str) -> TaskSpec:
    """One task from its parsed mapping; errors name the file, the task and the field."""
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: a task must be a mapping, got {type(obj).__name__}")
    _check_keys(obj, TASK_KEYS, where)
    missing = [k for k in REQUIRED if k not in obj]
    if missing:
        raise ConfigError(f"{where}: missing required field(s) {', '.join(missing)} (see docs/eval.md)")
    where = f"{where} {obj['name']!r}"
    names = {k: obj.get(k) for k in ("question_field", "answer_field", "id_field")}
    data = DataSource(
        path=str((base / str(obj["data"])).resolve()),
        question_field=str(names["question_field"] or "question"),
        answer_field=str(names["answer_field"] or "answer"),
        id_field=str(names["id_field"]) if names["id_field"] else None,
    )
    metrics = _metrics(obj["extract"], where)
    kwargs = _optional_fields(obj, where)
    if not isinstance(obj["prompt"], str):
        raise ConfigError(f"{where}: 'prompt' must be a string template such as '{{question}}'")
    try:
        return _build(obj, data, metrics, kwargs, base=base, where=where)
    except ConfigError as exc:
        if str(exc).startswith(where):
            raise
        raise ConfigError(f"{where}: {exc}") from None


def _metrics(extract: Any, where: str) -> tuple[tuple[str, str], ...]:
    """`extract: rule` is the metric `accuracy`; `extract: {name: rule, ...}` names several."""
    if isinstance(extract, str):
        return (("accuracy", extract),)
    if isinstance(extract, dict) and extract:
        return tuple((str(k), str(v)) for k, v in extract.items())
    raise ConfigError(f"{where}: 'extract' must be a rule string or a mapping metric -> rule")


def _optional_fields(obj: JSONObject, where: str) -> dict[str, object]:
    """The optional string and integer fields that map one to one onto TaskSpec."""
    kwargs: dict[str, object] = {}
    for key in STRING_FIELDS:
        if key in obj:
            if not isinstance(obj[key], str):
                raise ConfigError(f"{where}: {key!r} must be a string")
            kwargs[key] = obj[key]
    if "max_new_tokens" in obj:
        value = obj["max_new_tokens"]
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: 'max_new_tokens' must be an integer")
        kwargs["max_new_tokens"] = value
    return kwargs


def _build(
    obj: JSONObject,
    data: DataSource,
    metrics: tuple[tuple[str, str], ...],
    kwargs: dict[str, object],
    *,
    base: Path,
    where: str,
) -> TaskSpec:
    return TaskSpec(
        name=str(obj["name"]),
        data=data,
        prompt=obj["prompt"],
        fewshot=fewshot_from(obj.get("fewshot"), data, base=base, where=where),
        stop=_as_str_tuple(obj.get("stop"), f"{where}: 'stop'"),
        metrics=metrics,
        source=str(base),
        **kwargs,
    )


def fewshot_from(obj: Any, data: DataSource, *, base: Path, where: str) -> FewShotSpec:
    """`fewshot`: absent/null/0 (none), or {k, file | examples, order, seed, match_field}."""
    if obj in (None, 0, False):
        return FewShotSpec()
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: 'fewshot' must be a mapping such as {{k: 3, file: train.jsonl}}")
    _check_keys(obj, FEWSHOT_KEYS, f"{where}: fewshot")
    if "file" in obj and "examples" in obj:
        raise ConfigError(f"{where}: fewshot takes 'file' or 'examples', not both")
    pool = None
    if "file" in obj:
        pool = DataSource(
            path=str((base / str(obj["file"])).resolve()),
            question_field=str(obj.get("question_field") or data.question_field),
            answer_field=str(obj.get("answer_field") or data.answer_field),
            id_field=obj.get("id_field") or data.id_field,
        )
    examples = obj.get("examples") or []
    if not isinstance(examples, list) or not all(isinstance(e, dict) for e in examples):
        raise ConfigError(f"{where}: fewshot.examples must be a list of records like the data's")
    k = obj.get("k", len(examples) if examples else 0)
    if not isinstance(k, int) or isinstance(k, bool):
        raise ConfigError(f"{where}: fewshot.k must be an integer")
    return FewShotSpec(
        k=k,
        pool=pool,
        inline=tuple(examples),
        order=str(obj.get("order", "first")),
        seed=int(obj.get("seed", 1234)),
        match_field=obj.get("match_field"),
    )

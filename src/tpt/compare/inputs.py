"""Read what `tpt eval` wrote into per-item results per training run and task.

An arm member is either an eval results file (the `--output` of `tpt eval`, with its `.samples.jsonl`
beside it: every model in it is one run) or a `tpt train` run directory (its rows are looked up in the
`*.jsonl` results files inside the run directory, beside it, and in `--results`). The per-item correctness
comes from the samples file; the rows say which checkpoints are complete, at how many training tokens, and
with which eval settings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError
from tpt.core.jsontypes import JSONObject
from tpt.evaluate.stage import samples_path_for

IGNORED_SETTINGS = ("step", "fingerprint")
"""Row config keys that differ per checkpoint, never between comparable runs."""
ROW_KEYS = ("model", "task", "metric", "config")


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskResults:
    """One run's per-item results on one task: `correct[k][i]` at `tokens[k]`, item `ids[i]`.

    With several samples per item (`tpt eval --samples S`) an entry is the share of its samples right.
    """

    tokens: tuple[int, ...]
    ids: tuple[str, ...]
    correct: tuple[tuple[float, ...], ...]
    settings: JSONObject
    """The rows' eval config without the per-checkpoint keys (IGNORED_SETTINGS)."""
    metric: str


@dataclass(frozen=True, kw_only=True, slots=True)
class EvaluatedRun:
    """One trained run (one arm member, one seed) and its per-task results."""

    arm: str
    model: str
    """The model as `tpt eval` recorded it (the run directory)."""
    source: Path
    """The results file it was read from."""
    seed: str
    seed_from: str
    """"manifest" (the training seed in the run's manifest.json) or "position" (its place in --arm)."""
    tasks: dict[str, TaskResults]

    @property
    def label(self) -> str:
        return f"{self.arm}/{self.seed} ({self.model})"


def _iter_jsonl(path: Path):
    """(line number, record) of a JSONL file, streamed; a half line at the very end (a kill) is skipped."""
    bad: int | None = None
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                if bad is not None:
                    raise InputError(f"{path}:{bad}: not valid JSON; fix or remove the line")
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    bad = n  # an error only if a record follows it
                    continue
                if not isinstance(rec, dict):
                    raise InputError(f"{path}:{n}: expected a JSON object")
                yield n, rec
    except UnicodeDecodeError:
        raise InputError(f"{path} is not a UTF-8 text file (expected the JSONL `tpt eval` writes)") from None


def _read_jsonl(path: Path) -> list[JSONObject]:
    return [rec for _, rec in _iter_jsonl(path)]


def is_results_file(path: Path) -> bool:
    """Whether the first record of `path` looks like a `tpt eval` result row."""
    try:
        with open(path, encoding="utf-8") as f:
            first = f.readline()
        rec = json.loads(first)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(rec, dict) and all(k in rec for k in ROW_KEYS)


def settings_of(config: JSONObject) -> JSONObject:
    return {k: v for k, v in config.items() if k not in IGNORED_SETTINGS}


def flat(settings: JSONObject, prefix: str = "") -> JSONObject:
    """{"task": {"prompt": ...}} -> {"task.prompt": ...}, for naming the field two settings differ in."""
    out: JSONObject = {}
    for k, v in settings.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differing(a: JSONObject, b: JSONObject) -> list[str]:
    fa, fb = flat(a), flat(b)
    return sorted(k for k in set(fa) | set(fb) if fa.get(k, "<absent>") != fb.get(k, "<absent>"))


def _model_seed(model: str) -> str | None:
    """The training seed recorded in the run directory's manifest.json, if it can be read."""
    path = Path(model).expanduser()
    if path.name == "checkpoints":
        path = path.parent
    manifest = path / "manifest.json"
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    for where in (data.get("fingerprinted", {}), data.get("config", {}).get("train", {}),
                  data.get("config", {}).get("sft", {})):  # fmt: skip
        if isinstance(where, dict) and "seed" in where:
            return str(where["seed"])
    return None


@dataclass(slots=True)
class _Plan:
    """What the rows of one (model, task) say: its setting, metric, complete checkpoints and their
    fingerprints; `hits` collects the per-item results as the samples stream by."""

    where: str
    setting: JSONObject
    metric: str
    rows: dict[int, JSONObject]
    fingerprints: dict[int, str | None]
    hits: dict[int, dict[str, dict[int, float]]]


def _plan(path: Path, model: str, task: str, rows: list[JSONObject], metric: str | None) -> _Plan:
    where = f"{path}: run {model}, task {task}"
    settings: dict[str, JSONObject] = {}
    for r in rows:
        s = settings_of(r["config"])
        settings.setdefault(json.dumps(s, sort_keys=True), s)
    if len(settings) > 1:
        a, b = list(settings.values())[:2]
        raise InputError(
            f"{where}: scored with {len(settings)} different eval settings (differing in "
            f"{', '.join(differing(a, b))}); tpt compare needs one: score the runs into a separate --output file"
        )
    [setting] = settings.values()
    metrics = list((setting.get("task") or {}).get("metrics") or {})
    by_ckpt: dict[int, JSONObject] = {}
    for r in rows:
        if r.get("tokens_seen") is None:
            raise InputError(
                f"{where}: a row has no tokens_seen (checkpoint {r.get('checkpoint')}); only checkpoints of "
                "`tpt train` runs can be placed on a training-token axis"
            )
        by_ckpt.setdefault(int(r["tokens_seen"]), r)
    return _Plan(
        where=where, setting=setting, metric=metric or (metrics[0] if metrics else "accuracy"), rows=by_ckpt,
        fingerprints={t: r["config"].get("fingerprint") for t, r in by_ckpt.items()}, hits={t: {} for t in by_ckpt},
    )  # fmt: skip


def _take(plan: _Plan, s: JSONObject) -> None:
    """Record one sample's correctness (the last record of an (item, sample) wins, as docs/eval.md says)."""
    t = s.get("tokens_seen")
    if t is None or int(t) not in plan.hits:
        return
    if "fingerprint" in s and s["fingerprint"] != plan.fingerprints[int(t)]:
        return  # this checkpoint scored with another setting
    correct = s.get("correct") or {}
    if plan.metric not in correct:
        have = ", ".join(sorted(correct)) or "none"
        raise InputError(
            f"{plan.where}: the samples have no metric {plan.metric!r} (they have {have}); pass --metric"
        )
    plan.hits[int(t)].setdefault(str(s["id"]), {})[int(s.get("sample", 0))] = float(
        bool(correct[plan.metric])
    )


def _finish(plan: _Plan, samples_path: Path) -> TaskResults:
    tokens = tuple(sorted(plan.rows))
    hits = plan.hits
    ids = sorted(hits[tokens[0]])
    for t in tokens:
        n, name = plan.rows[t].get("n"), plan.rows[t].get("checkpoint")
        if not hits[t]:
            raise InputError(
                f"{plan.where}: no per-item results for checkpoint {name} in {samples_path}; re-run the same "
                "`tpt eval` command to write them"
            )
        if sorted(hits[t]) != ids or (n is not None and len(hits[t]) != n):
            raise InputError(
                f"{plan.where}: checkpoint {name} has per-item results for {len(hits[t])} items, checkpoint "
                f"{plan.rows[tokens[0]].get('checkpoint')} for {len(ids)} (the rows say {n}); re-run the same "
                "`tpt eval` command to complete it"
            )
    correct = tuple(tuple(sum(hits[t][i].values()) / len(hits[t][i]) for i in ids) for t in tokens)
    return TaskResults(
        tokens=tokens, ids=tuple(ids), correct=correct, settings=plan.setting, metric=plan.metric
    )


def read_results_file(
    path: Path, *, models: set[str] | None = None, metric: str | None = None
) -> dict[str, dict[str, TaskResults]]:
    """model -> task -> results, for every model in a results file (or those in `models`, resolved paths).

    The samples file is streamed, keeping one number per (checkpoint, item, sample): its prompts and
    generations are never held in memory.
    """
    if not path.is_file():
        raise InputError(f"{path} does not exist (expected a `tpt eval` results file or a run directory)")
    rows = _read_jsonl(path)
    bad = next((n for n, r in enumerate(rows, start=1) if not all(k in r for k in ROW_KEYS)), None)
    if bad is not None:
        raise InputError(f"{path}: record {bad} is not a `tpt eval` result row (needs {', '.join(ROW_KEYS)})")
    if models is not None:
        rows = [r for r in rows if _resolved(r["model"]) in models]
    if not rows:
        return {}
    samples_path = samples_path_for(path)
    if not samples_path.is_file():
        raise InputError(
            f"{path}: its per-item results {samples_path.name} are not beside it; tpt compare needs the samples "
            "file `tpt eval --output` writes"
        )
    # One row per checkpoint is enough to know its settings (the metrics of one checkpoint share a config).
    grouped: dict[tuple[str, str], dict[Any, JSONObject]] = {}
    for r in rows:
        grouped.setdefault((r["model"], r["task"]), {}).setdefault(r["config"].get("fingerprint"), r)
    plans = {key: _plan(path, *key, list(by_fp.values()), metric) for key, by_fp in grouped.items()}
    for _, s in _iter_jsonl(samples_path):
        plan = plans.get((str(s.get("model")), str(s.get("task"))))
        if plan is not None:
            _take(plan, s)
    out: dict[str, dict[str, TaskResults]] = {}
    for (model, task), plan in plans.items():
        out.setdefault(model, {})[task] = _finish(plan, samples_path)
    return out


def _resolved(model: str) -> str:
    p = Path(model).expanduser()
    if p.name == "checkpoints":
        p = p.parent
    return str(p.resolve())


def load_arm(
    arm: str, members: tuple[str, ...], *, results: tuple[Path, ...] = (), metric: str | None = None
) -> list[EvaluatedRun]:
    """The runs of one arm, in the order given (a results file may hold several runs)."""
    found: list[tuple[str, Path, dict[str, TaskResults]]] = []
    for member in members:
        path = Path(member).expanduser()
        if path.is_dir():
            target = _resolved(str(path))
            candidates = [*sorted(path.glob("*.jsonl")), *sorted(path.parent.glob("*.jsonl")), *results]
            seen: set[Path] = set()
            hit = None
            for c in candidates:
                c = c.resolve()
                if c in seen or c.name.endswith(".samples.jsonl") or not is_results_file(c):
                    continue
                seen.add(c)
                got = read_results_file(c, models={target}, metric=metric)
                if got:
                    if hit is not None:
                        raise InputError(
                            f"arm {arm}: run {path} has eval results in two files ({hit[1]} and {c}); "
                            "name the one to compare instead of the run directory"
                        )
                    [(model, tasks)] = got.items()
                    hit = (model, c, tasks)
            if hit is None:
                raise InputError(
                    f"arm {arm}: no `tpt eval` results for run {path} in {path}/*.jsonl, {path.parent}/*.jsonl "
                    f"or --results; score it first: tpt eval {path} --tasks ... --output {path}/eval.jsonl"
                )
            found.append(hit)
        else:
            got = read_results_file(path, metric=metric)
            if not got:
                raise InputError(f"arm {arm}: {path} holds no result rows")
            found.extend((model, path, tasks) for model, tasks in got.items())
    runs = []
    for position, (model, source, tasks) in enumerate(found, start=1):
        seed = _model_seed(model)
        runs.append(EvaluatedRun(arm=arm, model=model, source=source, seed=seed or f"#{position}",
                                 seed_from="manifest" if seed is not None else "position", tasks=tasks))  # fmt: skip
    models = [r.model for r in runs]
    dup = next((m for m in models if models.count(m) > 1), None)
    if dup is not None:
        raise InputError(f"arm {arm}: run {dup} is given twice")
    seeds = [r.seed for r in runs]
    same = next((s for s in seeds if seeds.count(s) > 1), None)
    if same is not None:
        which = [r.model for r in runs if r.seed == same]
        raise InputError(
            f"arm {arm}: runs {which[0]} and {which[1]} have the same training seed {same}; seeds of one arm "
            "must differ (they are paired with the baseline's by seed)"
        )
    return runs


def read_levels(path: Path, field: str) -> dict[str, str]:
    """item id -> stratum, from a JSONL file (id: the record's `id`, else its 1-based line number)."""
    if not path.is_file():
        raise InputError(f"--levels {path} does not exist")
    out: dict[str, str] = {}
    text = path.read_text(encoding="utf-8")
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise InputError(f"{path}:{n}: not valid JSON") from None
        if not isinstance(rec, dict) or field not in rec:
            raise InputError(f"{path}:{n}: record has no field {field!r} (pass --level-field)")
        out[str(rec.get("id", n))] = str(rec[field])
    return out

"""`tpt validate`: split augmented records into kept.jsonl and rejected.jsonl, with counts per reason."""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tpt.core.artifacts import claim_output_dir, write_json
from tpt.core.duplicate_ids import DuplicateCheck
from tpt.core.errors import ConfigError
from tpt.core.jsontypes import JSONObject
from tpt.formats.reading import resolve_record_files
from tpt.formats.summaries import ValidateSummary
from tpt.quality.checks import Validator
from tpt.storage import as_path, is_remote
from tpt.storage.lease import upload_held as upload  # checks the lease, then uploads
from tpt.storage.outputlock import lock_output_dir
from tpt.validate.config import ValidateConfig
from tpt.validate.judging import MAX_LISTED, judge_unit
from tpt.validate.units import PARTS, UnitBook, merge_parts, remove_parts


def run(config: ValidateConfig) -> ValidateSummary:
    """Judge every record; kept ones are copied byte for byte, rejected ones carry their reason.

    Writes kept.jsonl, rejected.jsonl and summary.json (`ValidateSummary.to_json()`) to config.output."""
    with lock_output_dir(config.output, stage="validate"):
        return _run_validate(config, DuplicateCheck(config.duplicate_ids))


def _run_validate(cfg: ValidateConfig, dups: DuplicateCheck) -> ValidateSummary:
    started = time.monotonic()
    inputs, config = cfg.inputs, cfg.checks
    files = resolve_record_files(inputs)
    out = as_path(cfg.output)
    if cfg.executor == "ray" and is_remote(out):
        raise ConfigError(
            "validate --executor ray writes its parts where every worker can read them: give a local or "
            "shared --output, not object storage"
        )
    # On object storage the files are written on local disk, then uploaded whole (one object each);
    # such a run is not resumable (its parts lie in a temporary directory).
    work = Path(tempfile.mkdtemp(prefix="tpt-validate-")) if is_remote(out) else out
    run_config = {"inputs": [str(i) for i in inputs], **config.as_dict(), "duplicate_ids": dups.policy}
    claim_output_dir(out, stage="validate", config=run_config, fingerprinted=config.as_dict(), override=True)
    # The parts are reusable only for the same checks, policy and input files (units.py).
    book = UnitBook(work / PARTS, {"config": run_config, "files": [str(f) for f in files]})
    _say_resumed(book, len(files))
    with _cluster(cfg) as ray:  # None: --executor local
        totals = _Totals()
        if ray is not None:
            for facts in ray.judge(book, files, config, dups.policy):
                dups.count += facts["duplicate_ids"]
                totals.add(facts)
        else:
            _judge_here(book, files, Validator(config), dups, totals)
        # on Ray a worker merges and removes the parts: the driver moves no record bytes
        place = ray.run if ray is not None else _here
        place(merge_parts, str(book.dir), str(work), len(files), ray is not None)
        for name in ("kept.jsonl", "rejected.jsonl"):
            if work is not out:
                upload(work / name, out / name)
                (work / name).unlink()
        summary = ValidateSummary(
            output=out,
            records=totals.records,
            kept=totals.kept,
            rejected=totals.records - totals.kept,
            by_reason=dict(sorted(totals.reasons.items())),
            duplicate_ids=dups.count,
            duplicate_policy=dups.policy,
            duplicates_listed=tuple(totals.repeats),
            by_source={s: dict(sorted(c.items())) for s, c in sorted(totals.by_source.items())},
            inputs=tuple(str(f) for f in files),
            checks=config.as_dict(),
            wall_seconds=round(time.monotonic() - started, 3),
        )
        write_json(out / "summary.json", summary.to_json())
        place(remove_parts, str(book.dir))
    if work is not out:
        shutil.rmtree(work, ignore_errors=True)
    return summary


def _cluster(cfg: ValidateConfig) -> Any:
    """The Ray session of an `--executor ray` run (ray_units.RaySession), else a context giving None."""
    if cfg.executor != "ray":
        return contextlib.nullcontext(None)
    from tpt.validate.ray_units import RaySession

    return RaySession(cfg.ray)


def _here(fn: Any, *args: Any) -> Any:
    return fn(*args)


def _judge_here(
    book: UnitBook, files: Sequence[Path], validator: Validator, dups: DuplicateCheck, totals: _Totals
) -> None:
    """--executor local: the units in order, in this process."""
    for unit, path in enumerate(files):
        facts = book.committed(unit)
        if facts is None:
            facts = judge_unit(book, unit, path, totals.records, validator, dups)
        else:  # committed by an earlier run: its ids go back into the registry, in read order
            for h, position in book.ids(unit).tolist():
                dups.ids.add(h, position)
            dups.count += facts["duplicate_ids"]
        totals.add(facts)


def _say_resumed(book: UnitBook, units: int) -> None:
    done = sum(book.committed(u) is not None for u in range(units))
    if done:
        print(
            f"validate: resuming: {done} of {units} unit(s) (input files) were committed by an earlier "
            f"run; judging the other {units - done}",
            file=sys.stderr,
        )


class _Totals:
    """The run's counts, added up from its units' facts (units.py) in unit order."""

    def __init__(self) -> None:
        self.records = self.kept = 0
        self.reasons: Counter[str] = Counter()
        self.by_source: dict[str, Counter[str]] = {}
        self.repeats: list[JSONObject] = []  # the first ones, for summary.json

    def add(self, facts: JSONObject) -> None:
        self.records += facts["records"]
        self.kept += facts["kept"]
        self.reasons.update(facts["by_reason"])
        for source, counts in facts["by_source"].items():
            self.by_source.setdefault(source, Counter()).update(counts)
        self.repeats.extend(facts["listed"][: MAX_LISTED - len(self.repeats)])

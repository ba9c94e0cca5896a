"""Run the jobs of `tpt reproduce`: each job is a list of `tpt` commands run in order in its own process.

A job's process calls `tpt.cli.main(argv)` for each command, exactly what a user typing the command gets,
so the experiment goes through the stages' real code paths. Jobs run `parallel` at a time (the two arms of
a pair train side by side, one thread each). A command that finished leaves a marker holding its argv;
a re-run skips it, and a command whose argv changed runs again (its stage then decides whether its
output directory can be reused).

    python -m tpt.reproduce.runner JOB.json     # what each job's process runs
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tpt.core.artifacts import canonical_json, read_json, write_json
from tpt.core.errors import ArtifactError


@dataclass(frozen=True, kw_only=True, slots=True)
class Step:
    """One `tpt` command of a job."""

    name: str
    argv: tuple[str, ...]
    """Arguments after `tpt`, e.g. ("pack", "aug", "--output", "pack", ...)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Job:
    name: str
    steps: tuple[Step, ...]
    threads: int = 1
    """CPU threads of the job's process (OMP_NUM_THREADS and friends)."""
    after: tuple[str, ...] = ()
    """Jobs that must have finished before this one starts (it fails if one of them failed)."""


def marker_path(state_dir: Path, job: str, step: str) -> Path:
    return state_dir / job / f"{step}.done"


def step_done(state_dir: Path, job: str, step: Step) -> bool:
    path = marker_path(state_dir, job, step.name)
    return path.is_file() and path.read_text(encoding="utf-8") == canonical_json(list(step.argv))


def job_done(state_dir: Path, job: Job) -> bool:
    return all(step_done(state_dir, job.name, s) for s in job.steps)


def run_job_file(job_file: Path) -> int:
    """The body of a job's process: run its steps in order, skipping finished ones."""
    from tpt.cli import main

    spec = read_json(job_file)
    state_dir = Path(spec["state_dir"])
    for raw in spec["steps"]:
        step = Step(name=raw["name"], argv=tuple(raw["argv"]))
        if step_done(state_dir, spec["name"], step):
            print(f"[{spec['name']}] {step.name}: already done", flush=True)
            continue
        print(f"[{spec['name']}] {step.name}: tpt {' '.join(step.argv)}", flush=True)
        t0 = time.time()
        rc = main(list(step.argv))
        print(f"[{spec['name']}] {step.name}: exit {rc} after {time.time() - t0:.1f} s", flush=True)
        if rc != 0:
            return rc
        path = marker_path(state_dir, spec["name"], step.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(canonical_json(list(step.argv)), encoding="utf-8")
    return 0


def thread_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    for key in (
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "TOKENIZERS_PARALLELISM",
    ):
        env[key] = str(threads) if key != "TOKENIZERS_PARALLELISM" else "false"
    return env


@dataclass(frozen=True, kw_only=True, slots=True)
class JobTime:
    """How long a job took: wall seconds, and the CPU seconds its process used (user + system).

    On a shared machine wall time depends on the neighbours; CPU time of a one-thread job is about what
    its wall time would be on a quiet core.
    """

    wall_s: float
    cpu_s: float


def run_jobs(
    jobs: Sequence[Job], *, work_dir: Path, parallel: int, say: Callable[[str], None] = print
) -> dict[str, JobTime]:
    """Run jobs, `parallel` at a time, in list order; return each job's times (zeros when reused).

    Raises ArtifactError naming the failed jobs and their logs once every job has ended.
    """
    state_dir, logs, specs = work_dir / "state", work_dir / "logs", work_dir / "jobs"
    pending = list(jobs)
    running: dict[str, tuple[subprocess.Popen, float, object]] = {}
    walls: dict[str, JobTime] = {}
    failed: list[str] = []
    names = {j.name for j in jobs}
    unknown = sorted({a for j in jobs for a in j.after} - names)
    if unknown:
        raise ArtifactError(f"jobs wait for jobs that are not planned: {', '.join(unknown)}")
    finished: set[str] = set()
    while pending or running:
        while len(running) < parallel:
            ready = next((j for j in pending if all(a in finished or a in failed for a in j.after)), None)
            if ready is None:
                break
            pending.remove(ready)
            job = ready
            if any(a in failed for a in job.after):
                failed.append(job.name)
                say(f"reproduce: {job.name}: not started (it needs {', '.join(job.after)}, which failed)")
                continue
            if job_done(state_dir, job):
                finished.add(job.name)
                walls[job.name] = JobTime(wall_s=0.0, cpu_s=0.0)
                say(f"reproduce: {job.name}: reused (all {len(job.steps)} commands finished earlier)")
                continue
            spec_path = specs / f"{job.name}.json"
            write_json(spec_path, {"name": job.name, "state_dir": str(state_dir), "threads": job.threads,
                                   "steps": [asdict(s) for s in job.steps]})  # fmt: skip
            logs.mkdir(parents=True, exist_ok=True)
            log = open(logs / f"{job.name}.log", "a", encoding="utf-8")  # noqa: SIM115 (closed when it ends)
            proc = subprocess.Popen(
                [sys.executable, "-m", "tpt.reproduce.runner", str(spec_path)],
                stdout=log, stderr=subprocess.STDOUT, env=thread_env(job.threads),
            )  # fmt: skip
            running[job.name] = (proc, time.time(), log)
            say(
                f"reproduce: {job.name}: started ({len(job.steps)} commands, log {logs / (job.name + '.log')})"
            )
        if (
            pending
            and not running
            and not any(all(a in finished or a in failed for a in j.after) for j in pending)
        ):
            raise ArtifactError(f"jobs wait for each other in a circle: {', '.join(j.name for j in pending)}")
        time.sleep(0.5 if running else 0)
        for name, (proc, t0, log) in list(running.items()):
            # wait4 instead of poll: it also returns the finished process's resource usage.
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == 0:
                continue
            proc.returncode = os.waitstatus_to_exitcode(status)
            log.close()  # type: ignore[attr-defined]
            del running[name]
            walls[name] = JobTime(wall_s=time.time() - t0, cpu_s=usage.ru_utime + usage.ru_stime)
            if proc.returncode == 0:
                finished.add(name)
                say(
                    f"reproduce: {name}: finished in {walls[name].wall_s:.0f} s ({walls[name].cpu_s:.0f} s of CPU)"
                )
            else:
                failed.append(name)
                say(f"reproduce: {name}: FAILED (exit {proc.returncode}); see {logs / (name + '.log')}")
    if failed:
        tails = "\n".join(
            f"--- {logs / (n + '.log')} (last lines):\n{_tail(logs / (n + '.log'))}" for n in failed
        )
        raise ArtifactError(f"{len(failed)} job(s) failed: {', '.join(failed)}; re-run to resume.\n{tails}")
    return walls


def makespan(durations_s: Sequence[float], parallel: int) -> float:
    """Wall time of running jobs of these durations in list order, `parallel` at a time (as run_jobs does).

    Example: durations (3, 3, 2), parallel 2 -> slots end at 3 and 3, the third job ends at 5 -> 5.
    """
    slots = [0.0] * max(1, parallel)
    for d in durations_s:
        i = slots.index(min(slots))
        slots[i] += d
    return max(slots)


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":
    sys.exit(run_job_file(Path(sys.argv[1])))

"""Files on disk that stages hand to each other: atomic writes, config fingerprints, run manifests.

Every output directory of a stage holds a `manifest.json` that records the config that made it and a
fingerprint of the parts of that config that change outputs. A re-run with the same fingerprint resumes;
a re-run with a different one refuses unless the user overrides it explicitly.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tpt.core.errors import ArtifactError, ConfigError
from tpt.core.jsontypes import JSONObject

MANIFEST = "manifest.json"


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same value always gives the same string."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def fingerprint(obj: Any) -> str:
    """A short stable hash of a JSON-able value (16 hex chars of SHA-256)."""
    return hashlib.sha256(canonical_json(obj).encode("utf-8")).hexdigest()[:16]


def write_atomic(path: Path, data: str | bytes, *, fsync: bool = True) -> None:
    """Write a whole file so that readers see the old file or the new one, never half of it (on object
    storage, a RemotePath: one whole object)."""
    if getattr(path, "is_remote_path", False):  # tpt.storage.RemotePath (artifacts imports no storage)
        path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))  # type: ignore[union-attr]
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    mode = "wb" if isinstance(data, bytes) else "w"
    try:
        with open(tmp, mode, **({} if isinstance(data, bytes) else {"encoding": "utf-8"})) as f:
            f.write(data)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # disk full, a kill: leave the old file and no half-written temporary
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n")


def read_json(path: Path) -> Any:
    try:
        path = path if getattr(path, "is_remote_path", False) else Path(path)
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON ({exc})") from None


def claim_output_dir(
    out_dir: Path,
    *,
    stage: str,
    config: Mapping[str, object],
    fingerprinted: Mapping[str, object],
    override: bool = False,
    override_flag: str = "--overwrite-config",
) -> JSONObject:
    """Create or re-open a stage's output directory and bind it to a config.

    `fingerprinted` holds the settings that change outputs (model, prompt, sampling, ...); `config` is
    everything, recorded for the reader. Returns the manifest. Raises ConfigError when the directory was
    made by a different stage or by a config with another fingerprint, unless `override` is set.
    """
    out_dir = out_dir if getattr(out_dir, "is_remote_path", False) else Path(out_dir)  # or a RemotePath
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MANIFEST
    # Compare in JSON form: a tuple read back from the manifest is a list, and must not count as changed.
    fingerprinted = json.loads(canonical_json(fingerprinted))
    fp = fingerprint(fingerprinted)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if path.exists():
        old = read_json(path)
        if old.get("stage") != stage:
            raise ConfigError(
                f"{out_dir} holds output of `tpt {old.get('stage')}`, not `tpt {stage}`; choose another --output"
            )
        if old.get("fingerprint") != fp and not override:
            changed = sorted(
                k
                for k in set(old.get("fingerprinted", {})) | set(fingerprinted)
                if old.get("fingerprinted", {}).get(k) != fingerprinted.get(k)
            )
            raise ConfigError(
                f"{out_dir} was made with a different config (changed: {', '.join(changed) or 'unknown'}); "
                f"resuming would mix outputs of two configs. Use a new --output, or pass {override_flag} "
                "to continue anyway (records keep their own provenance)."
            )
        manifest = dict(old)
        manifest["resumed_at"] = [*old.get("resumed_at", []), now]
        if old.get("fingerprint") != fp:
            manifest["overridden"] = [*old.get("overridden", []), {"at": now, "fingerprint": fp}]
    else:
        manifest = {"stage": stage, "created_at": now}
    from tpt import __version__

    manifest.update(
        {"fingerprint": fp, "fingerprinted": fingerprinted, "config": config, "tpt_version": __version__}
    )
    write_json(path, manifest)
    return manifest

"""The versioned store: `store/<name>/<version>/` directories, immutable, written atomically.

A version is built in a hidden temporary directory beside its final place and renamed into place
only when complete, so a run killed at any moment leaves no partial version (at most a hidden
`.tmp-*` directory, which the next run removes). The version id is a hash of what made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataprepError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
VERSION_RE = re.compile(r"^[0-9a-f]{12}$")
STALE_TMP_SECONDS = 3600


def store_root(store: str | Path | None) -> Path:
    """`--store`, else `$DATAPREP_STORE`, else `./store`; it must not be a file."""
    root = Path(store or os.environ.get("DATAPREP_STORE") or "store")
    if root.exists() and not root.is_dir():
        raise DataprepError(f"{root}: store path is a file, not a directory")
    return root


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise DataprepError(f"invalid dataset name {name!r}: use letters, digits, '.', '_' or '-'")
    return name


def version_id(
    inputs: list[dict[str, Any]], recipe: dict[str, Any], package_version: str, schema_version: int
) -> str:
    """12 hex digits of a hash over input names and bytes, the resolved recipe and the code."""
    blob = json.dumps(
        {
            "inputs": [(i["path"], i["sha256"]) for i in inputs],
            "recipe": recipe,
            "package": package_version,
            "schema": schema_version,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:12]


def list_versions(root: Path, name: str) -> list[dict[str, Any]]:
    """Complete versions of a dataset, oldest first, each with its manifest."""
    base = root / name
    if not base.is_dir():
        return []
    found = []
    for path in base.iterdir():
        manifest = path / "manifest.json"
        if VERSION_RE.match(path.name) and manifest.is_file():
            found.append(json.loads(manifest.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: (m["created_at"], m["version"]))


def latest(root: Path, name: str) -> str | None:
    pointer = root / name / "latest"
    return pointer.read_text(encoding="utf-8").strip() if pointer.is_file() else None


@dataclass
class VersionRef:
    root: Path
    name: str
    version: str

    @property
    def path(self) -> Path:
        return self.root / self.name / self.version


def resolve(root: Path, ref: str) -> VersionRef:
    """Resolve `name@latest`, `name@<id>`, `name@<unique prefix>` or a bare `name` (= latest)."""
    name, _, wanted = ref.partition("@")
    wanted = wanted or "latest"
    if not (root / name).is_dir():
        known = (
            sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            if root.is_dir()
            else []
        )
        raise DataprepError(
            f"no dataset named {name!r} in store {root} (known: {', '.join(known) or 'none'})"
        )
    if wanted == "latest":
        version = latest(root, name)
        if version is None:
            raise DataprepError(f"{name}: no version has been written yet in {root}")
        return VersionRef(root, name, version)
    matches = [m["version"] for m in list_versions(root, name) if m["version"].startswith(wanted)]
    if not matches:
        raise DataprepError(f"{name}@{wanted}: no such version in {root}")
    if len(matches) > 1:
        raise DataprepError(f"{name}@{wanted}: ambiguous prefix, matches {', '.join(matches)}")
    return VersionRef(root, name, matches[0])


def new_tmp_dir(root: Path, name: str, version: str) -> Path:
    """A private directory to build a version in; stale ones of killed runs are removed first."""
    base = root / name
    base.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in base.glob(".tmp-*"):
        pid = old.name.rsplit("-", 1)[-1]
        alive = pid.isdigit() and _pid_alive(int(pid))
        if not alive or now - old.stat().st_mtime > STALE_TMP_SECONDS:
            shutil.rmtree(old, ignore_errors=True)
    tmp = base / f".tmp-{version}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    return tmp


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid != os.getpid()


def publish(tmp: Path, root: Path, name: str, version: str) -> bool:
    """Rename a finished version into place and point `latest` at it.

    Returns False (and discards `tmp`) when another run published the same version first.
    """
    final = root / name / version
    try:
        os.rename(tmp, final)
    except OSError:
        if (final / "manifest.json").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        raise
    set_latest(root, name, version)
    return True


def set_latest(root: Path, name: str, version: str) -> None:
    """Write the `latest` pointer atomically (write a temporary file, then rename)."""
    pointer = root / name / "latest"
    tmp = pointer.with_name(f".latest-{os.getpid()}")
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, pointer)

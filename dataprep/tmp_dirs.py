"""The hidden temporary directory a version is built in, and how a later run tells whether the
run that made one is gone (so it can be removed) or still working (so it must be left alone).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

#: Inside a version being built (`.tmp-<version>-<pid>`): who builds it, so that other runs
#: remove the directory only once that process is gone; removed when the version is published.
OWNER_FILE = ".owner"
#: Age after which a temporary directory without an owner record is taken as abandoned.
STALE_TMP_SECONDS = 3600


def new_tmp_dir(root: Path, name: str, version: str) -> Path:
    """A private directory to build a version in, marked with its owner (`OWNER_FILE`).

    The directories of runs that are gone are removed first. A run's directory can stay
    untouched for hours (a long augmentation writes only inside it), so its age says nothing:
    only its owner's process does. See `_abandoned`.
    """
    base = root / name
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{version}-{os.getpid()}"
    now = time.time()
    for old in base.glob(".tmp-*"):
        if old != tmp and _abandoned(old, now):
            shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    part = tmp / f"{OWNER_FILE}.part"
    part.write_text(json.dumps(_owner_record()) + "\n", encoding="utf-8")
    os.replace(part, tmp / OWNER_FILE)
    return tmp


def _owner_record() -> dict[str, Any]:
    """Who builds in a temporary directory: host name, pid, the process's start time (so a
    reused pid is not mistaken for it) and pid namespace (a container on the same host name)."""
    pid = os.getpid()
    stat = _proc_stat(pid)
    return {"host": socket.gethostname(), "pid": pid, "start": stat[1] if stat else None,
            "pid_namespace": _pid_namespace()}


def _abandoned(tmp: Path, now: float) -> bool:
    """Whether the run that made the temporary directory `tmp` is gone.

    Its owner record names a process: one on this host (and pid namespace) is gone when no
    process has its pid, or that process is a zombie or started at another time (the pid was
    reused). A directory of another host is never judged: its process cannot be seen from here.
    A directory without a readable record (written before there were records, or in the instant
    between `mkdir` and the record) is judged by age alone.
    """
    owner = _read_owner(tmp)
    if owner is None:
        try:
            return now - tmp.stat().st_mtime > STALE_TMP_SECONDS
        except OSError:
            return False
    if owner["host"] != socket.gethostname() or owner.get("pid_namespace") != _pid_namespace():
        return False
    return not _running(owner["pid"], owner.get("start"))


def _read_owner(tmp: Path) -> dict[str, Any] | None:
    try:
        owner = json.loads((tmp / OWNER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    valid = (isinstance(owner, dict) and isinstance(owner.get("host"), str)
             and type(owner.get("pid")) is int and owner["pid"] > 0)
    return owner if valid else None


def _running(pid: int, start: int | None) -> bool:
    """Whether process `pid`, started at `start` (clock ticks after boot; None: unknown), runs."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    except OverflowError:
        return False
    stat = _proc_stat(pid)
    if stat is None:  # no /proc here: the signal is all there is
        return True
    state, started = stat
    return state != "Z" and (start is None or started == start)


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of `pid` from /proc; None without it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
        fields = stat.rsplit(")", 1)[1].split()  # the command name before may hold anything
        return fields[0], int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _pid_namespace() -> str | None:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None

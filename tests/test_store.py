"""The store's temporary directories: a run's build directory is removed by another run only once
the process that owns it is gone, however long it has been quiet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dataprep import store

from .conftest import ROOT

#: A second process that builds in the store: makes its temporary directory (optionally claiming
#: another host name), prints its path, then lives for the given seconds.
CHILD = """
import socket, sys, time
from pathlib import Path
from dataprep import store
if sys.argv[4] != "-":
    socket.gethostname = lambda: sys.argv[4]
print(store.new_tmp_dir(Path(sys.argv[1]), sys.argv[2], sys.argv[3]), flush=True)
time.sleep(float(sys.argv[5]))
"""
TWO_HOURS = 2 * 3600


def start_owner(root: Path, version: str, *, seconds: float, host: str = "-"
                ) -> tuple[subprocess.Popen, Path]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(root), "ds", version, host,
                             str(seconds)], stdout=subprocess.PIPE, text=True, env=env)
    path = Path(proc.stdout.readline().strip())
    assert path.is_dir(), path
    return proc, path


def age(path: Path, seconds: float = TWO_HOURS) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def procs():
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_quiet_tmp_dir_of_a_live_run_survives(tmp_path, procs):
    proc, owned = start_owner(tmp_path, "a" * 12, seconds=60)
    procs.append(proc)
    age(owned)  # a long augmentation or a slow disk: nothing written at the top for two hours
    mine = store.new_tmp_dir(tmp_path, "ds", "b" * 12)
    assert owned.is_dir() and mine.is_dir()


def test_tmp_dir_of_a_dead_run_is_removed(tmp_path):
    proc, owned = start_owner(tmp_path, "a" * 12, seconds=0)
    proc.wait()
    store.new_tmp_dir(tmp_path, "ds", "b" * 12)
    assert not owned.exists()


def test_tmp_dir_of_a_killed_unreaped_run_is_removed(tmp_path, procs):
    proc, owned = start_owner(tmp_path, "a" * 12, seconds=60)
    procs.append(proc)
    proc.send_signal(signal.SIGKILL)
    deadline = time.time() + 10  # a zombie until waited for: it still answers kill(pid, 0)
    while _state(proc.pid) not in ("Z", None) and time.time() < deadline:
        time.sleep(0.05)
    store.new_tmp_dir(tmp_path, "ds", "b" * 12)
    assert not owned.exists()


def test_tmp_dir_of_another_host_is_kept(tmp_path):
    proc, owned = start_owner(tmp_path, "a" * 12, seconds=0, host="elsewhere.invalid")
    proc.wait()  # its pid means nothing here; the run may be alive on its own machine
    age(owned)
    store.new_tmp_dir(tmp_path, "ds", "b" * 12)
    assert owned.is_dir()


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc")
def test_reused_pid_does_not_keep_a_tmp_dir(tmp_path, procs):
    proc, owned = start_owner(tmp_path, "a" * 12, seconds=60)
    procs.append(proc)
    record = json.loads((owned / store.OWNER_FILE).read_text())
    record["start"] += 1  # the pid now belongs to a process started at another time
    (owned / store.OWNER_FILE).write_text(json.dumps(record))
    store.new_tmp_dir(tmp_path, "ds", "b" * 12)
    assert not owned.exists()


def test_own_process_other_tmp_dir_survives(tmp_path):
    """Two versions built at once in one process (threads): neither removes the other's."""
    first = store.new_tmp_dir(tmp_path, "ds", "a" * 12)
    age(first)
    store.new_tmp_dir(tmp_path, "ds", "b" * 12)
    assert first.is_dir()


def test_legacy_tmp_dir_without_owner_removed_only_when_old(tmp_path, procs):
    proc = subprocess.Popen(["sleep", "60"])
    procs.append(proc)
    base = tmp_path / "ds"
    recent, old = base / f".tmp-{'a' * 12}-999999999", base / f".tmp-{'c' * 12}-{proc.pid}"
    for path in (recent, old):
        path.mkdir(parents=True)
    age(old)
    store.new_tmp_dir(tmp_path, "ds", "b" * 12)
    assert recent.is_dir() and not old.exists()


def test_published_version_has_no_owner_record(tmp_path):
    tmp = store.new_tmp_dir(tmp_path, "ds", "a" * 12)
    assert (tmp / store.OWNER_FILE).is_file()
    (tmp / store.MANIFEST_FILE).write_text("{}")
    assert store.publish(tmp, tmp_path, "ds", "a" * 12)
    final = tmp_path / "ds" / ("a" * 12)
    assert sorted(p.name for p in final.iterdir()) == [store.MANIFEST_FILE]
    assert store.latest(tmp_path, "ds") == "a" * 12


def _state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


@pytest.mark.parametrize("spec", [
    "/abs@latest", "../..@latest", "..@latest", ".hidden@latest", "a/b@latest", "ds@../x",
    "ds@/etc", "ds@LATEST", "ds@0123456789abc", "ds@latest/..", "@latest", "x" * 101 + "@latest",
    ""])
def test_specs_that_could_name_a_path_are_refused_before_any_read(tmp_path, spec):
    for name in ("ds", "abs", "a", "x" * 101):  # whatever they name exists, even outside
        (tmp_path / "store" / name).mkdir(parents=True, exist_ok=True)
    with pytest.raises(store.DataprepError, match="invalid dataset name|must be 'latest'"):
        store.resolve(tmp_path / "store", spec)


def test_a_name_of_100_characters_is_fine_and_101_is_not():
    assert store.check_name("n" * 100) == "n" * 100
    with pytest.raises(store.DataprepError, match="101 characters, at most 100"):
        store.check_name("n" * 101)


def _complete(root: Path, name: str, version: str) -> Path:
    path = root / name / version
    path.mkdir(parents=True)
    (path / store.MANIFEST_FILE).write_text("{}")
    return path


@pytest.mark.parametrize(("content", "ok"), [
    ("aaaaaaaaaaaa\n", True), ("aaaaaaaaaaaa", True), ("bbbbbbbbbbbb\n", False),
    ("../other/aaaaaaaaaaaa\n", False), ("{root}/ds/aaaaaaaaaaaa\n", False), ("", False),
    ("\x00\x1b[2J", False)])
def test_latest_is_a_version_id_of_a_complete_version_never_a_path(tmp_path, content, ok):
    _complete(tmp_path, "ds", "a" * 12)
    _complete(tmp_path, "other", "a" * 12)
    (tmp_path / "ds" / "bbbbbbbbbbbb").mkdir()  # an id, but no manifest: not complete
    (tmp_path / "ds" / store.LATEST_FILE).write_text(content.replace("{root}", str(tmp_path)))
    if ok:
        assert store.read_latest(tmp_path, "ds") == "a" * 12
        assert store.latest(tmp_path, "ds") == "a" * 12
    else:
        with pytest.raises(store.DataprepError, match="not the id of a complete version"):
            store.read_latest(tmp_path, "ds")
        assert store.latest(tmp_path, "ds") is None  # a run then writes a good pointer


def test_outputs_inside_the_store_are_refused(tmp_path):
    root = tmp_path / "store"
    version = _complete(root, "ds", "a" * 12)
    for inside in (version / store.MANIFEST_FILE, root / "x.html",
                   tmp_path / "elsewhere" / ".." / "store" / "ds" / "r.html"):
        with pytest.raises(store.DataprepError, match="inside the store"):
            store.check_outside_store(root, inside)
    assert store.check_outside_store(root, tmp_path / "r.html") == tmp_path / "r.html"
    with pytest.raises(store.DataprepError, match="does not exist"):
        store.check_outside_store(root, tmp_path / "no" / "r.html")

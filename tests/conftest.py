"""Shared fixtures: paths to the bundled raw logs and a helper to run the CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip on machines without CUDA (CI and the developers' machines)."""
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / "store"


def run_cli(*args: str, cwd: Path = ROOT, env: dict | None = None,
            timeout: int = 300) -> subprocess.CompletedProcess:
    """Run `dataprep ARGS` as a user would, capturing both streams."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("DATAPREP_STORE", None) if env is None else None
    return subprocess.run([sys.executable, "-m", "dataprep", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """Finished tiny runs (see `trained_runs.py`), shared by every test of the session."""
    from .trained_runs import build_trained_runs

    return build_trained_runs(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def trained_real(tmp_path_factory):
    """The built-in models briefly trained (see `trained_runs.py`); for `slow` tests only."""
    from .trained_runs import build_real_runs

    return build_real_runs(tmp_path_factory.mktemp("trained-real"))


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __iter__(self):  # `code, out, err = cli(...)`
        return iter((self.code, self.out, self.err))

    def one_line_error(self) -> str:
        lines = self.err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), self.err
        assert "Traceback" not in self.err
        return lines[0]


@pytest.fixture
def cli(capsys, monkeypatch):
    """`dataprep ARGS` through its real entry point (`main`), in this process: what a user's
    shell runs, at a fraction of a subprocess's start-up."""

    def call(*args: str | Path) -> Result:
        from dataprep.cli import main

        monkeypatch.setattr(sys, "argv", ["dataprep", *map(str, args)])
        capsys.readouterr()  # what the test printed before is not the command's
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return call


def exit_code(exc: SystemExit) -> int:
    """The status a process ending with `exc` would have (`sys.exit`'s rules)."""
    if exc.code is None or isinstance(exc.code, int):
        return exc.code or 0
    return 1


@pytest.fixture
def train_main(capfd, monkeypatch):
    """`train ARGS` through the console script's entry point (`train.cli.main`), in this
    process, from `cwd`: the exit code and both streams, as a subprocess would return them
    (captured at the file descriptors, so what a library writes there directly counts too).
    A fresh interpreter imports torch and transformers again for every call (8-10 s each on a
    2-core machine); the tests whose point is the process itself keep a real subprocess."""
    import huggingface_hub.constants

    monkeypatch.delenv("DATAPREP_STORE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # the hub reads the variable once, on import: an earlier test may have imported it
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)

    def call(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess:
        from train.cli import main

        argv = ["train", *map(str, args)]
        monkeypatch.chdir(cwd)
        monkeypatch.setattr(sys, "argv", argv)
        capfd.readouterr()  # what the test printed before is not the command's
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exit_code(exc)
        out, err = capfd.readouterr()
        return subprocess.CompletedProcess(argv, code, out, err)

    return call

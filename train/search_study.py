"""A search's directory and its Optuna study: where it lives (`study.db`, SQLite through
optuna's RDB storage, one fixed study name, loaded if it exists), the locks that let several
processes share it (see `search.py`), the samplers and pruners, and the trial budget.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .config import TrainConfig
from .errors import TrainError
from .search_space import Param, grid_of, space_from_dicts

STUDY_NAME = "search"


def search_dir(cfg: TrainConfig, version) -> Path:
    """`--output`, else the newest earlier search (`--resume`) or a new one."""
    from .checkpoints import group_dir  # imports torch: not for `train search --help`

    return group_dir(cfg, version, "search", "search")


def hold_directory(directory: Path) -> int:
    """Lock the search directory for this search's processes (the fd is passed to workers).

    Hand-written on `fcntl.flock` because the lock must be shared by the spawned workers and
    released by the kernel when the last of them dies, killed or not; `filelock` does neither."""
    import fcntl

    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise TrainError(f"{directory}: another search is running there; wait for it to "
                         "finish or stop it") from None
    return fd


class AskLock:
    """One process at a time counts the trials and asks for a new one (see the module doc)."""

    def __init__(self, directory: Path):
        self.fd = os.open(directory / ".ask.lock", os.O_RDWR | os.O_CREAT, 0o644)
        self.held = False

    def acquire(self) -> None:
        import fcntl

        fcntl.flock(self.fd, fcntl.LOCK_EX)
        self.held = True

    def release(self) -> None:
        import fcntl

        if self.held:
            self.held = False
            fcntl.flock(self.fd, fcntl.LOCK_UN)


def storage(directory: Path):
    from optuna.storages import RDBStorage

    # several processes write one SQLite file: wait for its lock rather than fail at once
    return RDBStorage(f"sqlite:///{(directory / 'study.db').resolve()}",
                      engine_kwargs={"connect_args": {"timeout": 120}})


def fail_left_running(directory: Path) -> list[int]:
    """Mark FAIL the trials a killed search left RUNNING (none can be running: the directory
    lock is ours); a plain sampler, since a grid sampler would try to stop a study here."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=STUDY_NAME, storage=storage(directory),
                              sampler=optuna.samplers.RandomSampler())
    left = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    for number in left:
        study.tell(number, state=TrialState.FAIL)
    return left


def make_sampler(name: str, space: dict[str, Param], seed: int):
    import optuna

    if name == "grid":
        return optuna.samplers.GridSampler(grid_of(space), seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner(name: str, trials: int):
    """Median: prune a trial whose best value so far is worse than the median of the completed
    trials at the same evaluation, once a quarter of the trials (1 to 5) has completed."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=max(1, min(5, trials // 4)))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource="auto")
    return optuna.pruners.NopPruner()


def open_study(directory: Path, settings: dict[str, Any], seed: int):
    """The study, created on the first start, loaded on every later one."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space_from_dicts(settings["space"])
    return optuna.create_study(storage=storage(directory), study_name=STUDY_NAME,
                               load_if_exists=True, direction=settings["direction"],
                               sampler=make_sampler(settings["sampler"], space, seed),
                               pruner=make_pruner(settings["pruner"], settings["trials"]))


def budget(settings: dict[str, Any]) -> int:
    """--trials, or fewer when a grid has fewer points."""
    if settings["sampler"] != "grid":
        return settings["trials"]
    points = math.prod(len(v) for v in grid_of(space_from_dicts(settings["space"])).values())
    return min(settings["trials"], points)

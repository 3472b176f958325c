"""`train search NAME@VERSION --model M --method M --trials 20 [--sampler tpe|random|grid]
[--pruner median|hyperband|none] [--space space.yaml] [--workers 2] [train's flags]`: an Optuna
hyperparameter search, on validation only.

The study lives in `<dir>/study.db` (SQLite, optuna's RDB storage, one fixed study name,
loaded if it exists), so a search killed half-way continues where it stopped when run again
with the same `--output` (or `--resume`), and `--workers N` processes share it. Each process
tokenizes the version and loads the base weights once (`recipes.*.prepare`); each trial trains
a fresh copy of them (`make_flow(copy=True)`) into its own run directory `<dir>/trial-NNN/`,
with its card, reporting the validation metric at every evaluation to the pruner
(`pruning_callback`). The test split is left alone by the trials; the best trial's test metrics
are computed once, at the end (`search_report.finish`). The study, its directory and locks
are in `search_study.py`, the space in `search_space.py`.

Several processes never overshoot `--trials`: a process counts the finished and running trials
and asks for a new one under one file lock (`.ask.lock`), so the count and the new trial are
one step. The directory lock (`.lock`, held by the search's processes until the last exits)
says that no process is running a trial there, so trials left RUNNING by a killed search can
safely be marked FAIL at the next start.
"""

from __future__ import annotations

import copy
import gc
import inspect
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from .cli import ON_SWITCHES, OUTPUT_SWITCHES, PARAMETERS, finite, parameter, result_only
from .config import TrainConfig, load_config_file, resolve_config
from .errors import TrainError
from .search_space import FIXED, default_space, grid_of, load_space, space_from_dicts, suggest
from .search_study import (
    AskLock,
    budget,
    fail_left_running,
    hold_directory,
    make_sampler,
    open_study,
    search_dir,
)

SETTINGS_FILE = "search.json"
SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "hyperband", "none")
#: The search's own help for the two `TrainConfig` flags that mean something else here.
HELP = {"output": "Search directory (default runs/<name>-<version>-search-<time>/); an "
                  "existing one continues its study.",
        "resume": "Continue the newest search of this version (runs/<name>-<version>-search-*)."}


def metric_of(method: str) -> tuple[str, str]:
    """What trials are ranked by, as each method's early stopping follows it (`Flow.best_metric`):
    validation loss, or a classifier's validation macro-F1."""
    return ("macro_f1", "maximize") if method == "classifier" else ("loss", "minimize")


# --- one trial --------------------------------------------------------------------------

def pruning_callback(trial, metric: str):
    """A `TrainerCallback` that reports the validation metric to the trial at every evaluation
    and stops training once the pruner says the trial is weak. The step is the evaluation's
    number, not the optimizer step, so that trials with other batch sizes are compared at the
    same share of an epoch (by default a run evaluates twice an epoch)."""
    from transformers import TrainerCallback

    class Pruning(TrainerCallback):
        def __init__(self) -> None:
            self.evaluations = 0
            self.pruned_at: int | None = None

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            value = (metrics or {}).get(f"eval_{metric}")
            if value is None:  # fit's final evaluations are keyed validation_*, not eval_*
                return
            self.evaluations += 1
            trial.report(float(value), self.evaluations)
            if trial.should_prune():
                self.pruned_at = self.evaluations
                control.should_training_stop = True

    return Pruning()


class Trials:
    """What every trial of one process shares: the settings, the version, the prepared setup."""

    def __init__(self, directory: Path, settings: dict[str, Any], version=None):
        from dataprep.store import open_version

        self.directory, self.settings = directory, settings
        self.cfg = TrainConfig.model_validate(settings["config"])
        self.version = version or open_version(self.cfg.dataset, self.cfg.store)
        self.space = space_from_dicts(settings["space"])
        self.metric = settings["metric"]
        if self.cfg.method == "classifier":
            from .recipes import classifier as recipe
        else:
            from .recipes import sft as recipe
        self.recipe = recipe
        self.setup: Any = None

    def prepare(self) -> None:
        """Tokenize the version and load the base weights: once per process."""
        if self.setup is None:
            self.setup = self.recipe.prepare(self.cfg, self.version)

    def objective(self, trial) -> float:
        """Train one trial's run on its settings; its validation metric is the value."""
        import optuna
        from transformers import set_seed

        from .loop import fit

        params = suggest(trial, self.space)
        name = f"trial-{trial.number:03d}"
        trial.set_user_attr("run_dir", name)
        out = self.directory / name
        cfg = TrainConfig.model_validate({**self.cfg.as_dict(), **params, "output": str(out),
                                          "resume": False})
        set_seed(cfg.seed)  # every trial starts from the same random state: only params differ
        pruning = pruning_callback(trial, self.metric)
        flow = self.recipe.make_flow(cfg, self.prepared(), copy=True)
        metrics = fit(cfg, self.version, flow, out, callbacks=[pruning], analyse=False,
                      test=False)
        del flow
        gc.collect()
        # a finished trial is never resumed (the search resumes by trials): its checkpoints,
        # optimizer state included, would only fill the disk; the saved model stays
        for checkpoint in out.glob("checkpoint-*"):
            shutil.rmtree(checkpoint, ignore_errors=True)
        value = metrics.get("validation", {}).get(self.metric)
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in params.items())
        if pruning.pruned_at is not None or value is None or not math.isfinite(value):
            why = f"at evaluation {pruning.pruned_at}" if pruning.pruned_at else "(diverged)"
            print(f"trial {trial.number}: pruned {why}; {shown}", flush=True)
            raise optuna.TrialPruned()
        print(f"trial {trial.number}: validation {self.metric} {value:.4f}; {shown}",
              flush=True)
        return float(value)

    def prepared(self):
        self.prepare()
        return self.setup

    def take(self, worker: int) -> None:
        """Run trials until the study holds the budget's count of finished or running ones."""
        from optuna.trial import TrialState

        lock = AskLock(self.directory)
        study = open_study(self.directory, self.settings, seed=0)
        # seeded, yet not the same draws as another worker's or an earlier start's
        study.sampler = make_sampler(self.settings["sampler"], self.space,
                                     self.cfg.seed + 1009 * worker + len(study.trials))
        counted = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
        total = budget(self.settings)
        self.prepare()

        def objective(trial):
            lock.release()  # the trial is in the study now: others may count it
            return self.objective(trial)

        while True:
            lock.acquire()
            if len(study.get_trials(deepcopy=False, states=counted)) >= total:
                lock.release()
                return
            try:
                study.optimize(objective, n_trials=1, catch=())
            finally:
                lock.release()


# --- the command ------------------------------------------------------------------------

def check_options(trials: int, sampler: str, pruner: str, workers: int) -> None:
    if trials < 1:
        raise TrainError(f"--trials {trials}: must be at least 1")
    if workers < 1:
        raise TrainError(f"--workers {workers}: must be at least 1")
    if sampler not in SAMPLERS:
        raise TrainError(f"--sampler {sampler!r}: use one of {', '.join(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise TrainError(f"--pruner {pruner!r}: use one of {', '.join(PRUNERS)}")


def uses_adapter(cfg: TrainConfig, setup) -> bool:
    """Whether the trials train a LoRA adapter (a classifier decides by the model's size)."""
    if cfg.method != "classifier":
        return cfg.method == "lora"
    from .config import classifier_plan

    planned = classifier_plan(cfg.model_copy(), sum(p.numel() for p in setup.base.parameters()))
    return bool(planned.lora_r)


def record_settings(directory: Path, settings: dict[str, Any]) -> None:
    """Write the search's settings, or check them against an earlier start's: a study whose
    trials were drawn from another space or trained with other settings cannot be continued
    (only --trials may change)."""
    path = directory / SETTINGS_FILE
    if path.is_file():
        earlier = json.loads(path.read_text(encoding="utf-8")).get("settings", {})
        for key in ("metric", "direction", "sampler", "pruner", "space", "config"):
            old, new = earlier.get(key), settings[key]
            if isinstance(old, dict) and isinstance(new, dict):
                diff = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
                if diff:
                    raise TrainError(f"{directory} holds a search with other settings ({key} "
                                     f"{diff[0]}: {old.get(diff[0])!r}, now "
                                     f"{new.get(diff[0])!r}); give another --output")
            elif old != new:
                raise TrainError(f"{directory} holds a search with {key} {old!r}, not "
                                 f"{new!r}; give another --output")
    path.write_text(json.dumps({"settings": settings}, indent=2) + "\n", encoding="utf-8")


def share_cores(cfg: TrainConfig, workers: int) -> dict[str, str]:
    """On a CPU the search's processes split the cores (the workers' environment is returned):
    torch's default, a thread per core in every process, makes them spin against each other
    (trials ran 4x slower so on a shared 2-core machine). A thread count set by the user wins."""
    import torch

    gpu = torch.cuda.is_available() and cfg.device != "cpu"
    if gpu or workers == 1 or "OMP_NUM_THREADS" in os.environ:
        return dict(os.environ)
    threads = max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(threads)
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}


def spawn_workers(directory: Path, n: int, lock_fd: int, env: dict[str, str]
                  ) -> list[subprocess.Popen]:
    """Workers 1..n-1: the same command on the same directory, logging to worker-K.log."""
    workers = []
    for k in range(1, n):
        with open(directory / f"worker-{k}.log", "w", encoding="utf-8") as log:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "train", "search", "--output", str(directory),
                 "--worker", str(k)], stdout=log, stderr=subprocess.STDOUT,
                pass_fds=(lock_fd,), env=env))
    return workers


def wait_for(workers: list[subprocess.Popen], directory: Path) -> None:
    for k, worker in enumerate(workers, start=1):
        if worker.wait() != 0:
            log = directory / f"worker-{k}.log"
            lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
            raise TrainError(f"search worker {k} failed ({lines[-1] if lines else 'no output'}"
                             f"); see {log}")


def run_search(flags: dict[str, Any], config: Path | None, trials: int, sampler: str,
               pruner: str, space_file: Path | None, workers: int) -> tuple[Path, str]:
    """The main process: check everything, prepare, take trials with the workers, finish.
    Returns the search directory and the one-line summary."""
    from dataprep.store import open_version

    from .data import check_method_fits
    from .search_report import finish

    check_options(trials, sampler, pruner, workers)
    cfg = resolve_config(flags, config)
    given = {k for k, v in flags.items() if v is not None} | set(load_config_file(config))
    given -= set(FIXED)
    space = load_space(space_file, cfg, given) if space_file else None
    if sampler == "grid" and space is None:
        raise TrainError("--sampler grid needs --space FILE giving each parameter choices or "
                         "a step (the default space has continuous ranges)")
    if space is not None and sampler == "grid":
        grid_of(space)  # every parameter has choices or a step, or a one-line error now
    version = open_version(cfg.dataset, cfg.store)
    check_method_fits(version, cfg.method)
    if version.data["validation"].num_rows == 0:
        raise TrainError(f"{version.spec} has no validation rows: a search chooses on them")
    directory = search_dir(cfg, version)
    directory.mkdir(parents=True, exist_ok=True)
    lock_fd = hold_directory(directory)
    metric, direction = metric_of(cfg.method)
    fixed = {**cfg.as_dict(), "dataset": version.spec, "output": None, "resume": False}
    settings = {"dataset": version.spec, "metric": metric, "direction": direction,
                "sampler": sampler, "pruner": pruner, "trials": trials, "config": fixed}
    env = share_cores(cfg, workers)
    own = Trials(directory, {**settings, "space": {}}, version)
    own.prepare()
    if space is None:
        space = default_space(cfg, given, uses_adapter(cfg, own.setup))
    if not space:
        raise TrainError("nothing to search: every setting of the default space is fixed by a "
                         "flag; give --space FILE")
    settings["space"] = {name: p.as_dict() for name, p in space.items()}
    own.settings, own.space = settings, space
    record_settings(directory, settings)
    open_study(directory, settings, cfg.seed)  # created here, before any worker loads it
    left = fail_left_running(directory)
    if left:
        print(f"marked FAIL the trials an earlier, stopped search left running: {left}")
    spawned = spawn_workers(directory, workers, lock_fd, env)
    try:
        own.take(worker=0)
        wait_for(spawned, directory)
    finally:
        for worker in spawned:
            if worker.poll() is None:
                worker.kill()
    return directory, finish(directory, settings, version, cfg)


def run_worker(directory: Path, index: int) -> None:
    """A spawned worker: the settings from the directory, then trials until the budget."""
    path = directory / SETTINGS_FILE
    if not path.is_file():
        raise TrainError(f"{directory}: no {SETTINGS_FILE}: not a search directory")
    settings = json.loads(path.read_text(encoding="utf-8"))["settings"]
    Trials(directory, settings).take(worker=index)


def search(**flags: Any) -> None:
    """Search hyperparameters with Optuna on validation: each trial is a run (trial-NNN/ with
    its card); writes study.db, trials.csv, best.yaml (a --config file), search.json (the best
    trial's test metrics, computed once at the end) and report.html."""
    own = {k: flags.pop(k) for k in ("trials", "sampler", "pruner", "space", "workers",
                                     "worker")}
    config, as_json, quiet = flags.pop("config"), flags.pop("as_json"), flags.pop("quiet")
    if own["worker"] is not None:
        if not flags.get("output"):
            raise TrainError("--worker needs --output DIR")
        return run_worker(Path(flags["output"]), own["worker"])
    flags = {k: None if k in ON_SWITCHES and not v else v for k, v in flags.items()}
    with result_only(as_json, quiet):
        directory, summary = run_search(flags, config, own["trials"], own["sampler"],
                                        own["pruner"], own["space"], own["workers"])
    if as_json:  # search.json: settings, counts, the best trial, its test metrics, importances
        record = json.loads((directory / SETTINGS_FILE).read_text(encoding="utf-8"))
        print(json.dumps(finite({"output": str(directory), **record}), ensure_ascii=False))
    else:
        print(directory if quiet else summary)


def _option(name: str, annotation: Any, default: Any, help: str, hidden: bool = False):
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default,
                             annotation=Annotated[annotation, typer.Option(
                                 help=help, hidden=hidden, show_default=default is not None)])


def _train_flag(p: inspect.Parameter) -> inspect.Parameter:
    """train's own flag, with the search's help where the setting means something else."""
    if p.name not in HELP:
        return p
    info = copy.copy(TrainConfig.model_fields[p.name])
    info.description = HELP[p.name]
    return parameter(p.name, info)


OWN = [
    _option("trials", int, 20, "Trials to finish (complete or pruned), over every start."),
    _option("sampler", str, "tpe", "tpe (Bayesian), random or grid (needs --space)."),
    _option("pruner", str, "median", "median, hyperband or none."),
    _option("space", Path | None, None, "YAML search space: {setting: {type: float|int|"
                                        "categorical, low, high, log, step, choices}}."),
    _option("workers", int, 1, "Processes sharing the study."),
    _option("worker", int | None, None, "A spawned worker's number (internal).", hidden=True),
]
CONFIG = inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None,
                           annotation=Annotated[Path | None, typer.Option(
                               help="YAML file of train's settings, fixed for every trial; "
                                    "flags given win.")])
SIGNATURE = [*(_train_flag(p) for p in PARAMETERS), *OWN, CONFIG, *OUTPUT_SWITCHES]
search.__signature__ = inspect.Signature(SIGNATURE)  # type: ignore[attr-defined]
search.__annotations__ = {p.name: p.annotation for p in SIGNATURE}

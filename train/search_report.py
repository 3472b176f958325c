"""What a finished search leaves beside its study: `trials.csv`, `best.yaml` (a `--config` file
for the best trial), `search.json` with the best trial's test metrics (computed here, once, the
only time the search touches the test split) and `report.html` (optimisation history and
parameter importances as inline SVG, `common.plots`, and the trials table).
"""

from __future__ import annotations

import csv
import html
import json
import math
import warnings
from pathlib import Path
from typing import Any

import yaml

from common.errors import first_line
from common.plots import bars, lines

from .config import TrainConfig

TEST_NOTE = "test metrics of the best trial, computed once after the search"
#: Settings a `--config` file for one plain run leaves out: where it writes, and resuming.
NOT_IN_CONFIG = ("output", "resume")


def trial_rows(directory: Path, trials) -> tuple[list[str], list[dict[str, Any]]]:
    """One row per trial: number, state, value, each parameter, duration, run directory."""
    names = sorted({name for t in trials for name in t.params})
    rows = []
    for t in trials:
        run_dir = t.user_attrs.get("run_dir")
        rows.append({"number": t.number, "state": t.state.name, "value": t.value,
                     **{name: t.params.get(name) for name in names},
                     "duration_s": round(t.duration.total_seconds(), 1) if t.duration else None,
                     "run_dir": str(directory / run_dir) if run_dir else None})
    return names, rows


def write_csv(path: Path, names: list[str], rows: list[dict[str, Any]]) -> None:
    fields = ["number", "state", "value", *names, "duration_s", "run_dir"]
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_best_config(path: Path, run_dir: Path, number: int, metric: str, value: float) -> None:
    """The best trial's settings as its run recorded them (method defaults resolved), so
    `train --config best.yaml` trains that trial again as a plain run, test split included."""
    config = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))["config"]
    config = {k: v for k, v in config.items() if k not in NOT_IN_CONFIG and v is not None}
    TrainConfig.model_validate(config)  # what `train --config` will read back
    header = (f"# The best trial ({number}, validation {metric} {value:.6g}) of the search in "
              f"{path.parent}.\n# Train it as a plain run: train --config {path}\n")
    path.write_text(header + yaml.safe_dump(config, sort_keys=False), encoding="utf-8")


def best_test_metrics(run_dir: Path, version, cfg: TrainConfig) -> dict[str, Any]:
    """The saved best model on the version's test split, read back as `train evaluate` reads a
    run (the same losses and label scores), with nothing generated."""
    from .analysis import AnalysisSettings, analyse_split, overlap_with_training
    from .inference import Predictor
    from .run_dir import open_run

    run = open_run(run_dir, cfg.store)
    run.__dict__["version"] = version  # fills the cached property: the version in hand
    rows = version.data["test"].num_rows
    if rows == 0:
        return {"note": TEST_NOTE, "split": "test", "rows": 0, "metrics": {}}
    analysis = analyse_split(Predictor(run, cfg.device, int(run.config["batch_size"])),
                             version, "test", AnalysisSettings(top=0, generate_rows=0),
                             overlap_with_training(run, version, "test"))
    return {"note": TEST_NOTE, "run_dir": str(run_dir), "split": "test", "rows": rows,
            "metrics": analysis["metrics"], "per_label": analysis.get("per_label")}


def importances(study) -> tuple[dict[str, float], str | None]:
    """`optuna.importance.get_param_importances` over the completed trials, or why none."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return {}, f"none: {len(complete)} complete trial(s); importances need at least 2"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study)), None
    except (ValueError, RuntimeError) as exc:  # e.g. every trial drew the same values
        return {}, f"none: {first_line(exc)}"


def history(rows: list[dict[str, Any]], direction: str) -> dict[str, list[tuple[float, float]]]:
    """Each finished trial's value, and the best complete value so far, by trial number."""
    pick = max if direction == "maximize" else min
    values, best, so_far = [], [], None
    for row in rows:
        value = row["value"]
        if row["state"] not in ("COMPLETE", "PRUNED") or value is None:
            continue
        values.append((row["number"], value))
        if row["state"] == "COMPLETE" and math.isfinite(value):
            so_far = value if so_far is None else pick(so_far, value)
        if so_far is not None:
            best.append((row["number"], so_far))
    return {"trial value (pruned: its last)": values, "best so far": best}


def _cell(value: Any) -> str:
    text = f"{value:.4g}" if isinstance(value, float) else "" if value is None else str(value)
    return f"<td>{html.escape(text)}</td>"


def report_html(record: dict[str, Any], counts: str, names: list[str],
                rows: list[dict[str, Any]], chart_history: str, chart_importance: str) -> str:
    settings, best, test = record["settings"], record.get("best_trial"), record.get("test")
    head = ["number", "state", "value", *names, "duration_s", "run_dir"]
    table = "".join("<tr>" + "".join(_cell(r[k]) for k in head) + "</tr>" for r in rows)
    if best:
        shown = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}"
                          for k, v in best["params"].items())
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in (test or {}).get("metrics", {}).items()
                            if isinstance(v, float))
        summary = (f"<p>Best trial: <b>{best['number']}</b>, validation {settings['metric']} "
                   f"<b>{best['value']:.4f}</b> ({html.escape(shown)}); <code>best.yaml</code> "
                   f"trains it as a plain run.</p><p>{html.escape(TEST_NOTE.capitalize())}: "
                   f"{html.escape(metrics or 'none (no test rows)')}.</p>")
    else:
        summary = "<p>No trial completed: no best trial, no test metrics.</p>"
    return f"""<!doctype html><html><head><meta charset=utf-8>
<title>Search on {html.escape(settings['dataset'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:2px 6px}}
figure{{margin:1em 0}}</style></head><body>
<h1>Hyperparameter search on {html.escape(settings['dataset'])}</h1>
<p>{html.escape(settings['config']['model'])}, {html.escape(settings['config']['method'])};
sampler {settings['sampler']}, pruner {settings['pruner']}; trials chosen by validation
{settings['metric']} ({settings['direction']}); {html.escape(counts)}.</p>
{summary}
<h2>Optimisation history</h2>{chart_history}
<h2>Parameter importances</h2>{chart_importance}
<h2>Trials</h2><table><tr>{''.join(f'<th>{html.escape(h)}</th>' for h in head)}</tr>{table}
</table></body></html>
"""


def finish(directory: Path, settings: dict[str, Any], version, cfg: TrainConfig) -> str:
    """Write the search's outputs; returns the one-line summary."""
    from collections import Counter

    from .search import SETTINGS_FILE
    from .search_study import open_study

    study = open_study(directory, settings, cfg.seed)
    trials = study.get_trials(deepcopy=False)
    names, rows = trial_rows(directory, trials)
    write_csv(directory / "trials.csv", names, rows)
    counts = Counter(t.state.name.lower() for t in trials)
    shown_counts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    record: dict[str, Any] = {"settings": settings, "counts": dict(sorted(counts.items()))}
    metric = settings["metric"]
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    ending = "no trial completed"
    if complete:
        best = study.best_trial
        run_dir = directory / best.user_attrs["run_dir"]
        write_best_config(directory / "best.yaml", run_dir, best.number, metric, best.value)
        record["best_trial"] = {"number": best.number, "value": best.value,
                                "params": best.params, "run_dir": str(run_dir)}
        record["test"] = best_test_metrics(run_dir, version, cfg)
        test_value = record["test"]["metrics"].get(metric)
        ending = (f"best trial {best.number}: validation {metric} {best.value:.4f}, "
                  f"test {metric} " + (f"{test_value:.4f}" if test_value is not None else "-")
                  + " (computed once, after the search)")
    found, why = importances(study)
    record["importances"] = found or why
    (directory / SETTINGS_FILE).write_text(json.dumps(record, indent=2, default=str) + "\n",
                                           encoding="utf-8")
    chart_history = lines("history", f"Validation {metric} by trial",
                          history(rows, settings["direction"]), x_label="trial")
    chart_importance = (bars("importances", "Parameter importance (share of the "
                             "variation of the value, over complete trials)",
                             {"importance": {k: round(v, 3) for k, v in found.items()}})
                        if found else f"<p class=empty>{html.escape(why or '')}</p>")
    page = report_html(record, shown_counts, names, rows, chart_history, chart_importance)
    (directory / "report.html").write_text(page, encoding="utf-8")
    return (f"search on {settings['dataset']}: {len(trials)} trials ({shown_counts}); "
            f"{ending}; written to {directory}")

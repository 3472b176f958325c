"""The Ray engine makes the same version as the local one: the bundled fixtures, a generated
corpus with planted duplicates, hostile inputs, a worker killed mid-run, a cluster joined by
address, and Ray missing.

One local Ray cluster (2 CPUs, `ray start --head`) serves the module: its in-process runs (the
engine keeps a connection it finds) and a CLI run that joins it by address. Ray runs here use
small read tasks (MIN_PART_BYTES lowered), so even the fixtures are read as several
line-aligned byte ranges by different tasks.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from dataprep import engine_ray
from dataprep.engine_ray import line_spans, part_blocks, plan_parts
from dataprep.ingest import parse_block, read_blocks
from dataprep.line_blocks import BLOCK_BYTES
from dataprep.pipeline import run_pipeline
from dataprep.recipe import load_recipe

from .conftest import FIXTURES, ROOT, run_cli
from .hostile import damaged_file, input_file, invoke, store_entries

sys.path.insert(0, str(FIXTURES))
import synthetic  # noqa: E402  (fixtures/synthetic.py, the corpus generator)

#: Read tasks of this size at least in this module's Ray runs (the engine's default is 1 MiB).
SMALL_PARTS = 16 << 10


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local Ray cluster of 2 CPUs, `ray start --head` in a session of its own, ended by its
    process group at the end (not `ray stop`, which would stop every Ray on the machine). The
    module's in-process runs and the CLI run that joins by address share it."""
    pytest.importorskip("ray")
    port, log = free_port(), tmp_path_factory.mktemp("head") / "head.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled"}
    temp_dir = tempfile.mkdtemp(prefix="rayc", dir="/tmp")  # short: Ray's socket paths
    with log.open("w") as out:
        head = subprocess.Popen(
            ["ray", "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(log, "Ray runtime started", head)
        yield f"127.0.0.1:{port}", env
    finally:
        stop_group(head)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def local_ray(ray_cluster):
    """This process connected to the module's Ray (the engine keeps a connection it finds)."""
    import ray

    address, env = ray_cluster
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", env["RAY_AUTH_MODE"])
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        yield ray
        ray.shutdown()


@pytest.fixture
def small_parts(monkeypatch):
    monkeypatch.setattr(engine_ray, "MIN_PART_BYTES", SMALL_PARTS)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """20k generated rows with planted exact and near duplicates and other languages."""
    path = tmp_path_factory.mktemp("corpus") / "generated.jsonl"
    stats = synthetic.write_jsonl(path, 20_000, seed=7)
    assert stats["exact"] > 500 and stats["near"] > 500
    return path


def version_files(path: Path) -> dict:
    """What must be equal: rows per split (in order), removals and rejects (order aside), the
    report's counts."""
    import datasets

    splits = datasets.load_from_disk(str(path))
    return {
        "splits": {name: split.to_list() for name, split in splits.items()},
        "removed": sorted((path / "removed.jsonl").read_text(encoding="utf-8").splitlines()),
        "rejected": sorted((path / "rejected.jsonl").read_text(encoding="utf-8").splitlines()),
        "counts": json.loads((path / "report.json").read_text(encoding="utf-8"))["counts"],
    }


def both_engines(inputs: list[Path], tmp_path: Path, recipe: Path | None = None, **kw):
    """The local engine's and the Ray engine's version of the same inputs, in two stores."""
    local = run_pipeline(inputs, "e", recipe, store=tmp_path / "local", **kw)
    ray = run_pipeline(inputs, "e", recipe, store=tmp_path / "ray", engine="ray", **kw)
    return local, ray


def assert_same_version(local, ray) -> None:
    assert ray.version == local.version
    assert ray.created
    a, b = version_files(local.path), version_files(ray.path)
    for key in ("counts", "rejected", "removed", "splits"):
        assert a[key] == b[key], f"{key} differ between the engines"
    assert sorted(p.name for p in ray.path.iterdir()) == \
        sorted(p.name for p in local.path.iterdir())


# --- planning the read tasks (no Ray needed) ----------------------------------------------


def test_line_spans_cover_the_file_cut_after_newlines_with_their_first_line_numbers(tmp_path):
    rnd = random.Random(3)
    lines = [b"x" * rnd.choice([0, 1, 5, 40, 300, 5000]) for _ in range(600)]
    data = b"\n".join(lines) + b"no newline at the end"
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    for target, chunk in ((1, 7), (100, 64), (4096, 1000), (1 << 20, 1 << 16)):
        spans = list(line_spans(path, target, chunk))
        assert spans[0][0] == 0 and spans[-1][1] == len(data)
        for (start, stop, line), following in zip(spans, spans[1:] + [None], strict=True):
            assert stop - start >= min(target, len(data) - start) or following is None
            assert line == data.count(b"\n", 0, start) + 1
            if following is not None:
                assert data[stop - 1:stop] == b"\n" and following[0] == stop


def test_parts_read_the_same_rows_as_the_whole_file(tmp_path):
    """BOM, CRLF, blank lines, bad JSON and a line over max_row_bytes, read as byte ranges by
    the workers' reader: the same raw rows with the same line numbers as the local reader."""
    rows = [json.dumps({"text": f"row {i} " * (i % 40), "label": "a"}) for i in range(400)]
    rows[7] = "{not json"
    rows[50] = ""
    rows[120] = json.dumps({"text": "y" * 9000, "label": "a"})
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode())
    (tmp_path / "recipe.yaml").write_text("max_row_bytes: 4096\n", encoding="utf-8")
    recipe = load_recipe(tmp_path / "recipe.yaml")

    def seen(blocks):
        return [(r.line, r.error, r.raw) for b in blocks for r in parse_block(b)]

    whole = seen(read_blocks(path, recipe.max_row_bytes))
    engine_ray.MIN_PART_BYTES, saved = 512, engine_ray.MIN_PART_BYTES
    try:
        parts = plan_parts([path], recipe, cpus=64)
    finally:
        engine_ray.MIN_PART_BYTES = saved
    assert len(parts) > 10
    assert seen(b for part in parts for b in part_blocks(part, recipe.max_row_bytes)) == whole
    assert {e for _, e, _ in whole} >= {"too_large", "invalid_json", None}


def parquet_file(path: Path, rows: int, group_rows: int) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"id": [f"p{i}" for i in range(rows)],
                      "text": [f"parquet row {i} says " + "word " * (i % 30) for i in range(rows)],
                      "label": ["a" if i % 3 else "b" for i in range(rows)]})
    pq.write_table(table, path, row_group_size=group_rows)
    return path


def test_parquet_parts_are_runs_of_row_groups_numbered_as_the_whole_file(tmp_path):
    path = parquet_file(tmp_path / "rows.parquet", 3000, 128)
    recipe = load_recipe(None)
    engine_ray.MIN_PART_BYTES, saved = 4096, engine_ray.MIN_PART_BYTES
    try:
        parts = plan_parts([path], recipe, cpus=64)
    finally:
        engine_ray.MIN_PART_BYTES = saved
    assert len(parts) > 5 and all(p.row_groups for p in parts)

    def seen(blocks):
        return [(r.line, r.obj) for b in blocks for r in parse_block(b)]

    assert seen(b for part in parts for b in part_blocks(part, recipe.max_row_bytes)) == \
        seen(read_blocks(path, recipe.max_row_bytes))


# --- the same version ----------------------------------------------------------------------


FIXTURE_CASES = {
    "reviews.csv": ([FIXTURES / "reviews.csv"], FIXTURES / "reviews.recipe.yaml"),
    "support_chats.jsonl + transcripts.txt": ([FIXTURES / "support_chats.jsonl",
                                               FIXTURES / "transcripts.txt"], None),
    "instructions.jsonl": ([FIXTURES / "instructions.jsonl"], None),
}


@pytest.mark.parametrize("case", list(FIXTURE_CASES))
def test_fixtures_make_the_same_version_under_both_engines(case, local_ray, small_parts,
                                                          tmp_path):
    inputs, recipe = FIXTURE_CASES[case]
    assert_same_version(*both_engines(inputs, tmp_path, recipe))


def test_parquet_in_row_groups_and_a_gzipped_file_make_the_same_version(local_ray, small_parts,
                                                                       tmp_path):
    import gzip

    inputs = [parquet_file(tmp_path / "rows.parquet", 3000, 256), tmp_path / "more.jsonl.gz"]
    with gzip.open(inputs[1], "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"id": f"g{i}", "text": f"gzipped row {i}", "label": "a"})
                      + "\n" for i in range(500))
    assert_same_version(*both_engines(inputs, tmp_path))


def test_a_file_read_by_a_worker_is_named_as_the_user_named_it(local_ray, small_parts, tmp_path,
                                                               monkeypatch):
    """A truncated .gz given by a relative path, cut past the rows the driver reads for the
    kind: the worker opens it by its absolute path, the error names it as given, as locally."""
    import gzip

    monkeypatch.chdir(tmp_path)
    data = gzip.compress(b"".join(json.dumps({"text": f"row {i} " + "x" * (i % 97),
                                              "label": "a"}).encode() + b"\n"
                                  for i in range(100_000)))
    Path("cut.jsonl.gz").write_bytes(data[: len(data) // 2])
    errors = {}
    for engine in ("local", "ray"):
        outcome = invoke(["run", "cut.jsonl.gz", "--name", "e", "--store", f"s-{engine}",
                          "--engine", engine, "-q"])
        assert outcome.exit_code == 1 and outcome.crash is None
        errors[engine] = outcome.user_error
    assert errors["ray"] == errors["local"]
    assert errors["ray"].startswith("cut.jsonl.gz: the file ends early, after ")
    assert int(errors["ray"].split("after ")[1].split()[0]) > 2 * BLOCK_BYTES


def test_generated_corpus_with_planted_duplicates_makes_the_same_version(local_ray, corpus,
                                                                        tmp_path):
    """At the engine's own part sizes: 20k rows are several read tasks of ~1.5 MB."""
    recipe = load_recipe(None)
    assert len(plan_parts([corpus], recipe, cpus=2)) >= 4
    local, ray = both_engines([corpus], tmp_path)
    assert_same_version(local, ray)
    duplicates = local.report["counts"]["duplicates"]
    assert duplicates["exact"] > 500 and duplicates["near"] > 300


# --- errors --------------------------------------------------------------------------------


def custom_stage_recipe(folder: Path, body: str) -> Path:
    (folder / "stage.py").write_text(body, encoding="utf-8")
    recipe = folder / "recipe.yaml"
    recipe.write_text("custom_stages:\n  - {name: mine, function: 'stage.py:check', "
                      "after: filter}\n", encoding="utf-8")
    return recipe


def test_an_error_raised_in_a_worker_is_the_same_one_line_error(local_ray, small_parts,
                                                               tmp_path):
    """A user's stage that raises on one row, in a read task far into the file: the same
    message as locally, nothing published."""
    recipe = custom_stage_recipe(tmp_path, (
        "def check(table, texts):\n"
        "    if 'MAGIC-7' in table.column('id').to_pylist():\n"
        "        raise ValueError('row MAGIC-7 is not allowed')\n"
        "    return [None] * table.num_rows\n"))
    rows = [{"id": f"r{i}" if i != 1900 else "MAGIC-7", "text": f"some text number {i} here",
             "label": "a" if i % 2 else "b"} for i in range(2000)]
    inputs = tmp_path / "rows.jsonl"
    inputs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    errors = {}
    for engine in ("local", "ray"):
        store = tmp_path / engine
        outcome = invoke(["run", str(inputs), "--name", "e", "--store", str(store),
                          "--recipe", str(recipe), "--engine", engine, "-q"])
        assert outcome.exit_code == 1 and outcome.crash is None
        errors[engine] = outcome.user_error
        assert store_entries(store) in ([], ["e"])
    assert errors["ray"] == errors["local"]
    assert "raised ValueError: row MAGIC-7 is not allowed" in errors["ray"]


HOSTILE = settings(max_examples=3, phases=[Phase.explicit, Phase.generate], deadline=None,
                   derandomize=True, database=None, print_blob=False,
                   suppress_health_check=list(HealthCheck))


def outcome_of(sample, folder: Path, engine: str):
    """What a user gets from `dataprep run FILE --engine ENGINE`: the one-line error, or the
    version's id, counts, rejects and removals."""
    path, recipe = sample.write(folder)
    store = folder / f"store-{engine}"
    outcome = invoke(["run", str(path), "--name", "h", "--store", str(store), "--engine",
                      engine, "-q"] + (["--recipe", str(recipe)] if recipe else []))
    assert outcome.crash is None, f"{engine}: {outcome.crash!r}"
    if outcome.exit_code != 0:
        assert outcome.user_error is not None and "\n" not in outcome.user_error
        assert store_entries(store) in ([], ["h"])
        return outcome.exit_code, outcome.user_error
    version = outcome.stdout.strip().split("\n")[-1]
    files = version_files(store / "h" / version)
    return version, files["counts"], files["rejected"], files["removed"]


def assert_same_outcome(sample) -> None:
    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:  # errors name the file
        seen = {engine: outcome_of(sample, Path(folder), engine) for engine in ("local", "ray")}
    assert seen["ray"] == seen["local"]


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "json", "csv", "parquet", "txt"])
@HOSTILE
@given(data=st.data())
def test_hostile_files_give_the_same_rejects_or_error_under_both_engines(fmt, data, local_ray):
    assert_same_outcome(data.draw(input_file(fmt), label="file"))


@HOSTILE
@given(sample=damaged_file())
def test_damaged_containers_give_the_same_outcome_under_both_engines(sample, local_ray):
    assert_same_outcome(sample)


#: A stage that SIGKILLs the Ray worker running it, once: the first call after the test arms
#: it (ARMED holds the test's pid, so it never kills the test itself), guarded by a marker;
#: every time while ALWAYS exists.
KILLER = """
import os, signal
from pathlib import Path

HERE = Path(__file__).parent


def check(table, texts):
    armed = HERE / "ARMED"
    if armed.exists() and int(armed.read_text()) != os.getpid():
        if (HERE / "ALWAYS").exists():
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            os.close(os.open(HERE / "KILLED", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    return [None] * table.num_rows
"""


def test_a_worker_killed_mid_run_is_retried_and_the_version_is_complete(local_ray, small_parts,
                                                                        tmp_path):
    """Ray retries the dead worker's task: the version is the local one. (Had Ray given up,
    the run would have to fail with one line and publish nothing: `ray_failure`.)"""
    recipe = custom_stage_recipe(tmp_path, KILLER)
    inputs = FIXTURES / "support_chats.jsonl"
    local = run_pipeline([inputs], "e", recipe, store=tmp_path / "local")
    (tmp_path / "ARMED").write_text(str(os.getpid()))
    outcome = invoke(["run", str(inputs), "--name", "e", "--store", str(tmp_path / "ray"),
                      "--recipe", str(recipe), "--engine", "ray", "-q"])
    assert (tmp_path / "KILLED").exists(), "no worker was killed"
    assert outcome.crash is None
    if outcome.exit_code != 0:
        assert outcome.user_error and store_entries(tmp_path / "ray") in ([], ["e"])
        pytest.fail(f"Ray did not retry the killed worker's task: {outcome.user_error}")
    assert outcome.stdout.strip().split("\n")[-1] == local.version
    ray_path = tmp_path / "ray" / "e" / local.version
    assert version_files(ray_path) == version_files(local.path)


def test_a_worker_killed_beyond_the_retries_is_a_one_line_error_and_publishes_nothing(
        local_ray, tmp_path):
    recipe = custom_stage_recipe(tmp_path, KILLER)
    (tmp_path / "ARMED").write_text(str(os.getpid()))
    (tmp_path / "ALWAYS").touch()
    outcome = invoke(["run", str(FIXTURES / "instructions.jsonl"), "--name", "e", "--store",
                      str(tmp_path / "ray"), "--recipe", str(recipe), "--engine", "ray", "-q"])
    assert outcome.exit_code == 1 and outcome.crash is None
    assert outcome.user_error.startswith("the Ray run failed ("), outcome.user_error
    assert "\n" not in outcome.user_error
    assert store_entries(tmp_path / "ray") in ([], ["e"])


def test_ray_failure_unwraps_a_wrapped_one_line_error_and_names_other_failures():
    from dataprep.errors import DataprepError

    mine = DataprepError("x.jsonl: bad")
    wrapper = RuntimeError("task failed")
    wrapper.cause = mine
    assert engine_ray.ray_failure(wrapper) is mine
    other = engine_ray.ray_failure(OSError("worker died\ntraceback ..."))
    assert str(other).startswith("the Ray run failed (OSError: worker died); nothing was")


# --- how it starts -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_run_joins_a_cluster_started_with_ray_start(ray_cluster, tmp_path):
    """The CLI, in a process of its own, joins the module's `ray start --head` cluster by
    address: the version equals the local one."""
    inputs = [str(FIXTURES / "support_chats.jsonl"), str(FIXTURES / "transcripts.txt")]
    local = run_pipeline(inputs, "e", store=tmp_path / "local")
    address, env = ray_cluster
    done = run_cli("run", *inputs, "--name", "e", "--store", str(tmp_path / "ray"),
                   "--engine", "ray", "--ray-address", address, "-q", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().split("\n")[-1] == local.version
    assert version_files(tmp_path / "ray" / "e" / local.version) == version_files(local.path)


@pytest.mark.slow
def test_without_an_address_a_run_starts_a_local_ray_and_stops_it(tmp_path):
    """`--engine ray` alone: a Ray of this machine's CPUs, started and shut down by the run."""
    inputs = [str(FIXTURES / "instructions.jsonl")]
    local = run_pipeline(inputs, "e", store=tmp_path / "local")
    done = run_cli("run", *inputs, "--name", "e", "--store", str(tmp_path / "ray"), "--engine",
                   "ray", "-q", env={"RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().split("\n")[-1] == local.version


def wait_for(log: Path, text: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None, f"ray start exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, f"ray start did not start: {log.read_text()[-2000:]}"
        time.sleep(0.5)


def stop_group(process: subprocess.Popen) -> None:
    """End the process group of `ray start` (its GCS, raylet and workers): SIGTERM, then
    SIGKILL for whatever is left after a grace period."""
    group = os.getpgid(process.pid)
    os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        process.poll()  # reaped, or a dead `ray start` would still count in its group
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(group, signal.SIGKILL)
    process.wait(10)


def test_without_ray_installed_the_ray_engine_is_a_one_line_error_naming_the_extra(tmp_path):
    code = ("import sys; sys.modules['ray'] = None; sys.argv[0] = 'dataprep'; "
            "from dataprep.cli import main; main()")
    done = subprocess.run(
        [sys.executable, "-c", code, "run", str(FIXTURES / "instructions.jsonl"), "--name", "e",
         "--store", str(tmp_path), "--engine", "ray"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        'error: --engine ray needs Ray Data, which is not installed: run pip install -e ".[ray]"']
    assert not (tmp_path / "e").exists()


@pytest.mark.parametrize("args, message", [
    (["--ray-address", "127.0.0.1:6379"], "--ray-address needs --engine ray"),
    (["--engine", "spark"], "unknown engine 'spark'"),
    (["--engine", "ray", "--ray-address", "nowhere"], "is not HOST:PORT"),
])
def test_engine_flags_are_checked_before_any_work(args, message, tmp_path):
    outcome = invoke(["run", str(FIXTURES / "instructions.jsonl"), "--name", "e", "--store",
                      str(tmp_path), *args])
    assert outcome.exit_code == 2
    assert message in " ".join(outcome.output.replace("│", " ").split())  # rich's box, unwrapped
    assert not tmp_path.exists() or not any(tmp_path.iterdir())

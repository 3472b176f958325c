"""`dataprep run` on the local engine vs `--engine ray`, on one generated corpus.

    python bench/engines.py [--rows 200000] [--repeats 1]

Each run is a child process (`python -m dataprep run CORPUS --engine E -q`, a fresh store);
the Ray one starts its own local Ray with the machine's CPUs, as a user's would. Measured per
run: wall time; the driver's peak RSS (its VmHWM, sampled); the Ray worker processes' peak RSS
summed over them (each `ray::` process's VmHWM; for the local engine, its forked worker
processes'; pages a fork shares are counted in each); Ray's own services (GCS, raylet, agents)
likewise; and the ratio ray / local of the wall time. Also Ray's start-up alone (import, init,
shutdown in a child), the part of the Ray run's time that is not the first pass's work. Both
runs must make the same version id (checked). The corpus is the one bench/dataprep_throughput.py
times (fixtures/synthetic.py, seed 5: ~100 words a row, 5% other languages, planted exact and
near duplicates).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "fixtures"))
import synthetic  # noqa: E402  (fixtures/synthetic.py, the corpus generator)

RAY_START = ("import time, ray; t = time.perf_counter(); ray.init(address='local', "
             "include_dashboard=False, logging_level='ERROR'); ray.shutdown(); "
             "print(time.perf_counter() - t)")


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text()
                .splitlines() if line.startswith("model name")), platform.processor())
    return f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}"


def peak_rss(pid: int) -> int:
    """A process's peak resident set (VmHWM, bytes), 0 once it is gone. psutil has no peak,
    hence /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) << 10
    except OSError:
        pass
    return 0


@dataclass
class Run:
    engine: str
    seconds: float = 0.0
    driver: int = 0
    workers: dict[int, int] = field(default_factory=dict)
    services: dict[int, int] = field(default_factory=dict)
    version: str = ""

    def mib(self, values: dict[int, int] | int) -> float:
        total = values if isinstance(values, int) else sum(values.values())
        return total / (1 << 20)


def role(process: psutil.Process) -> str | None:
    """'worker' for a process that runs first-pass tasks (a `ray::` process, or a forked pool
    worker of the local engine), 'service' for Ray's own daemons."""
    try:
        cmd = " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None
    if cmd.startswith("ray::") or "default_worker.py" in cmd:
        return "worker"
    if "ray" in cmd:
        return "service"
    return "worker" if "dataprep" in cmd or "multiprocessing" in cmd or cmd.startswith(
        sys.executable) else None


def run(engine: str, corpus: Path, store: Path, interval: float = 0.2) -> Run:
    """One `dataprep run` in a child, its process tree sampled every `interval` seconds."""
    out = Run(engine)
    cmd = [sys.executable, "-m", "dataprep", "run", str(corpus), "--name", "bench", "--store",
           str(store), "--engine", engine, "-q"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    start = time.perf_counter()
    child = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def sample() -> None:
        root = psutil.Process(child.pid)
        while not done.wait(interval):
            out.driver = max(out.driver, peak_rss(child.pid))
            try:
                below = root.children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            for process in below:
                kind = role(process)
                if kind:
                    seen = out.workers if kind == "worker" else out.services
                    seen[process.pid] = max(seen.get(process.pid, 0), peak_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = child.communicate()
    out.seconds = time.perf_counter() - start
    done.set()
    sampler.join()
    if child.returncode != 0:
        raise SystemExit(f"{engine} run failed (exit {child.returncode}):\n{stderr[-3000:]}")
    out.version = stdout.strip().splitlines()[-1]
    return out


def ray_start_seconds() -> float:
    done = subprocess.run([sys.executable, "-c", RAY_START], capture_output=True, text=True,
                          env={**os.environ, "RAY_ADDRESS": ""}, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=1, help="runs per engine (the fastest "
                        "is shown)")
    args = parser.parse_args()
    print(f"# dataprep engines on {machine()}, {args.rows:,} generated rows")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        corpus = Path(tmp) / f"corpus-{args.rows}.jsonl"
        synthetic.write_jsonl(corpus, args.rows, seed=5)
        print(f"corpus: {corpus.stat().st_size / (1 << 20):.1f} MiB of JSON Lines\n")
        best: dict[str, Run] = {}
        for i in range(args.repeats):
            for engine in ("local", "ray"):
                result = run(engine, corpus, Path(tmp) / f"store-{engine}-{i}")
                if engine not in best or result.seconds < best[engine].seconds:
                    best[engine] = result
        local, ray = best["local"], best["ray"]
        assert local.version == ray.version, f"versions differ: {local.version} {ray.version}"
        print("| engine | wall s | rows/s | driver peak RSS MiB | workers' peak RSS MiB (sum, "
              "processes) | Ray services' peak RSS MiB (sum) |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in (local, ray):
            print(f"| {r.engine} | {r.seconds:.1f} | {args.rows / r.seconds:,.0f} | "
                  f"{r.mib(r.driver):.0f} | {r.mib(r.workers):.0f} ({len(r.workers)}) | "
                  f"{r.mib(r.services):.0f} |")
        print(f"\nray / local wall time: {ray.seconds / local.seconds:.2f}x; same version "
              f"{local.version}")
        print(f"Ray start-up alone (import, local init, shutdown): {ray_start_seconds():.1f} s")


if __name__ == "__main__":
    main()

"""Four `dataprep run` processes on one store and one name at once, with the same and with
different inputs: each finishes, every version loads, `latest` names a complete version, and no
temporary file or folder is left in the store."""

from __future__ import annotations

import os
import subprocess
import sys

import datasets

from dataprep.store import SPLITS, open_version

from .conftest import FIXTURES, ROOT

INPUTS = [
    ["support_chats.jsonl"],
    ["support_chats.jsonl"],                       # the same version as the first, raced
    ["support_chats.jsonl", "transcripts.txt"],
    ["transcripts.txt"],
]


def test_four_runs_on_one_name_at_once(tmp_path):
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DATAPREP_STORE": str(store)}
    procs = [subprocess.Popen([sys.executable, "-m", "dataprep", "run",
                               *(str(FIXTURES / f) for f in files), "--name", "support", "-q"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for files in INPUTS]
    results = [(p, *p.communicate(timeout=600)) for p in procs]
    for proc, _, stderr in results:
        assert proc.returncode == 0, stderr
    ids = [out.strip().splitlines()[-1] for _, out, _ in results]
    assert ids[0] == ids[1] and len(set(ids)) == 3

    base = store / "support"
    assert sorted(p.name for p in base.iterdir()) == sorted({*ids, "latest"})
    for version in set(ids):
        for split in SPLITS:
            assert datasets.load_from_disk(str(base / version / split)).num_rows >= 0
        assert open_version(f"support@{version}", store).manifest["version"] == version
    latest = (base / "latest").read_text()
    assert latest.strip() in ids and latest.endswith("\n")
    assert open_version("support@latest", store).ref.version == latest.strip()
    assert not [p for p in store.rglob(".*")]  # no .tmp-* folder, no .latest-* file

"""The versioned store: `store/<name>/<version>/` directories, immutable, written atomically.

A version is built in a hidden temporary directory beside its final place and renamed into place
only when complete, so a run killed at any moment leaves no partial version (at most a hidden
`.tmp-*` directory, which a later run removes once it sees the process that made it is gone).
The version id is a hash of what made it.

This module is the only one that knows the layout: the file names below, how a version is
found (`resolve`) and read back (`open_version`, the public reader `train` and the CLI use).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import DataprepError
from .tmp_dirs import OWNER_FILE, new_tmp_dir

__all__ = ["OWNER_FILE", "new_tmp_dir"]  # re-exported: the pipeline and tests name them here

#: The files of a version, beside the splits `DatasetDict.save_to_disk` lays out.
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.json"
REPORT_HTML_FILE = "report.html"
REJECTED_FILE = "rejected.jsonl"
REMOVED_FILE = "removed.jsonl"
LATEST_FILE = "latest"
#: The output splits, in order; a row's split code is its index here.
SPLITS = ("train", "validation", "test")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
#: Far below the 255 bytes a file name may have, so `.tmp-<version>-<pid>` and the run folders
#: `train` names after a version always fit.
MAX_NAME_LENGTH = 100
VERSION_RE = re.compile(r"^[0-9a-f]{12}$")
#: What may follow `@` in a spec: `latest`, a version id or a prefix of one.
WANTED_RE = re.compile(r"^(latest|[0-9a-f]{1,12})$")


def store_root(store: str | Path | None) -> Path:
    """`--store`, else `$DATAPREP_STORE`, else `./store`; it must not be a file."""
    root = Path(store or os.environ.get("DATAPREP_STORE") or "store")
    if root.exists() and not root.is_dir():
        raise DataprepError(f"{root}: store path is a file, not a directory")
    return root


def check_name(name: str) -> str:
    """A dataset name is one folder of the store: never a path (`/abs`, `..`), never hidden."""
    if len(name) > MAX_NAME_LENGTH:
        raise DataprepError(f"invalid dataset name {name[:20]!r}...: {len(name)} characters, "
                            f"at most {MAX_NAME_LENGTH}")
    if not NAME_RE.fullmatch(name):
        raise DataprepError(f"invalid dataset name {name!r}: use letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")
    return name


def parse_spec(spec: str) -> tuple[str, str]:
    """`NAME@VERSION` (or a bare NAME, meaning NAME@latest) split and checked, before anything
    is read: NAME by `check_name`, VERSION as `latest` or (a prefix of) a version id, so that no
    spec can name a path outside the store."""
    name, _, wanted = spec.partition("@")
    check_name(name)
    wanted = wanted or "latest"
    if not WANTED_RE.fullmatch(wanted):
        raise DataprepError(f"{spec[:120]!r}: the version after '@' must be 'latest' or "
                            "(a prefix of) a 12-hex-digit version id")
    return name, wanted


def version_id(
    inputs: list[dict[str, Any]], recipe: dict[str, Any], package_version: str, schema_version: int,
    parent: str | None = None,
) -> str:
    """12 hex digits of a hash over input names and bytes, the resolved recipe and the code; a
    child version's (`--from`) over its parent's id too, since its rows include the parent's."""
    blob = json.dumps(
        {
            "inputs": [(i["path"], i["sha256"]) for i in inputs],
            "recipe": recipe,
            "package": package_version,
            "schema": schema_version,
            **({"parent": parent} if parent else {}),
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
        manifest = path / MANIFEST_FILE
        if VERSION_RE.fullmatch(path.name) and manifest.is_file():
            found.append(read_manifest(path))
    return sorted(found, key=lambda m: (m["created_at"], m["version"]))


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest of the version at `path`, checked against its schema and its folder's name:
    a hand-edited or truncated one is a one-line error naming it, not a KeyError later."""
    from jsonschema.exceptions import best_match

    from .schemas import validator

    manifest = _read_json(path / MANIFEST_FILE)
    error = best_match(validator("manifest").iter_errors(manifest))
    if error is None and manifest["version"] != path.name:
        raise DataprepError(f"{path / MANIFEST_FILE}: names version {manifest['version']!r}, "
                            f"not its folder's {path.name!r}")
    if error is not None:
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        raise DataprepError(f"{path / MANIFEST_FILE}: not a valid manifest ({where}: "
                            f"{error.message[:120]})")
    return manifest


def latest(root: Path, name: str) -> str | None:
    """The version `latest` names, or None when there is none or it names no complete version
    (a run then writes a good one: the pointer is never followed as a path)."""
    try:
        return read_latest(root, name)
    except DataprepError:
        return None


def read_latest(root: Path, name: str) -> str:
    """The version id in `<name>/latest`, checked to be an id (never a path) of a complete
    version in that folder; a missing, unreadable or garbage pointer is a one-line error."""
    pointer = root / name / LATEST_FILE
    try:
        raw = pointer.read_bytes()[:64]
    except FileNotFoundError:
        raise DataprepError(f"{name}: no version has been written yet in {root}") from None
    except OSError as exc:
        raise DataprepError(f"{pointer}: cannot read ({exc.strerror})") from None
    version = raw.decode("utf-8", errors="replace").strip()
    if not VERSION_RE.fullmatch(version) or not is_complete(root / name / version):
        raise DataprepError(f"{pointer}: holds {version[:40]!r}, not the id of a complete version "
                            f"of {name}; name one with {name}@<id> (`dataprep versions {name}`), "
                            "or run `dataprep run` again to rewrite it")
    return version


@dataclass
class VersionRef:
    root: Path
    name: str
    version: str

    @property
    def path(self) -> Path:
        return self.root / self.name / self.version

    @property
    def report_html(self) -> Path:
        return self.path / REPORT_HTML_FILE

    def read_report(self) -> dict[str, Any]:
        return read_report(self.path)

    def read_manifest(self) -> dict[str, Any]:
        return read_manifest(self.path)

    def load_data(self) -> Any:
        """The splits, a `datasets.DatasetDict` (imported here: it is slow to import)."""
        import datasets

        try:
            return datasets.load_from_disk(str(self.path))
        except (OSError, ValueError, KeyError) as exc:  # ArrowInvalid is a ValueError
            raise DataprepError(f"{self.path}: damaged version, its splits do not load "
                                f"({type(exc).__name__}: {str(exc)[:100]})") from None


def find_version(spec: str, store: str | Path | None = None) -> VersionRef:
    """`resolve` in the store `store_root` picks, reading nothing of the version: for commands
    that need only its report or one split (a bare NAME means NAME@latest here)."""
    return resolve(store_root(store), spec)


def resolve(root: Path, ref: str) -> VersionRef:
    """Resolve `name@latest`, `name@<id>`, `name@<unique prefix>` or a bare `name` (= latest)."""
    name, wanted = parse_spec(ref)
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
        return VersionRef(root, name, read_latest(root, name))
    matches = [m["version"] for m in list_versions(root, name) if m["version"].startswith(wanted)]
    if not matches:
        raise DataprepError(f"{name}@{wanted}: no such version in {root}")
    if len(matches) > 1:
        raise DataprepError(f"{name}@{wanted}: ambiguous prefix, matches {', '.join(matches)}")
    return VersionRef(root, name, matches[0])


def check_outside_store(root: Path, path: Path) -> Path:
    """`path`, refused when it lies inside the store (versions are immutable: an output file
    there could overwrite a manifest) or its folder does not exist. Compared resolved, so
    neither `..` nor a symbolic link gets round it."""
    target = path.resolve()
    if target.is_relative_to(root.resolve()):
        raise DataprepError(f"{path}: inside the store {root}, whose versions are never "
                            "rewritten; write it elsewhere")
    if not target.parent.is_dir():
        raise DataprepError(f"{path}: folder {path.parent} does not exist")
    if target.is_dir():
        raise DataprepError(f"{path}: is a folder; give a file name")
    return path


def publish(tmp: Path, root: Path, name: str, version: str) -> bool:
    """Rename a finished version into place and point `latest` at it.

    Returns False (and discards `tmp`) when another run published the same version first.
    """
    final = root / name / version
    (tmp / OWNER_FILE).unlink(missing_ok=True)
    try:
        os.rename(tmp, final)
    except OSError:
        if is_complete(final):
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        raise
    set_latest(root, name, version)
    return True


def set_latest(root: Path, name: str, version: str) -> None:
    """Write the `latest` pointer atomically (write a temporary file, then rename)."""
    pointer = root / name / LATEST_FILE
    tmp = pointer.with_name(f".latest-{os.getpid()}")
    tmp.write_text(version + "\n", encoding="utf-8")
    os.replace(tmp, pointer)


def is_complete(path: Path) -> bool:
    """A version directory is complete once its manifest is in place (written last)."""
    return (path / MANIFEST_FILE).is_file()


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object of the store; a missing, unreadable or damaged file is one line naming it."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataprepError(f"{path}: missing") from None
    except OSError as exc:
        raise DataprepError(f"{path}: cannot read ({exc.strerror})") from None
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataprepError(f"{path}: damaged, not JSON ({str(exc)[:80]})") from None
    if not isinstance(data, dict):
        raise DataprepError(f"{path}: damaged, not a JSON object")
    return data


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def read_report(path: Path) -> dict[str, Any]:
    """The report of the version at `path`."""
    return _read_json(path / REPORT_FILE)


def write_version_files(tmp: Path, manifest: dict[str, Any], report: dict[str, Any],
                        html: str) -> None:
    """The report, its page and the manifest into a version being built; the manifest last,
    because its presence is what marks a version complete."""
    write_json(tmp / REPORT_FILE, report)
    (tmp / REPORT_HTML_FILE).write_text(html, encoding="utf-8")
    write_json(tmp / MANIFEST_FILE, manifest)


@dataclass
class Version:
    """One version read back from the store: what `train` and the CLI need of it."""

    ref: VersionRef
    data: Any                   # datasets.DatasetDict with train / validation / test
    manifest: dict[str, Any]
    report: dict[str, Any]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def spec(self) -> str:
        return f"{self.ref.name}@{self.ref.version}"

    @property
    def path(self) -> Path:
        return self.ref.path

    @property
    def report_html(self) -> Path:
        return self.ref.report_html

    @property
    def counts(self) -> dict[str, Any]:
        """The headline counts: input, rejected, filtered, duplicates, augmented, per split (and,
        for a child version, the rows per split inherited from its parent)."""
        c = self.report["counts"]
        inherited = {"inherited": c["inherited"]} if "inherited" in c else {}
        return {**inherited, "input": c["input"], "rejected": c["rejected"],
                "filtered": sum(c["filtered_by_reason"].values()),
                "duplicates_exact": c["duplicates"]["exact"],
                "duplicates_near": c["duplicates"]["near"],
                "augmented": sum(c["augmented"].values()),
                "splits": {s: c["output"][s] for s in SPLITS}}

    def labels(self) -> list[str]:
        """The label names of a labelled version, sorted (the class index order); [] if none."""
        if "label" not in self.data["train"].column_names:
            return []
        names: set[str] = set()
        for split in SPLITS:
            names.update(self.data[split].unique("label"))
        return sorted(names)

    def prepare(self, inputs: list[str | Path]) -> Any:
        """Raw input files validated, cleaned and formatted with this version's recipe, as
        `dataprep.prepare.Prepared` (rows, rejects, removals): what a model trained on this
        version predicts on."""
        from .prepare import prepare_inputs  # the pipeline's modules import this one

        return prepare_inputs(inputs, self.manifest, self.labels())

    def render_prompts(self, conversations: list[list[dict[str, str]]]) -> list[str]:
        """Each conversation (ending before the answer) rendered as this version's `prompt`
        column renders it (its prompt/completion template, generation prompt included)."""
        from .prepare import render_prompts

        return render_prompts(conversations, self.manifest)


def open_version(spec: str, store: str | Path | None = None) -> Version:
    """A version by `name@latest`, `name@<id>` or `name@<unique id prefix>`, from `store`
    (else $DATAPREP_STORE, else ./store): its splits, manifest and report."""
    if "@" not in spec:
        raise DataprepError(f"{spec!r}: give a dataset version as NAME@VERSION (or NAME@latest)")
    ref = find_version(spec, store)
    return Version(ref, ref.load_data(), ref.read_manifest(), ref.read_report())

"""The parent of a child version (`dataprep run NEW --from NAME@VERSION`): found, checked and
read before anything is written, and what the child inherits from it.

The new rows go through the parent's recorded recipe, so that old and new rows are cleaned,
filtered and deduplicated alike; a `--recipe` that says otherwise is refused (one line naming
the first key that differs). The new inputs must hold the parent's record kind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .custom import fingerprint
from .errors import DataprepError
from .lineage import Lineage, read_lineage
from .recipe import load_recipe, resolve_recipe
from .report import RunCounts
from .settings import Recipe
from .sources import kind_and_blocks, source_label
from .store import SPLITS, VersionRef, read_manifest, read_report, resolve

#: Recipe keys that may differ between a parent's recorded recipe and a child's: what the run
#: adds about its own files (excludes, custom stages' code hashes, the evaluation sources'
#: hashes), and the kind (the parent's manifest names it; a recipe's `kind: null` means
#: "detect").
NOT_COMPARED = ("custom_stage_sources", "exclude_sources", "decontaminate_sources", "exclude",
                "kind")


@dataclass
class Parent:
    ref: VersionRef
    manifest: dict[str, Any]
    lineage: Lineage
    recipe: Recipe          # the recipe the new rows go through

    @property
    def version(self) -> str:
        return self.ref.version

    @property
    def spec(self) -> str:
        return f"{self.ref.name}@{self.ref.version}"


def open_parent(root: Path, spec: str, recipe_path: str | Path | None, inputs: list[Path]
                ) -> Parent:
    """The `--from` version, its lineage and the recipe for the new rows; every check (the
    version exists and can be a parent, the recipe is its own, the inputs hold its kind) made
    here, before the run writes anything."""
    ref = resolve(root, spec)
    manifest = read_manifest(ref.path)
    lineage = read_lineage(ref, manifest["kind"])
    recipe = _child_recipe(manifest, recipe_path, f"{ref.name}@{ref.version}")
    _check_kinds(inputs, recipe, manifest["kind"], f"{ref.name}@{ref.version}")
    return Parent(ref, manifest, lineage, recipe)


def _comparable(resolved: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resolved.items() if k not in NOT_COMPARED}


def _child_recipe(manifest: dict[str, Any], recipe_path: str | Path | None, spec: str
                  ) -> Recipe:
    """The parent's recipe (its kind fixed; its exclude files are the parent's business and
    were applied to its rows), or the given one when it says the same."""
    recorded = manifest["recipe"]
    kind = manifest["kind"]
    if recipe_path is None:
        return resolve_recipe({**_comparable(recorded), "kind": kind},
                              f"the recipe of {spec}")
    given = load_recipe(recipe_path)
    if given.kind not in (None, kind):
        raise DataprepError(f"{recipe_path}: kind {given.kind!r}, but {spec} holds {kind} "
                            "records; a child version has its parent's kind")
    ours, theirs = _comparable(given.resolved()), _comparable(recorded)
    if ours != theirs:
        key = _first_difference(ours, theirs)
        raise DataprepError(f"{recipe_path}: differs from the recipe {spec} was made with (at "
                            f"{key}); a child version's new rows go through its parent's recipe,"
                            " so leave out --recipe (or make a fresh version without --from)")
    if given.custom_stages and "custom_stage_sources" in recorded and \
            fingerprint(given.custom_stages, given.base_dir) != recorded["custom_stage_sources"]:
        raise DataprepError(f"{recipe_path}: a custom stage's code differs from what {spec} was "
                            "made with; a child's new rows go through its parent's stages")
    return given.model_copy(update={"kind": kind})


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    """The dotted key path of the first place two resolved recipes differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return path or "(top level)"


def _check_kinds(inputs: list[Path], recipe: Recipe, kind: str, spec: str) -> None:
    """Each new input's kind, detected from its first rows as a fresh run would, must be the
    parent's: otherwise every row would be rejected, where the user meant another dataset."""
    detecting = recipe.model_copy(update={"kind": None})
    for path in inputs:
        found, _ = kind_and_blocks(path, detecting)
        if found is not None and found != kind:
            raise DataprepError(f"{source_label(path)}: holds {found} records, but {spec} holds "
                                f"{kind} records; a child version has its parent's kind")


def inherit(run: RunCounts, parent: Parent) -> None:
    """Count the parent's rows into the child's report: per split rows, labels and languages
    (its splits are the child's first rows), kept apart as `inherited` for the accounting."""
    report = read_report(parent.ref.path)
    run.inherited = Counter({s: parent.manifest["splits"][s] for s in SPLITS})
    for split in SPLITS:
        run.output[split] += run.inherited[split]
        run.labels[split].update(report["splits"][split]["labels"])
        run.output_langs[split].update(report["languages"]["output"][split])

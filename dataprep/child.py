"""The parent of a child version (`dataprep run NEW --from NAME@VERSION`): found, checked and
read before anything is written, and what the child inherits from it.

The new rows go through the parent's recorded recipe, so that old and new rows are cleaned,
filtered and deduplicated alike; a `--recipe` that says otherwise is refused (one line naming
the first key that differs), unless `--recipe-change` is given: then the new rows go through the
new recipe and the parent's rows through its filters again (`refilter.py`). The new inputs must
hold the parent's record kind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .custom import fingerprint
from .decontam import Decontamination
from .errors import DataprepError
from .kinds import get_kind
from .lineage import Lineage, read_lineage
from .parent_splits import link_parent_splits
from .recipe import load_recipe, resolve_recipe
from .refilter import Refiltered, Remove, place_without, refilter
from .report import RunCounts
from .settings import Recipe
from .sources import kind_and_blocks, source_label
from .stage import Stage
from .store import SPLITS, VersionRef, read_manifest, read_report, resolve

#: Recipe keys that may differ between a parent's recorded recipe and a child's: what the run
#: adds about its own files (excludes, custom stages' code hashes, the evaluation sources'
#: hashes), and the kind (the parent's manifest names it; a recipe's `kind: null` means
#: "detect").
NOT_COMPARED = ("custom_stage_sources", "exclude_sources", "decontaminate_sources", "exclude",
                "kind")


#: Recipe keys `--recipe-change` cannot change: they shaped the parent's rows as stored
#: (cleaning and the formatted columns) or the keys its lineage keeps (signatures, shingles,
#: groups), so a change would have to rewrite the rows a child must not touch.
FIXED_IN_A_CHILD = ("clean", "format", "dedup.num_perm", "dedup.ngram", "split.group_by")


@dataclass
class Parent:
    ref: VersionRef
    manifest: dict[str, Any]
    lineage: Lineage
    recipe: Recipe          # the recipe the new rows go through
    changed: list[str] = field(default_factory=list)  # recipe keys --recipe-change changed

    @property
    def version(self) -> str:
        return self.ref.version

    @property
    def spec(self) -> str:
        return f"{self.ref.name}@{self.ref.version}"


def open_parent(root: Path, spec: str, recipe_path: str | Path | None, inputs: list[Path],
                recipe_change: bool = False) -> Parent:
    """The `--from` version, its lineage and the recipe for the new rows; every check (the
    version exists and can be a parent, the recipe is its own or `recipe_change` allows the
    change, the inputs hold its kind) made here, before the run writes anything."""
    if recipe_change and recipe_path is None:
        raise DataprepError("--recipe-change needs --recipe (the recipe the child changes to)")
    ref = resolve(root, spec)
    manifest = read_manifest(ref.path)
    lineage = read_lineage(ref, manifest["kind"])
    name = f"{ref.name}@{ref.version}"
    recipe, changed = _child_recipe(manifest, recipe_path, name, recipe_change)
    _check_kinds(inputs, recipe, manifest["kind"], name)
    return Parent(ref, manifest, lineage, recipe, changed)


def _comparable(resolved: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resolved.items() if k not in NOT_COMPARED}


def _child_recipe(manifest: dict[str, Any], recipe_path: str | Path | None, spec: str,
                  recipe_change: bool) -> tuple[Recipe, list[str]]:
    """The recipe of the new rows and the keys in which it differs from the parent's: the
    parent's own (its kind fixed, relative paths looked up from the folder its recipe was in;
    its exclude files were the parent's business), or the given one when it says the same, or
    when `recipe_change` allows what it changes."""
    recorded, kind = manifest["recipe"], manifest["kind"]
    if recipe_path is None:
        base = Path(manifest["recipe_dir"]) if manifest.get("recipe_dir") else None
        recipe = resolve_recipe({**_comparable(recorded), "kind": kind},
                                f"the recipe of {spec}", base_dir=base)
        if _stage_code_changed(recipe, recorded):
            raise DataprepError(f"the recipe of {spec}: a custom stage's code differs from what "
                                f"{spec} was made with; give --recipe with --recipe-change to "
                                "re-filter its rows with the new code")
        return recipe, []
    given = load_recipe(recipe_path)
    if given.kind not in (None, kind):
        raise DataprepError(f"{recipe_path}: kind {given.kind!r}, but {spec} holds {kind} "
                            "records; a child version has its parent's kind")
    changed = differences(_comparable(given.resolved()), _comparable(recorded))
    if _stage_code_changed(given, recorded):
        changed.append(STAGE_CODE)
    if changed and not recipe_change:
        at = ("a custom stage's code differs from what it was made with" if changed[0] ==
              STAGE_CODE else f"differs from the recipe it was made with (at {changed[0]})")
        raise DataprepError(f"{recipe_path}: {at}; a child version's new rows go through "
                            f"{spec}'s recipe, so leave out --recipe, or give --recipe-change to "
                            "re-filter the parent's rows with the new one")
    fixed = [key for key in changed if any(key == f or key.startswith(f + ".")
                                           for f in FIXED_IN_A_CHILD)]
    if fixed:
        raise DataprepError(f"{recipe_path}: changes {fixed[0]}, which shaped the rows {spec} "
                            "holds (a child never rewrites its parent's rows); make a fresh "
                            "version without --from")
    return given.model_copy(update={"kind": kind}), changed


#: The name `changed` gives a change of a custom stage's code (not a recipe key).
STAGE_CODE = "custom_stages (code)"


def _stage_code_changed(recipe: Recipe, recorded: dict[str, Any]) -> bool:
    """Whether the custom stages' code is not what the parent was made with."""
    return bool(recipe.custom_stages) and "custom_stage_sources" in recorded and \
        fingerprint(recipe.custom_stages, recipe.base_dir) != recorded["custom_stage_sources"]


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """The dotted key paths at which two resolved recipes differ, in key order."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [found for key in sorted(set(a) | set(b)) if a.get(key) != b.get(key)
                for found in differences(a.get(key), b.get(key),
                                         f"{path}.{key}" if path else key)]
    return [path or "(top level)"]


def _check_kinds(inputs: list[Path], recipe: Recipe, kind: str, spec: str) -> None:
    """Each new input's kind, detected from its first rows as a fresh run would, must be the
    parent's: otherwise every row would be rejected, where the user meant another dataset."""
    detecting = recipe.model_copy(update={"kind": None})
    for path in inputs:
        found, _ = kind_and_blocks(path, detecting)
        if found is not None and found != kind:
            raise DataprepError(f"{source_label(path)}: holds {found} records, but {spec} holds "
                                f"{kind} records; a child version has its parent's kind")


def inherit(run: RunCounts, parent: Parent, refiltered: Refiltered | None = None) -> None:
    """Count the parent's rows into the child's report: per split rows, labels and languages
    (its splits are the child's first rows), kept apart as `inherited` for the accounting;
    less the rows re-filtering took off the parent's split files (`--recipe-change`)."""
    report = read_report(parent.ref.path)
    run.inherited = Counter({s: parent.manifest["splits"][s] for s in SPLITS})
    for split in SPLITS:
        labels = Counter(report["splits"][split]["labels"])
        langs = Counter(report["languages"]["output"][split])
        if refiltered is not None:
            run.inherited[split] -= refiltered.split_rows[split]
            labels.subtract(refiltered.labels[split])
            langs.subtract(refiltered.langs[split])
        run.output[split] += run.inherited[split]
        run.labels[split].update(+labels)
        run.output_langs[split].update(+langs)


def refilter_parent(origin: Parent | None, stages: list[Stage],
                    decontam: Decontamination | None, remove: Remove) -> Refiltered | None:
    """Under `--recipe-change`, the parent's rows through the new recipe's dropping `stages`
    and `decontam`: the survivors become the parent the plan sees (`refilter.py`). `remove`
    is `RunFiles.remove`."""
    if origin is None or not origin.changed:
        return None
    refiltered = refilter(origin.lineage, stages, decontam, remove)
    origin.lineage = refiltered.lineage
    return refiltered


def place_parent_splits(tmp: Path, origin: Parent, refiltered: Refiltered | None,
                        remove: Remove, run: RunCounts, kind: str) -> None:
    """The parent's split files into the child's splits (linked, or written again without
    the rows re-filtering removed), and the parent's rows into the child's counts."""
    place = None
    if refiltered is not None:
        place = place_without(refiltered, remove, get_kind(kind).label_column)
    link_parent_splits(tmp, origin.ref.path, place)
    inherit(run, origin, refiltered)
    if refiltered is not None:
        run.recipe_change = refiltered.report(origin.changed)


def recipe_dir(recipe: Recipe, recipe_path: str | Path | None, origin: Parent | None
                ) -> str | None:
    """The folder relative paths of the recipe were looked up from (a child without a recipe
    keeps its parent's), so a child made later from another folder finds them."""
    if recipe_path is not None:
        return str(recipe.base_dir)
    return origin.manifest.get("recipe_dir") if origin else None

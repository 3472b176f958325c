"""The recipe: one YAML file, validated against `schemas/recipe.schema.json`, defaults filled in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import DataprepError
from .schemas import fill_defaults, load_schema, validator


def resolve_recipe(raw: dict[str, Any] | None, origin: str = "recipe") -> dict[str, Any]:
    """Validate a recipe mapping and return it with every default filled in."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise DataprepError(f"{origin}: a recipe must be a mapping of keys to values")
    errors = sorted(validator("recipe").iter_errors(raw), key=lambda e: list(e.absolute_path))
    if errors:
        raise DataprepError(f"{origin}: {describe_recipe_error(errors[0])}")
    return fill_defaults(raw, load_schema("recipe"))


def load_recipe(path: str | Path | None) -> dict[str, Any]:
    """Read a recipe file (or none at all) into a resolved recipe."""
    if path is None:
        return resolve_recipe({})
    path = Path(path)
    if not path.is_file():
        raise DataprepError(f"{path}: recipe file not found")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise DataprepError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
    return resolve_recipe(raw, origin=str(path))


def describe_recipe_error(error) -> str:
    """One line for a recipe schema error, naming the key that is wrong."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = f"{where}." if error.absolute_path else ""
        return f"unknown key {prefix}{unknown[0]} (allowed: {', '.join(allowed)})"
    if "propertyNames" in error.schema_path:
        allowed = ", ".join(error.validator_value)
        return f"unknown field name {error.instance!r} in {where} (allowed: {allowed})"
    return f"{where}: {error.message}"

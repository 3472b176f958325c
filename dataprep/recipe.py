"""Load a recipe: YAML in, typed `settings.Recipe` out, or one line naming what is wrong.

An unknown key or a wrong type names the key path, the value and, for a near-miss, the key that
was meant (`dedup.near_treshold: unknown key (did you mean 'near_threshold'?)`). The JSON Schema
`schemas/recipe.schema.json` is generated from the models: `python -m dataprep.recipe >
schemas/recipe.schema.json` writes it, and a test fails when the file is out of date.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from common.yaml_files import read_settings

from .errors import DataprepError
from .settings import Recipe

SCHEMA_ID = "https://schemas.dataprep.invalid/recipe.schema.json"


def resolve_recipe(raw: dict[str, Any] | None, origin: str = "recipe",
                   base_dir: Path | None = None) -> Recipe:
    """Validate a recipe mapping into typed settings, every default filled in. `base_dir` is
    where a custom stage's `file.py:function` is looked up (the recipe file's folder)."""
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise DataprepError(f"{origin}: a recipe must be a mapping of keys to values")
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        raise DataprepError(f"{origin}: {describe_error(exc.errors()[0])}") from None
    recipe._base_dir = base_dir or Path.cwd()
    return recipe


def load_recipe(path: str | Path | None) -> Recipe:
    """Read a recipe file (or none at all) into typed settings."""
    if path is None:
        return resolve_recipe({})
    path = Path(path)
    raw = read_settings(path, "recipe file", DataprepError)
    return resolve_recipe(raw, origin=str(path), base_dir=path.resolve().parent)


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The settings model holding the key at `loc` (for the near-miss suggestion)."""
    model: Any = Recipe
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))[0]
        model = inner if isinstance(inner, type) and issubclass(inner, BaseModel) else annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
    return model


_TYPE_WORDS = {"bool_type": "true or false", "int_type": "an integer", "float_type": "a number",
               "string_type": "a string", "list_type": "a list", "dict_type": "a mapping",
               "model_type": "a mapping"}


class _Short:
    """A value as its repr cut to a readable length, so that a megabyte-long list given for a
    number makes a one-line error of a line's length."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        text = repr(self.value)
        return text if len(text) <= 80 else text[:77] + "..."


def describe_error(error: dict[str, Any]) -> str:
    """One line for the first validation error: key path, value, and what was expected."""
    loc = tuple(p for p in error["loc"] if not str(p).startswith("function-after"))
    where = ".".join(str(p) for p in loc)[:120] or "(top level)"
    value = _Short(error.get("input"))
    if error["type"] == "extra_forbidden":
        model = _model_at(loc)
        allowed = sorted(model.model_fields) if model else []
        near = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else f" (allowed: {', '.join(allowed)})"
        return f"unknown key {where} = {value!r}{hint}"
    if error["type"] in _TYPE_WORDS:
        return f"{where}: {value!r} is not {_TYPE_WORDS[error['type']]}"
    if error["type"] == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"{where}: {value!r} is not one of {expected}"
    if error["type"] == "missing":
        return f"{where}: required key is missing"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "value_error":
        return f"{where}: {message}"
    return f"{where}: {value!r}: {message}"


def recipe_json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a recipe, generated from the settings models."""
    schema = Recipe.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            "description": "One YAML file that says how raw logs become a dataset version. Every "
            "key is optional; the defaults are what a run uses when the key is absent, and the "
            "resolved recipe is stored in the manifest. Generated from dataprep/settings.py.",
            **schema}


if __name__ == "__main__":
    print(json.dumps(recipe_json_schema(), indent=2, ensure_ascii=False))

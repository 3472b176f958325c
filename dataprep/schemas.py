"""Access to the JSON Schema documents in `schemas/`, the single source of the data contracts.

Validation, kind detection, field aliases and recipe defaults are all read from these documents,
so the code never keeps a second copy of the rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import fastjsonschema
from jsonschema import Draft202012Validator
from referencing import Registry, Resource


def schema_dir() -> Path:
    """The installed copy (wheel) or the source tree's `schemas/` (editable install)."""
    packaged = Path(__file__).parent / "_schemas"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load `schemas/<name>.schema.json`."""
    return json.loads((schema_dir() / f"{name}.schema.json").read_text(encoding="utf-8"))


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(schema_dir().glob("*.schema.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        resources.append((doc["$id"], Resource.from_contents(doc)))
    return Registry().with_resources(resources)


@cache
def validator(name: str) -> Draft202012Validator:
    """A compiled validator for one schema, with cross-schema `$ref`s resolved locally."""
    schema = load_schema(name)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, registry=_registry())


@cache
def fast_check(name: str) -> Callable[[Any], bool]:
    """A compiled yes/no check of one schema for the per-row hot path.

    `jsonschema` interprets the schema on every call (~250 us for a chat row); `fastjsonschema`
    compiles it to Python once (~15x faster). It knows draft-07, whose meaning is the same as
    2020-12 for every keyword the record schemas use, so the dialect is swapped for compilation
    only. Rows it refuses get their reason from `validator()`, and a test checks both agree.
    """
    schema = {**load_schema(name), "$schema": "http://json-schema.org/draft-07/schema#"}
    compiled = fastjsonschema.compile(schema)

    def is_valid(instance: Any) -> bool:
        try:
            compiled(instance)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return is_valid

"""The recipe: validated by its schema, defaults read from the schema, one-line errors."""

from __future__ import annotations

import pytest

from dataprep.errors import DataprepError
from dataprep.recipe import load_recipe, resolve_recipe
from dataprep.schemas import load_schema, validator


def test_defaults_come_from_the_schema_and_validate():
    recipe = resolve_recipe({})
    validator("recipe").validate(recipe)
    schema = load_schema("recipe")
    assert set(recipe) == set(schema["properties"])
    clean = schema["properties"]["clean"]["properties"]
    assert set(recipe["clean"]) == set(clean)
    assert recipe["clean"]["pii"] == {"email": True, "phone": True, "ip": True, "card": True}
    assert recipe["clean"]["lowercase"] is False and recipe["format"]["template"] == "alpaca"


def test_given_values_win_and_nested_defaults_fill():
    recipe = resolve_recipe({"clean": {"pii": {"phone": False}}, "kind": "chat"})
    assert recipe["kind"] == "chat"
    assert recipe["clean"]["pii"] == {"email": True, "phone": False, "ip": True, "card": True}
    assert recipe["clean"]["whitespace"] is True


@pytest.mark.parametrize(("text", "message"), [
    ("bogus: 1\n", "unknown key bogus"),
    ("clean:\n  lowercse: true\n", "unknown key clean.lowercse"),
    ("fields:\n  txt: review\n", "unknown field name 'txt'"),
    ("kind: poem\n", "kind: 'poem' is not one of"),
    ("format:\n  classification_prompt: no placeholder\n", "format.classification_prompt"),
    ("clean: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "a recipe must be a mapping"),
])
def test_bad_recipes_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(DataprepError) as err:
        load_recipe(path)
    assert str(path) in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_missing_recipe_file(tmp_path):
    with pytest.raises(DataprepError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_empty_recipe_file_is_all_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_recipe(path) == resolve_recipe({})

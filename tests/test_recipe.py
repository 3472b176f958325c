"""The recipe: typed settings with their defaults, a schema generated from them, one-line errors
naming the key path, the value and the key meant."""

from __future__ import annotations

import json

import pytest

from dataprep.errors import DataprepError
from dataprep.recipe import load_recipe, recipe_json_schema, resolve_recipe
from dataprep.schemas import load_schema, validator
from dataprep.settings import Recipe


def test_the_committed_schema_is_the_one_the_models_generate():
    # run `python -m dataprep.recipe > schemas/recipe.schema.json` after changing settings.py
    assert load_schema("recipe") == json.loads(json.dumps(recipe_json_schema()))


def test_defaults_fill_every_key_and_validate_against_the_schema():
    recipe = resolve_recipe({}).resolved()
    validator("recipe").validate(recipe)
    assert set(recipe) == set(Recipe.model_fields)
    assert recipe["clean"]["pii"] == {"email": True, "phone": True, "ip": True, "card": True}
    assert recipe["clean"]["lowercase"] is False and recipe["format"]["template"] == "alpaca"
    assert recipe["dedup"] == {"exact": True, "near": True, "near_threshold": 0.8,
                               "num_perm": 128, "ngram": 5}


def test_given_values_win_and_nested_defaults_fill():
    recipe = resolve_recipe({"clean": {"pii": {"phone": False}}, "kind": "chat"})
    assert recipe.kind == "chat"
    assert recipe.clean.pii.model_dump() == {"email": True, "phone": False, "ip": True,
                                             "card": True}
    assert recipe.clean.whitespace is True


@pytest.mark.parametrize(("text", "message"), [
    ("bogus: 1\n", "unknown key bogus"),
    ("clean:\n  lowercse: true\n", "unknown key clean.lowercse = True (did you mean 'lowercase'?)"),
    ("dedup:\n  near_treshold: 0.5\n", "did you mean 'near_threshold'?"),
    ("fields:\n  txt: review\n", "unknown field name 'txt'"),
    ("kind: poem\n", "kind: 'poem' is not one of"),
    ("filters:\n  min_chars: ten\n", "filters.min_chars: 'ten' is not an integer"),
    ("dedup:\n  near: 'yes'\n", "dedup.near: 'yes' is not true or false"),
    ("augment:\n  - {kind: synonym, backend: llm}\n", "augment.0: backend 'llm' does not do"),
    ("augment:\n  - {kind: backtranslation, backend: marian}\n", "needs forward_model"),
    ("custom_stages:\n  - {name: x, function: 'a.py:f', after: dedup}\n",
     "custom_stages.0.after: 'dedup' is not one of"),
    ("format:\n  classification_prompt: no placeholder\n", "format.classification_prompt"),
    ("clean: [1, 2\n", "not valid YAML"),
    ("- a\n- b\n", "a recipe must be a mapping"),
])
def test_bad_recipes_name_the_file_and_key(tmp_path, text, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    with pytest.raises(DataprepError) as err:
        load_recipe(path)
    assert str(path) in str(err.value) and message in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_every_augment_pair_the_recipe_accepts_has_a_backend_and_no_other():
    from dataprep.augment.backends import BACKENDS
    from dataprep.settings import AUGMENT_BACKENDS

    accepted = {(kind, b) for kind, backends in AUGMENT_BACKENDS.items() for b in backends}
    assert accepted == set(BACKENDS)


def test_filters_is_the_filter_stage(tmp_path):
    recipe = resolve_recipe({"custom_stages": [{"name": "x", "function": "a.py:f",
                                                "after": "filters"}]})
    assert recipe.custom_stages[0].after == "filter"


def test_missing_recipe_file(tmp_path):
    with pytest.raises(DataprepError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")


def test_empty_recipe_file_is_all_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_recipe(path).resolved() == resolve_recipe({}).resolved()


def _nested_aliases(levels: int) -> str:
    """The "billion laughs": each level a list of nine aliases of the one before (9**levels)."""
    lines = ["kind: chat", "fields:", "  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"  l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels + 1)]
    return "\n".join(lines) + "\n"


def test_aliases_are_refused_at_once_naming_the_line(tmp_path):
    import time

    path = tmp_path / "bomb.yaml"
    path.write_text(_nested_aliases(12))  # 9**12 strings if it were expanded
    started = time.perf_counter()
    with pytest.raises(DataprepError, match=r"bomb\.yaml:4: .*alias \*l0 not allowed"):
        load_recipe(path)
    assert time.perf_counter() - started < 2


def test_anchors_without_aliases_and_a_bom_are_fine(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_bytes("\ufeffkind: &k chat\nseed: 7\n".encode())
    recipe = load_recipe(path)
    assert recipe.kind == "chat" and recipe.seed == 7


@pytest.mark.parametrize(("data", "message"), [
    (b"kind: chat\n# caf\xe9\n", "recipe.yaml:2: not UTF-8 (byte 0xe9)"),
    (b"seed: -1\n", "seed: -1: Input should be greater than or equal to 0"),
    (b"split:\n  ratios: [0, 0, 0]\n", "split.ratios: the ratios must not all be 0"),
    (b"[" * 100_000, "nested too deeply"),
    (b"seed: 1\n" + b"#" * (2 << 20), "over 1 MB, too large for a recipe file"),
    (b"fields: [" + b"1, " * 50_000 + b"1]\n", "fields: [1, 1, 1"),
])
def test_recipe_files_that_are_no_recipe_are_one_short_line(tmp_path, data, message):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(data)
    with pytest.raises(DataprepError) as err:
        load_recipe(path)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text and len(text) < 300, text


def test_a_folder_is_not_a_recipe(tmp_path):
    with pytest.raises(DataprepError, match="is a folder, not a recipe file"):
        load_recipe(tmp_path)


def test_every_settings_file_has_the_same_reader(tmp_path):
    """A recipe, a train config and a search space are all read by common/yaml_files.py: a
    search space with an alias is refused naming its line, the same as a recipe."""
    from train.errors import TrainError
    from train.search_space import load_space

    path = tmp_path / "space.yaml"
    path.write_text("lr: &r {low: 1.0e-5, high: 1.0e-3}\nwarmup_ratio: *r\n")
    with pytest.raises(TrainError, match=r"space\.yaml:2: not valid YAML \(alias \*r not allowed "
                                         r"in a search space file"):
        load_space(path, None, set())

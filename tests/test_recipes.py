"""Recipe files, precedence, and the checks on every value."""

from __future__ import annotations

import pytest

from beanstrain.errors import UsageError
from beanstrain.recipes import Recipe, list_recipes, load_recipe, recipe_files, resolve_recipe


@pytest.mark.parametrize("name", sorted(recipe_files()))
def test_every_shipped_recipe_is_valid(name):
    recipe = resolve_recipe(name)
    assert recipe.name == name and recipe.dataset and recipe.model and recipe.description


def test_every_recipe_value_has_a_comment():
    for name, source in recipe_files().items():
        for line in source.read_text().splitlines():
            fixed = ("description", "course_result", "dataset", "model")
            if "=" in line and not line.startswith("#") and not line.startswith(fixed):
                assert "#" in line, f"{name}: '{line}' needs a comment saying why"


def test_course_experiments_have_recipes():
    recipes = list_recipes()
    for name in ("beans0-neuron", "beans3-hidden2", "beans7-neuron", "beans4-hidden2", "spiral-deep8",
                 "circle-deep8", "gender-softmax2"):
        assert name in recipes
    assert any(recipe.dataset in ("beans1", "beans2") for recipe in recipes.values())


def test_course_settings_of_beans4():
    recipe = resolve_recipe(None, {"dataset": "beans4", "model": "hidden2"})
    assert (recipe.name, recipe.epochs, recipe.batch_size, recipe.optimizer, recipe.learning_rate, recipe.loss) == (
        "beans4-hidden2", 5000, 10, "sgd", 0.05, "mse")


def test_flags_override_recipe_and_recipe_overrides_defaults():
    recipe = resolve_recipe("beans4-hidden2", {"epochs": 200, "seed": 7, "optimizer": None})
    assert recipe.epochs == 200 and recipe.seed == 7 and recipe.optimizer == "sgd"
    assert Recipe().optimizer == "adam"


def test_pair_without_recipe_gets_defaults():
    recipe = resolve_recipe(None, {"dataset": "xor", "model": "deep8"})
    assert recipe.name == "xor-deep8" and recipe.optimizer == "adam" and recipe.loss is None


def test_changing_the_pair_renames_the_run():
    recipe = resolve_recipe("beans4-hidden2", {"dataset": "beans7"})
    assert recipe.name == "beans7-hidden2" and recipe.expected_accuracy is None


def write(tmp_path, text):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    return str(path)


def test_recipe_file_by_path(tmp_path):
    recipe = load_recipe(write(tmp_path, 'dataset = "spiral"\nmodel = "deep8"\nepochs = 3\n'))
    assert (recipe.name, recipe.epochs) == ("mine", 3)


@pytest.mark.parametrize(
    "text, message",
    [
        ('dataset = "beans4"\nmodel = "hidden2"\nepoch = 5\n', "unknown key 'epoch'; did you mean 'epochs'?"),
        ('dataset = "beans4"\nmodel = "hidden2"\nlearning_rat = 0.1\n', "did you mean 'learning_rate'?"),
        ('dataset = "beans4"\nmodel = "hidden2"\nepochs = "ten"\n', "'epochs' must be an integer"),
        ('dataset = "beans4"\nmodel = "hidden2"\nlearning_rate = "fast"\n', "'learning_rate' must be a number"),
        ('dataset = "beans4"\nmodel = \n', "is not valid TOML"),
        ('dataset = "beans4"\n', "must set both 'dataset' and 'model'"),
    ],
)
def test_bad_recipe_files(tmp_path, text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("?", r"\?")):
        load_recipe(write(tmp_path, text))
    assert str(tmp_path / "mine.toml") in str(pytest.raises(UsageError, load_recipe, str(tmp_path / "mine.toml")).value)


def test_recipe_file_values_are_checked_like_flags(tmp_path):
    with pytest.raises(UsageError, match="batch size must be a positive integer"):
        resolve_recipe(write(tmp_path, 'dataset = "beans4"\nmodel = "hidden2"\nbatch_size = -1\n'))


@pytest.mark.parametrize("dataset, model, expected", [
    ("xor", "deep8", (1000, 10, "adam", 0.01, 0.0)),
    ("fashion-mnist", "mlp", (5, 128, "adam", None, 0.1)),
])
def test_pair_defaults_by_kind_of_dataset(dataset, model, expected):
    """The defaults for a pair with no recipe (docs/fit-and-eval.md): Recipe's own, changed by the kind of dataset."""
    recipe = resolve_recipe(None, {"dataset": dataset, "model": model})
    assert (recipe.epochs, recipe.batch_size, recipe.optimizer, recipe.learning_rate,
            recipe.validation_split) == expected

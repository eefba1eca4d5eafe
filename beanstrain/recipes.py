"""Recipes: a frozen dataclass of settings, the TOML files in `configs/`, and precedence.

Settings resolve as defaults < recipe file < command-line flags:

    >>> recipe = resolve_recipe("beans4-hidden2", overrides={"epochs": 200, "seed": 7})
    >>> recipe.epochs, recipe.batch_size, recipe.optimizer
    (200, 10, 'sgd')

`beanstrain fit --dataset beans4 --model hidden2` finds the recipe for that
pair when one exists; a pair with no recipe gets `pair_defaults`.  A recipe
file's unknown key is refused with the closest valid key.  Values are only
ever read as TOML data, never evaluated.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import shlex
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from beanstrain.data import check_samples, get_dataset
from beanstrain.descriptions import Description, check_size
from beanstrain.engines import ENGINE_CHOICES, levels
from beanstrain.errors import UsageError, did_you_mean, lookup
from beanstrain.features import check_features
from beanstrain.models import NETWORKS, check_engine, check_fits, describe, get_network
from beanstrain.objectives import (
    DEFAULT_LOSS,
    canonical_loss,
    check_learning_rate,
    check_loss,
    check_optimizer,
    engine_for_rule,
)
from beanstrain.tasks import MULTICLASS


@dataclass(frozen=True)
class Recipe:
    """Everything a training run needs; each field can be set in a recipe file or by a flag."""

    name: str = ""  # runs are filed under runs/<name>/; a file's name gives it
    description: str = ""  # one line for `beanstrain list`
    dataset: str = ""  # a name from `beanstrain list`
    model: str = ""  # a network name from `beanstrain list`
    epochs: int = 1000  # passes over the training set
    batch_size: int = 10  # samples per optimizer step; the last partial batch is kept; 0: the whole set
    optimizer: str = "adam"  # objectives.OPTIMIZERS; under engine "numpy" an update rule (engines.rules.RULES)
    learning_rate: float | None = None  # None keeps Keras's default rate for the optimizer
    loss: str | None = None  # None picks the task's loss (mse, binary or categorical cross-entropy)
    samples: int | None = None  # points drawn for a generated set (None: the set's default)
    noise: float = 0.0  # what it does depends on the set; see docs/datasets-and-networks.md
    seed: int = 0  # seeds the data draw, the initial weights and the shuffles
    validation_split: float = 0.0  # fraction of train held out per epoch (image sets use 0.1)
    engine: str = "auto"  # auto (the rule in docs/engines.md) or an engine from `beanstrain.engines.ENGINES`
    levels: int = 0  # 0: weights are free; N: every weight on one of N+1 levels, moved one level per epoch
    level_mapping: str = "linear"  # level -> weight: linear, ltp or ltp-ltd (beanstrain.engines.levels.MAPPINGS)
    level_nonlinearity: float = 0.8  # A of the potentiation and depression curves (the course's 0.8)
    # Keras's dtype policy: float32, or mixed_bfloat16 / mixed_float16 (16-bit maths, float32 weights).
    precision: str = "float32"
    course_result: str = ""  # what the course reports for this experiment
    expected_accuracy: float | None = None  # test accuracy the course reports, for the docs and CI gates
    # None: Keras's initialisers; "uniform": every weight from U(0, 1), seeded (the course's np.random.rand());
    # or one entry per weight array (kernel, bias, ...): a number fills it, a list gives its values.
    initial_weights: list | str | None = None
    # The network as described (docs/tinker.md): None keeps the model's own.
    hidden: list | None = None  # units per hidden layer, such as [8, 8, 8]; [] or [0]: no hidden layer
    activation: list | str | None = None  # the hidden layers' activation: one name for all, or one per layer
    l1: float = 0.0  # Keras's L1 penalty rate on every kernel; 0: none
    l2: float = 0.0  # Keras's L2 penalty rate on every kernel; 0: none
    dropout: float = 0.0  # a Dropout layer of this rate after each hidden layer; 0: none
    features: list | None = None  # a 1-D or 2-D set's input features (x1, x2, x1^2 ...); None: the data as it is
    # Early stopping: stop when the held-out figure has not improved for this many epochs, keeping the best
    # epoch's weights (Keras's EarlyStopping with restore_best_weights); 0: train every epoch.
    patience: int = 0
    monitor: str = "loss"  # the held-out figure patience watches: loss (lower is better) or accuracy
    test_fraction: float = 0.5  # a CSV of points (--data): the share of its rows tested on (the Playground's ratio)


FIELDS = {field.name: field for field in dataclasses.fields(Recipe)}
# Keys a recipe file may set: everything but the name, which is the file's.
FILE_KEYS = tuple(name for name in FIELDS if name != "name")
# Keys `beanstrain fit` has a flag for; a run whose other keys differ from its base recipe keeps a recipe file.
FLAGGED = ("epochs", "batch_size", "optimizer", "learning_rate", "loss", "samples", "noise", "seed",
           "validation_split", "engine", "precision", "hidden", "activation", "l1", "l2", "dropout", "features",
           "test_fraction")


# A dataset/model pair with no recipe gets `Recipe`'s defaults with these changes, by kind of dataset:
# toy sets many quick epochs of Adam at 0.01; image sets a few epochs of larger batches with a
# validation split, as the course's MNIST runs do.
PAIR_DEFAULTS = {
    "toy": {"learning_rate": 0.01},
    "points": {"learning_rate": 0.01},
    "image": {"epochs": 5, "batch_size": 128, "validation_split": 0.1},
}


def pair_defaults(dataset: str) -> dict:
    """The settings that differ from `Recipe`'s defaults for a dataset/model pair that has no recipe.

    >>> pair_defaults("mnist")
    {'epochs': 5, 'batch_size': 128, 'validation_split': 0.1}
    """
    return dict(PAIR_DEFAULTS[get_dataset(dataset).kind])


def recipe_dir():
    """The folder of shipped recipe files: configs/, installed as `beanstrain.configs`.

    Running from a source checkout that was never installed, it is the
    configs/ folder beside the package.
    """
    try:
        return resources.files("beanstrain.configs")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "configs"


def recipe_files() -> dict[str, object]:
    """Recipe name -> file, for every shipped recipe."""
    files = {}
    for entry in recipe_dir().iterdir():
        if entry.name.endswith(".toml"):
            files[entry.name.removesuffix(".toml")] = entry
    return dict(sorted(files.items()))


def read_recipe_file(source, name: str) -> Recipe:
    """A `Recipe` from one TOML file, with every key and type checked."""
    label = str(source) if isinstance(source, Path) else f"configs/{source.name}"
    try:
        values = tomllib.loads(source.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"recipe file {label} is not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read recipe file {label}: {error}") from None
    for key in values:
        if key not in FILE_KEYS:
            raise UsageError(f"recipe file {label}: unknown key '{key}'{did_you_mean(key, FILE_KEYS)}")
    recipe = Recipe(name=name, **{key: check_type(key, value, label) for key, value in values.items()})
    if not recipe.dataset or not recipe.model:
        raise UsageError(f"recipe file {label} must set both 'dataset' and 'model'")
    return recipe


def check_type(key: str, value, where: str):
    """Check one setting's type against the dataclass: ints for counts, numbers for rates."""
    annotation = FIELDS[key].type
    if "float" in annotation and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    expected = {"int": (int, "an integer"), "float": (float, "a number"), "str": (str, "a string")}
    for type_name, (python_type, described) in expected.items():
        if annotation.startswith(type_name):
            if not isinstance(value, python_type) or isinstance(value, bool):
                raise UsageError(f"{where}: '{key}' must be {described}, got {value!r}")
            return value
    return value


def load_recipe(name_or_path: str) -> Recipe:
    """A shipped recipe by name, or any recipe file by path (`my_run.toml`)."""
    path = Path(name_or_path)
    if name_or_path.endswith(".toml"):
        if not path.is_file():
            raise UsageError(f"recipe file {name_or_path} does not exist")
        return read_recipe_file(path, path.stem)
    return read_recipe_file(lookup("recipe", name_or_path, recipe_files()), name_or_path)


def list_recipes() -> dict[str, Recipe]:
    return {name: read_recipe_file(source, name) for name, source in recipe_files().items()}


def recipe_for_pair(dataset: str, model: str) -> Recipe | None:
    """The shipped recipe that trains `model` on `dataset`, preferring the one named `dataset-model`."""
    recipes = list_recipes()
    preferred = recipes.get(f"{dataset}-{model}")
    if preferred and preferred.dataset == dataset and preferred.model == model:
        return preferred
    for recipe in recipes.values():
        if recipe.dataset == dataset and recipe.model == model:
            return recipe
    return None


def resolve_recipe(name: str | None = None, overrides: dict | None = None) -> Recipe:
    """Defaults < recipe < overrides (flags; a None value means the flag was not given).

    With no recipe name, `overrides` must give `dataset` and `model`; the
    pair's recipe applies when one exists.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    if name:
        base = load_recipe(name)
    else:
        dataset, model = overrides.get("dataset"), overrides.get("model")
        if not dataset or not model:
            raise UsageError("give a RECIPE (see `beanstrain list`) or both --dataset and --model")
        get_dataset(dataset)  # unknown names fail here, before anything else
        get_network(model)
        base = recipe_for_pair(dataset, model) or Recipe(
            name=f"{dataset_label(dataset)}-{model}", dataset=dataset, model=model, **pair_defaults(dataset)
        )
    changes_pair = any(overrides.get(key, getattr(base, key)) != getattr(base, key) for key in ("dataset", "model"))
    recipe = dataclasses.replace(base, **overrides)
    if changes_pair and get_dataset(recipe.dataset).kind == "points":
        # A CSV stands in for the recipe's generated set: its rows replace the draw's --samples and --noise.
        recipe = dataclasses.replace(recipe, samples=overrides.get("samples"), noise=overrides.get("noise", 0.0))
    if changes_pair:
        recipe = dataclasses.replace(recipe, name=f"{dataset_label(recipe.dataset)}-{recipe.model}",
                                     expected_accuracy=None, course_result="")
    check_recipe(recipe)
    return recipe


def check_recipe(recipe: Recipe) -> None:
    """Every value checked before any work starts; one line naming the value and what is allowed.

    Only the registries are consulted: nothing here reads, draws or downloads data.
    """
    task = get_dataset(recipe.dataset).task
    check_fits(recipe.model, recipe.dataset)
    for key, least in (("epochs", 1), ("batch_size", 0)):
        value = getattr(recipe, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            whole = ", or 0 for the whole training set" if least == 0 else ""
            raise UsageError(f"{key.replace('_', ' ')} must be a positive integer{whole}, got {value!r}")
    engine = engine_for_rule(recipe.engine, recipe.optimizer)
    check_optimizer(recipe.optimizer, engine)
    check_engine(recipe.model, engine)
    check_initial_weights(recipe.initial_weights)
    check_learning_rate(recipe.learning_rate)
    check_loss(recipe.loss or DEFAULT_LOSS[task], task)
    check_samples(recipe.dataset, recipe.samples)
    check_points(recipe)
    if not math.isfinite(recipe.noise) or recipe.noise < 0:
        raise UsageError(f"noise must be a finite number >= 0, got {recipe.noise!r}")
    if not 0.0 <= recipe.validation_split < 1.0:
        raise UsageError(f"validation split must be in [0, 1), got {recipe.validation_split!r}")
    if recipe.engine not in ENGINE_CHOICES:
        raise UsageError(f"engine must be one of {', '.join(ENGINE_CHOICES)}, got {recipe.engine!r}")
    if not 0 <= recipe.seed < 2**31:
        raise UsageError(f"seed must be between 0 and 2147483647, got {recipe.seed}")
    check_levels(recipe)
    check_precision(recipe.precision, engine)
    if isinstance(recipe.patience, bool) or not isinstance(recipe.patience, int) or recipe.patience < 0:
        raise UsageError(f"patience must be a whole number of epochs (0: no early stopping), got {recipe.patience!r}")
    if recipe.monitor not in ("loss", "accuracy"):
        raise UsageError(f"monitor must be loss or accuracy (of the held-out set), got {recipe.monitor!r}")
    if recipe.monitor == "accuracy" and task == "regression" and recipe.patience:
        raise UsageError("--monitor accuracy needs a classification set; a regression run has no accuracy")
    recipe_description(recipe)


def dataset_label(dataset: str) -> str:
    """A dataset's name in a run's name: a CSV file's stem (`points`), else its registered name."""
    return Path(dataset).stem if get_dataset(dataset).kind == "points" else dataset


def check_points(recipe: Recipe) -> None:
    """A CSV of points has its own rows: no --samples or --noise; --test-fraction splits it and nothing else."""
    points = get_dataset(recipe.dataset).kind == "points"
    if points and recipe.samples is not None:
        raise UsageError(f"--samples draws a generated set; {recipe.dataset} has its own rows; drop --samples")
    if points and recipe.noise:
        raise UsageError(f"--noise changes a generated set's draw; {recipe.dataset} has its own points; drop --noise")
    if not isinstance(recipe.test_fraction, float) or not 0.0 < recipe.test_fraction < 1.0:
        raise UsageError(f"test fraction must be between 0 and 1 (exclusive), got {recipe.test_fraction!r}")
    if not points and recipe.test_fraction != FIELDS["test_fraction"].default:
        raise UsageError(f"--test-fraction splits a CSV of points (--data points.csv); {recipe.dataset} has its own "
                         "test set")


def recipe_description(recipe: Recipe) -> Description | None:
    """The network a recipe describes (`models.describe`), checked against its dataset; None for LeNet-5.

    >>> recipe_description(resolve_recipe("beans4-hidden2", {"hidden": [3], "activation": "tanh"})).label()
    '3 tanh'
    """
    description = describe(recipe.model, recipe.hidden, recipe.activation, recipe.l1, recipe.l2, recipe.dropout,
                           recipe.features)
    if description is None:
        return None
    dataset = get_dataset(recipe.dataset)
    if recipe.features is not None:
        check_features(recipe.features, dataset.inputs, recipe.dataset)
    outputs = dataset.num_classes if dataset.task == MULTICLASS else 1
    check_size(description, dataset.inputs, outputs)
    return description


def flag_text(value) -> str:
    """A recipe value as its flag takes it: lists joined by commas ([8, 8] -> "8,8", [] -> "0")."""
    if isinstance(value, list):
        return ",".join(map(str, value)) or "0"
    return str(value)


# Keras's dtype policies a run can train under; mixed ones compute in 16 bits and keep float32 weights.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")


def check_precision(precision: str, engine: str) -> None:
    """A Keras dtype policy; the numpy engine computes in float32 only.

    >>> check_precision("mixed_bfloat16", "numpy")
    Traceback (most recent call last):
    beanstrain.errors.UsageError: precision mixed_bfloat16: the numpy engine computes in float32; use --engine fit
    """
    lookup("precision", precision, dict.fromkeys(PRECISIONS))
    if precision != "float32" and engine == "numpy":
        raise UsageError(f"precision {precision}: the numpy engine computes in float32; use --engine fit")


def check_levels(recipe: Recipe) -> None:
    """The level keys' values, and a network whose every trainable value is a weight when levels are on."""
    levels.check_levels(recipe.levels, recipe.level_mapping, recipe.level_nonlinearity)
    if recipe.levels and get_network(recipe.model).biases:
        gives = get_dataset(recipe.dataset).gives  # name only the networks this dataset can train
        without = [name for name, network in NETWORKS.items() if not network.biases and network.takes in gives]
        raise UsageError(f"levels need a network without biases ({', '.join(without)}); "
                         f"model '{recipe.model}' has biases")


def check_initial_weights(initial) -> None:
    """The form of `initial_weights` (its shapes are checked against the network before training).

    >>> check_initial_weights([[0.1, 0.1], 0.1])
    >>> check_initial_weights("zeros")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    beanstrain.errors.UsageError: initial_weights must be "uniform" or a list ... per weight array, got 'zeros'
    """
    def numbers(value) -> bool:
        if isinstance(value, list):
            return bool(value) and all(numbers(item) for item in value)
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if initial is None or initial == "uniform":
        return
    if not isinstance(initial, list) or not initial or not all(numbers(entry) for entry in initial):
        raise UsageError('initial_weights must be "uniform" or a list with one number or list of numbers per '
                         f"weight array, got {initial!r}")


def recipe_loss(recipe: Recipe) -> str:
    """The loss a run uses: the recipe's, or the task's default."""
    return canonical_loss(recipe.loss or DEFAULT_LOSS[get_dataset(recipe.dataset).task])


def as_dict(recipe: Recipe) -> dict:
    return dataclasses.asdict(recipe)


@functools.lru_cache(maxsize=64)
def base_recipe(name: str, dataset: str, model: str) -> tuple[tuple[str, ...], Recipe]:
    """The words that name a run's recipe on the command line, and what they resolve to (a shipped recipe by its
    name, else the dataset/model pair's)."""
    if name in recipe_files():
        return ("beanstrain", "fit", name), resolve_recipe(name)
    return (("beanstrain", "fit", "--dataset", dataset, "--model", model),
            resolve_recipe(None, {"dataset": dataset, "model": model}))


def keeps_file(recipe: Recipe) -> bool:
    """Whether a run of `recipe` keeps it as a TOML file: a key with no flag differs from its base recipe.

    >>> keeps_file(resolve_recipe("beans4-hidden2", {"epochs": 3})), keeps_file(resolve_recipe("mnist-levels-linear"))
    (False, False)
    >>> keeps_file(dataclasses.replace(resolve_recipe("mnist-levels-linear"), level_mapping="ltp"))
    True
    """
    _, base = base_recipe(recipe.name, recipe.dataset, recipe.model)
    return any(getattr(recipe, key) != getattr(base, key) for key in FIELDS if key not in FLAGGED)


def recipe_file(run_dir: Path, recipe: Recipe) -> Path:
    """Where a run folder keeps its recipe: named after it, so `fit` files the new run under the same name."""
    return Path(run_dir) / f"{recipe.name}.toml"


def fit_words(recipe: Recipe, run_dir: Path, data_path: str | None = None, devices: int = 1,
              backend: str = "tensorflow") -> list[str]:
    """The `beanstrain fit` command that trains `recipe` again: its base recipe and the flags that differ, or
    the run folder's recipe file when a key without a flag differs; then --data, --devices and --backend as the
    run had.

    >>> fit_words(resolve_recipe("beans4-hidden2", {"seed": 3}), Path("runs/r"), devices=2)
    ['beanstrain', 'fit', 'beans4-hidden2', '--seed', '3', '--devices', '2']
    """
    if keeps_file(recipe):
        words = ["beanstrain", "fit", str(recipe_file(run_dir, recipe))]
    else:
        named, base = base_recipe(recipe.name, recipe.dataset, recipe.model)
        words = list(named)
        for key in FLAGGED:
            value = getattr(recipe, key)
            if value is not None and value != getattr(base, key):
                words += [f"--{key.replace('_', '-')}", flag_text(value)]
    if data_path:
        words += ["--data", str(data_path)]
    if devices > 1:
        words += ["--devices", str(devices)]
    if backend != "tensorflow":
        words += ["--backend", backend]
    return words


def fit_command(recipe: Recipe, run_dir: Path, data_path: str | None = None, devices: int = 1,
                backend: str = "tensorflow") -> str:
    """`fit_words` as one line for a shell."""
    return shlex.join(fit_words(recipe, run_dir, data_path, devices, backend))


def recipe_toml(recipe: Recipe) -> str:
    """The recipe as a TOML file `load_recipe` reads back to the same recipe (its name is the file's).

    >>> recipe = dataclasses.replace(resolve_recipe("beans4-hidden2"), description='a "b"', initial_weights=[[0.5], 1])
    >>> path = Path(__import__("tempfile").mkdtemp()) / "beans4-hidden2.toml"
    >>> _ = path.write_text(recipe_toml(recipe))
    >>> load_recipe(str(path)) == recipe
    True
    """
    def value(item) -> str:
        if isinstance(item, list):
            return "[" + ", ".join(value(entry) for entry in item) + "]"
        if isinstance(item, float) and not math.isfinite(item):
            return "nan" if math.isnan(item) else ("inf" if item > 0 else "-inf")
        return json.dumps(item, ensure_ascii=False)  # strings, ints and floats are written as TOML reads them

    lines = [f"# The resolved recipe of the run in this folder: beanstrain fit {recipe.name}.toml trains it again."]
    lines += [f"{key} = {value(getattr(recipe, key))}" for key in FILE_KEYS if getattr(recipe, key) is not None]
    return "\n".join(lines) + "\n"

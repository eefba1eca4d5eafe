"""Commands that must answer at once: help, list, and every usage error before any work starts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from beanstrain.cli import cli
from beanstrain.data import list_datasets
from beanstrain.models import NETWORKS
from beanstrain.recipes import recipe_files

SUBCOMMANDS = sorted(cli.commands)


def test_cli_import_does_not_load_heavy_libraries():
    code = ("import sys, beanstrain.cli; "
            "print([m for m in ('tensorflow', 'keras', 'matplotlib', 'ray') if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]"


def test_importing_any_module_loads_no_heavy_library():
    """What `pytest --doctest-modules` collects: every module imports without TensorFlow, Keras, matplotlib or Ray."""
    code = ("import importlib, pkgutil, sys, beanstrain\n"
            "for module in pkgutil.walk_packages(beanstrain.__path__, 'beanstrain.'):\n"
            "    importlib.import_module(module.name)  # __main__ included: importing it runs nothing\n"
            "print(len(sys.modules) > 0, "
            "[m for m in ('tensorflow', 'keras', 'matplotlib', 'ray') if m in sys.modules])")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "True []"


# `data` reads file headers only: it answers at once, with or without the datasets on this machine.
QUICK_COMMANDS = [["--help"], ["list"], ["list", "--json"], ["data"], ["data", "--json"], ["data", "mnist"]]


@pytest.mark.parametrize("args", QUICK_COMMANDS + [[name, "--help"] for name in SUBCOMMANDS])
def test_quick_commands_do_not_load_heavy_libraries(args):
    code = ("import sys\nfrom beanstrain.cli import cli\n"
            f"try:\n    cli.main({args!r}, prog_name='beanstrain')\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('tensorflow', 'keras', 'matplotlib', 'ray') if m in sys.modules])")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip().splitlines()[-1] == "HEAVY []"


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_has_help(invoke, command):
    result = invoke(command, "--help")
    assert "Usage: beanstrain" in result.output or "Usage: cli" in result.output
    assert "beanstrain " + command.split()[0] in result.output  # shows an example command


def test_top_level_help_lists_commands(invoke):
    output = invoke("--help").output
    for command in SUBCOMMANDS:
        assert command in output


def test_list_names_every_dataset_model_and_recipe(invoke):
    output = invoke("list").output
    for name in [*list_datasets(), *NETWORKS, *recipe_files()]:
        assert f"  {name} " in output


def test_list_json(invoke):
    listing = json.loads(invoke("list", "--json").output)
    assert set(listing) == {"datasets", "models", "recipes"}
    assert listing["datasets"]["beans4"]["task"] == "binary"
    assert listing["recipes"]["beans4-hidden2"]["dataset"] == "beans4"
    assert set(listing["models"]) == set(NETWORKS)


@pytest.mark.parametrize(
    "args, message",
    [
        (["fit", "--dataset", "bean4", "--model", "hidden2"], "unknown dataset 'bean4'; did you mean 'beans4'?"),
        (["fit", "--dataset", "beans4", "--model", "hiden2"], "unknown model 'hiden2'; did you mean 'hidden2'?"),
        (["fit", "beans4-hiden2"], "unknown recipe 'beans4-hiden2'; did you mean 'beans4-hidden2'?"),
        (["fit", "beans4-hidden2", "--optimizer", "adm"], "unknown optimizer 'adm'; did you mean 'adam'?"),
        (["fit", "beans4-hidden2", "--loss", "mse2"], "unknown loss 'mse2'"),
        (["fit", "beans4-hidden2", "--loss", "categorical_crossentropy"], "does not fit a binary dataset"),
        (["fit", "beans1-neuron", "--loss", "binary_crossentropy"], "does not fit a regression dataset"),
        (["fit", "beans4-hidden2", "--epochs", "0"], "epochs must be a positive integer"),
        (["fit", "beans4-hidden2", "--batch-size", "-3"], "batch size must be a positive integer"),
        (["fit", "beans4-hidden2", "--learning-rate", "0"], "learning rate must be a positive finite number"),
        (["fit", "beans4-hidden2", "--learning-rate", "nan"], "learning rate must be a positive finite number"),
        (["fit", "beans4-hidden2", "--samples", "2"], "--samples must be at least 4"),
        (["fit", "beans4-hidden2", "--noise", "-1"], "noise must be a finite number >= 0"),
        (["fit", "--dataset", "beans4"], "give a RECIPE"),
        (["fit", "--dataset", "beans4", "--model", "lenet5"], "model 'lenet5' takes 28x28 images"),
        (["fit", "missing.toml"], "recipe file missing.toml does not exist"),
        (["fit", "beans4-hidden2", "--epochs", "-5"], "epochs must be a positive integer"),
        (["fit", "beans4-hidden2", "--learning-rate", "inf"], "learning rate must be a positive finite"),
        (["fit", "beans4-hidden2", "--learning-rate", "-1"], "learning rate must be a positive finite"),
        (["fit", "beans4-hidden2", "--validation-split", "-0.1"], "validation split must be in [0, 1)"),
        (["fit", "beans4-hidden2", "--seed", "-3"], "seed must be between"),
        (["fit", "beans4-hidden2", "--noise", "inf"], "noise must be a finite number"),
        (["fit", "beans4-hidden2", "--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(invoke, tmp_path, args, message):
    result = invoke(*args, "--out", tmp_path / "runs", exit_code=2)
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_click_level_bad_value_exits_2(invoke):
    result = invoke("fit", "beans4-hidden2", "--epochs", "many", exit_code=2)
    assert "not a valid integer" in result.output


def test_out_that_is_a_file_is_refused(invoke, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("fit", "beans4-hidden2", "--out", blocker, exit_code=2)
    assert "is a file" in result.output

"""The `beanstrain` command line: parse, call the library, print, exit.

    beanstrain fit --dataset beans4 --model hidden2
    beanstrain eval beans4-hidden2 --min-accuracy 0.9
    beanstrain list
    beanstrain data
    beanstrain predict my_digit.png --run mnist-lenet

Exit codes: 0 success, 1 a run or a gate failed, 2 a usage error.  Heavy
imports (TensorFlow, Keras, matplotlib) happen inside the commands that
train or draw, so `--help` and `list` start at once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from beanstrain.devices import DEVICE_CHOICES
from beanstrain.engines import ENGINE_CHOICES, ENGINES
from beanstrain.errors import Interrupted, RunError, UsageError, first_line
from beanstrain.objectives import LOSSES, OPTIMIZERS
from beanstrain.plots.animate import ANIMATIONS

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class CommandError(click.ClickException):
    """One line, `Error: ...`, and the error's own exit code; never a traceback."""

    def __init__(self, error: UsageError | RunError):
        super().__init__(str(error))
        self.exit_code = error.exit_code


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (UsageError, RunError) as error:
            raise CommandError(error) from None
        except KeyboardInterrupt:  # Ctrl-C before a run folder existed: nothing to resume
            raise CommandError(Interrupted("interrupted")) from None
        except Exception as error:
            if not out_of_memory(error):
                raise
            # A run has already been marked failed by then; what is left is to say so in one line.
            detail = first_line(error) if str(error).strip() else "no detail given"
            hint = "; use fewer --samples or a smaller --batch-size" if ctx.invoked_subcommand == "fit" else ""
            raise CommandError(RunError(f"out of memory: {detail}{hint}")) from None


def out_of_memory(error: BaseException) -> bool:
    """NumPy's and Python's MemoryError, or TensorFlow's own out-of-memory error (its allocator's, on any device)."""
    if isinstance(error, MemoryError):
        return True
    tensorflow = sys.modules.get("tensorflow")  # never imported here: only a run that imported it can raise it
    errors = getattr(tensorflow, "errors", None)
    return errors is not None and isinstance(error, errors.ResourceExhaustedError)


def spoken_list(names) -> str:
    """Names as a sentence says them: "sgd, adam or rmsprop"."""
    names = list(names)
    return ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else "".join(names)


def emit_json(data) -> None:
    click.echo(json.dumps(data, indent=2))


@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(package_name="beanstrain")
def cli():
    """Train the networks of a beginner's deep-learning course, from a named recipe to a trained
    model, its numbers and its pictures.

    \b
    beanstrain list                                  datasets, networks, recipes
    beanstrain fit --dataset beans4 --model hidden2  train the course's 2-2-1 net
    beanstrain fit beans4-hidden2 --epochs 200       a recipe, with a flag overriding it
    beanstrain eval beans4-hidden2 --min-accuracy 0.9    exit 1 below the bar
    beanstrain data                                  where MNIST and Fashion-MNIST were found
    beanstrain fit mnist-lenet                       LeNet-5 on MNIST, the course's settings
    beanstrain predict my_digit.png --run mnist-lenet    classify your own drawing

    Every run gets its own folder under runs/ with the model, config.json,
    metrics.json, history.csv, the weight trace and pictures (for generated
    sets, an animation of the training).
    """


@cli.command("list", context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
def list_command(as_json):
    """List every dataset, network and recipe, one line each.

    \b
    beanstrain list
    beanstrain list --json | jq '.recipes'
    """
    from beanstrain.data import list_datasets
    from beanstrain.models import NETWORKS
    from beanstrain.recipes import list_recipes

    datasets = {name: {"task": entry.task, "summary": entry.summary} for name, entry in list_datasets().items()}
    networks = {name: {"takes": network.takes, "summary": network.summary} for name, network in NETWORKS.items()}
    recipes = {name: {"dataset": recipe.dataset, "model": recipe.model, "summary": recipe.description,
                      "epochs": recipe.epochs, "course_result": recipe.course_result,
                      "expected_accuracy": recipe.expected_accuracy}
               for name, recipe in list_recipes().items()}
    if as_json:
        emit_json({"datasets": datasets, "models": networks, "recipes": recipes})
        return
    width = max(len(name) for name in [*datasets, *networks, *recipes]) + 2
    click.echo("datasets:")
    for name, info in datasets.items():
        click.echo(f"  {name:<{width}}{info['task']:<12}{info['summary']}")
    click.echo("models:")
    for name, info in networks.items():
        click.echo(f"  {name:<{width}}{info['takes']:<17}{info['summary']}")
    click.echo("recipes:")
    for name, info in recipes.items():
        click.echo(f"  {name:<{width}}{info['summary']}")


@cli.command(context_settings=CONTEXT)
@click.argument("recipe", required=False)
@click.option("--dataset", help="Dataset name (see `beanstrain list`).")
@click.option("--model", help="Network name (see `beanstrain list`).")
@click.option("--epochs", type=int, help="Passes over the training set.")
@click.option("--batch-size", type=int,
              help="Samples per optimizer step. A batch larger than the training set is clamped to it, "
                   "with a warning.")
@click.option("--optimizer", help=f"{spoken_list(OPTIMIZERS)}.")
@click.option("--learning-rate", type=float, help="Optimizer step size (default: the recipe's, else Keras's).")
@click.option("--loss", help=f"{spoken_list(LOSSES)}; must fit the task.")
@click.option("--samples", type=int, help="Points to draw for a generated set (test set: as many again); "
                                         "refused when the draw would not fit in the memory available.")
@click.option("--noise", type=float, help="Noise level; what it does depends on the set (see the README).")
@click.option("--seed", type=int, help="Seeds the data, the initial weights and every shuffle.")
@click.option("--validation-split", type=float, help="Fraction of the training images held out per epoch.")
@click.option("--data", "data_path", help="MNIST-format data: a .npz or a folder of the four IDX files.")
@click.option("--engine", type=click.Choice(ENGINE_CHOICES),
              help=f"Training path: {', or '.join(engine.label for engine in ENGINES.values())} "
                   "(auto picks; see the README).")
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Folder that holds the run folders.")
@click.option("--device", default="auto", show_default=True, type=click.Choice(DEVICE_CHOICES),
              help="auto uses a GPU when TensorFlow sees one; gpu without one is an error.")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), metavar="RUN_DIR",
              help="Continue an interrupted or failed run from its checkpoint, in its folder, with its recorded "
                   "settings; for a finished run whose pictures a full disk stopped, draw them.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object on stdout when done; everything else goes to stderr.")
@click.option("--animation", default="gif", show_default=True, type=click.Choice(ANIMATIONS),
              help="The training animation of a run on a generated set: "
                   + "; ".join(f"{name}: {entry.label}" for name, entry in ANIMATIONS.items()) + ".")
@click.pass_context
def fit(ctx, recipe, dataset, model, epochs, batch_size, optimizer, learning_rate, loss, samples, noise, seed,
        validation_split, data_path, engine, out, device, resume_dir, quiet, as_json, animation):
    """Train a network and save the model, its numbers and its pictures in a new run folder.

    RECIPE names a recipe from `beanstrain list` or a .toml file. With only
    --dataset and --model, the recipe for that pair applies when one exists
    (beans4 + hidden2 is the course's 5000 epochs of SGD); otherwise defaults
    for the pair. Flags always override the recipe.

    Ctrl-C (or SIGTERM) stops after the current chunk of epochs (the compiled
    engine) or epoch (the fit engine), saves a checkpoint, marks the run
    interrupted, prints the command that resumes it and exits 130; a second
    Ctrl-C stops at once. A NaN or infinite loss stops the run (exit 1) and
    keeps the last finite weights. A run that trained without learning (constant
    predictions, a loss that did not fall, accuracy at the majority class's rate)
    finishes with one warning line each, naming the likely cause. A disk that fills
    up (or any file error) ends in one line saying what was saved and what to do.

    \b
    beanstrain fit --dataset beans4 --model hidden2
    beanstrain fit beans4-hidden2 --epochs 200 --seed 7
    beanstrain fit --dataset spiral --model deep8 --optimizer adam --learning-rate 0.01
    beanstrain fit my_recipe.toml --json
    beanstrain fit --resume runs/beans4-hidden2/20261123-153012-1
    """
    from beanstrain.session import fit_run, resume_run
    from beanstrain.recipes import resolve_recipe

    flags = {"dataset": dataset, "model": model, "epochs": epochs, "batch_size": batch_size,
             "optimizer": optimizer, "learning_rate": learning_rate, "loss": loss, "samples": samples,
             "noise": noise, "seed": seed, "validation_split": validation_split, "engine": engine}
    if resume_dir is not None:
        given = [f"--{key.replace('_', '-')}" for key, value in flags.items() if value is not None]
        given += ["RECIPE"] * (recipe is not None) + ["--data"] * (data_path is not None)
        given += [f"--{name}" for name in ("out", "animation")
                  if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
        if given:
            raise UsageError(f"--resume continues a run with the settings it recorded; drop {', '.join(given)}")
        summary = resume_run(resume_dir, device=device, quiet=quiet)
    else:
        resolved = resolve_recipe(recipe, flags)
        summary = fit_run(resolved, out=out, device=device, quiet=quiet, data_path=data_path, animation=animation)
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"trained in {summary['train_seconds']:.2f}s on {summary['device']} ({summary['engine']} engine)")
        for split, figures in summary["metrics"].items():
            click.echo(f"{split:<6}" + "  ".join(f"{name} {value:.4f}" for name, value in figures.items()))
        click.echo(f"run folder: {summary['run_dir']}")
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@cli.command("eval", context_settings=CONTEXT)
@click.argument("target", required=False, metavar="[RECIPE|RUN_DIR]")
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Folder that holds the run folders.")
@click.option("--min-accuracy", type=float, help="Exit 1 when test accuracy is below this (0 to 1).")
@click.option("--data", "data_path", help="Evaluate image runs on this data's test split instead.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
def eval_command(target, out, min_accuracy, data_path, as_json):
    """Evaluate a trained run on its test data and write eval.json into its folder.

    Takes the newest finished run of RECIPE under --out, or the run folder
    given (the newest finished run of any recipe when neither is given).
    With --min-accuracy it is a CI gate: exit 1 below the bar.

    \b
    beanstrain eval beans4-hidden2 --min-accuracy 0.9
    beanstrain eval runs/beans4-hidden2/20261123-153012-1 --json
    """
    from beanstrain.evaluation import eval_run

    result = eval_run(target, out=out, min_accuracy=min_accuracy, data_path=data_path)
    if as_json:
        emit_json({"run_dir": result["run_dir"], "metrics": result["metrics"], "passed": result["passed"],
                   **({"per_class_accuracy": result["per_class_accuracy"]} if "per_class_accuracy" in result
                      else {})})
    else:
        click.echo(f"run: {result['run_dir']} ({result['test_samples']} test samples)")
        click.echo("test  " + "  ".join(f"{name} {value:.4f}" for name, value in result["metrics"].items()))
        for name, value in result.get("per_class_accuracy", {}).items():
            click.echo(f"  class {name:<12} accuracy {value:.4f}" if value is not None else f"  class {name}: none")
    if not result["passed"]:
        accuracy = result["metrics"].get("accuracy", 0.0)
        click.echo(f"Error: test accuracy {accuracy:.4f} is below --min-accuracy {min_accuracy}", err=True)
        sys.exit(1)


@cli.command("data", context_settings=CONTEXT)
@click.argument("name", required=False)
@click.option("--data", "data_path", help="Look only here: a .npz or a folder of the four IDX files.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list instead of text.")
def data_command(name, data_path, as_json):
    """Show where each image dataset (or NAME) was found and its split sizes, or every place looked in.

    Reads file headers only, so it answers at once. Exits 1 when NAME is
    given and cannot be used (not found, or the file found is broken).

    \b
    beanstrain data
    beanstrain data mnist --data ~/Downloads/mnist.npz
    beanstrain data fashion-mnist --json
    """
    from beanstrain.data import list_datasets
    from beanstrain.data.locate import describe_images, how_to_get

    infos = [describe_images(one, data_path) for one in ([name] if name else list_datasets("image"))]
    if as_json:
        emit_json(infos)
    else:
        for info in infos:
            if info["problem"]:
                click.echo(f"{info['name']}: found {info['found']} but it cannot be read: {info['problem']}")
            elif info["found"]:
                click.echo(f"{info['name']}: {info['found']} ({info['train']:,} train / {info['test']:,} test)")
            else:
                click.echo(f"{info['name']}: not found; looked in:")
                for place in info["looked_in"]:
                    click.echo(f"    {place}")
                click.echo(f"  to get it: {how_to_get(info['name'])}")
    if name and (infos[0]["problem"] or not infos[0]["found"]):
        sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("images", nargs=-1, required=True, metavar="IMAGE...")
@click.option("--run", "target", metavar="RECIPE|RUN_DIR",
              help="The newest finished run of RECIPE, or a run folder (default: the newest finished run "
                   "trained on images).")
@click.option("--out", default="runs", show_default=True, type=click.Path(path_type=Path),
              help="Folder that holds the run folders.")
@click.option("--invert/--no-invert", default=None,
              help="Force inverting the image or not (default: invert when the border is lighter than "
                   "mid-grey, i.e. a dark digit on light paper).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list, one entry per image.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Save a picture here: each file, the 28x28 image the network saw, and its probability bars.")
def predict(images, target, out, invert, as_json, plot):
    """Predict the class of your own images (PNG, BMP or JPEG, any size) with a trained image run.

    Each image is brought to MNIST's form the way MNIST was made: grey,
    inverted when it is dark on light, the paper's grain and specks taken off,
    the ink fitted into 20x20 keeping its shape and placed so that its centre
    of mass is the middle of the 28x28 frame (for a Fashion-MNIST run, fitted
    to 28 and centred, as that set was made). A file that cannot be read gets
    a one-line error; the others are still predicted, and the command exits 1
    at the end.

    \b
    beanstrain predict my_digit.png --run mnist-lenet
    beanstrain predict *.png --run runs/mnist-lenet/20261123-153012-1 --json
    beanstrain predict shirt.jpg --run fashion-lenet --plot shirt-bars.png
    """
    from beanstrain.predict import check_plot_path, plot_prediction, predict_images

    plot_path = check_plot_path(plot)
    prediction = predict_images(list(images), target, out=out, invert=invert)
    if as_json:
        emit_json(prediction.results)
    else:
        click.echo(f"run: {prediction.run_dir} ({prediction.dataset})")
    for result in prediction.results:
        if "error" in result:
            click.echo(f"Error: {result['error']}", err=True)
        elif not as_json:
            inverted = ", inverted" if result["inverted"] else ""
            click.echo(f"{result['file']}: {result['label']} (probability {result['probability']:.4f}{inverted})")
    if plot_path and plot_prediction(prediction, plot_path) and not as_json:
        click.echo(f"picture: {plot_path}")
    if prediction.failed:
        sys.exit(1)


def main():
    cli(prog_name="beanstrain")


if __name__ == "__main__":
    main()

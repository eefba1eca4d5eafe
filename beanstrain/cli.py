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

from beanstrain.backends import use_backend
from beanstrain.catalog import STATES as RUN_STATES
from beanstrain.checker import DEFAULT_STEPS, LESSONS
from beanstrain.descriptions import ACTIVATIONS, parse_hidden
from beanstrain.devices import DEVICE_CHOICES
from beanstrain.engines import ENGINE_CHOICES, ENGINES
from beanstrain.engines.rules import RULES
from beanstrain.errors import Interrupted, RunError, UsageError, first_line
from beanstrain.export import FORMATS as EXPORT_FORMATS
from beanstrain.features import FEATURES, parse_features
from beanstrain.objectives import LOSSES, OPTIMIZERS
from beanstrain.options import backend_option, data_option, json_option, out_option, quiet_option
from beanstrain.plots.animate import ANIMATIONS
from beanstrain.points import looks_like_point, takes_points
from beanstrain.recipes import PRECISIONS
from beanstrain.sweep import MAX_TRIALS

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


def spoken_weights(value) -> str:
    """A weight, or nested lists of them, to 4 decimals: "1.2037", "[[0.5, -1.25]]"."""
    if isinstance(value, list):
        return "[" + ", ".join(spoken_weights(item) for item in value) + "]"
    return f"{value:.4f}"


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
    beanstrain sweep spiral-deep8 --set seed=0..4    one run per seed, on Ray
    beanstrain runs                                  every run under runs/, newest first
    beanstrain report --out runs --open              runs/index.html: a page of every run
    beanstrain check my_rules.py --recipe beans1-sgd     your own NumPy code against the engine

    Every run gets its own folder under runs/ with the model, config.json,
    metrics.json, history.csv, the weight trace, pictures (for generated
    sets, an animation of the training) and report.html, its page.
    """


@cli.command("list", context_settings=CONTEXT)
@json_option("Print one JSON object instead of text.")
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
              help="Samples per optimizer step: 1 is stochastic gradient descent, 0 the whole training set "
                   "(full-batch). A batch larger than the training set is clamped to it, with a warning.")
@click.option("--optimizer", help=f"{spoken_list(OPTIMIZERS)} (Keras); under --engine numpy the update rule: "
                                  f"{spoken_list(RULES)}.")
@click.option("--learning-rate", type=float, help="Optimizer step size (default: the recipe's, else Keras's).")
@click.option("--loss", help=f"{spoken_list(LOSSES)}; must fit the task.")
@click.option("--samples", type=int, help="Points to draw for a generated set (test set: as many again); "
                                         "refused when the draw would not fit in the memory available.")
@click.option("--noise", type=float,
              help="Noise level; what it does depends on the set (see docs/datasets-and-networks.md).")
@click.option("--seed", type=int, help="Seeds the data, the initial weights and every shuffle.")
@click.option("--validation-split", type=float, help="Fraction of the training images held out per epoch.")
@click.option("--hidden", metavar="UNITS", help="Units per hidden layer of a dense network: 3, or 8,8,8 for three "
                                               "layers; 0 for none (default: the model's own; docs/tinker.md).")
@click.option("--activation", metavar="NAME",
              help=f"The hidden layers' activation: {spoken_list(ACTIVATIONS)} (default: the model's own).")
@click.option("--l1", type=float, help="L1 penalty rate on every kernel (Keras's regularizer; default 0).")
@click.option("--l2", type=float, help="L2 penalty rate on every kernel (Keras's regularizer; default 0).")
@click.option("--dropout", type=float, help="Dropout rate after each hidden layer, in [0, 1) (default 0).")
@click.option("--features", metavar="NAMES",
              help=f"Inputs computed from a 1-D or 2-D set before the network, any of {','.join(FEATURES)} "
                   "(default: x1,x2, the data as it is).")
@data_option("Your own points: a CSV file with a header, columns x (or x0, x1, ...) and y (a number for "
             "regression, 0/1 or class names for classes), in place of a generated set (beanstrain fit --data "
             "points.csv --model hidden2, or a recipe of a generated set). For an image recipe: MNIST-format data, "
             "a .npz or a folder of the four IDX files.")
@click.option("--test-fraction", type=float,
              help="The share of a CSV's rows (--data) held out to test on, drawn from --seed (default 0.5, the "
                   "Playground's ratio).")
@click.option("--engine", type=click.Choice(ENGINE_CHOICES),
              help=f"Training path: {', or '.join(engine.label for engine in ENGINES.values())} "
                   "(auto picks; see docs/engines.md).")
@out_option()
@click.option("--device", default="auto", show_default=True, type=click.Choice(DEVICE_CHOICES),
              help="auto uses a GPU when the backend sees one (CUDA; Apple's MPS on torch); gpu without one is an "
                   "error.")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), metavar="RUN_DIR",
              help="Continue an interrupted or failed run from its checkpoint, in its folder, with its recorded "
                   "settings; for a finished run whose pictures a full disk stopped, draw them. With --epochs N, "
                   "train a finished run on from its last epoch to N epochs in all.")
@quiet_option("No progress display.")
@json_option("Print one JSON object on stdout when done; everything else goes to stderr.")
@click.option("--devices", type=int, metavar="N",
              help="Train on N devices at once (fit engine; tf.distribute's MirroredStrategy on tensorflow, "
                   "keras.distribution's DataParallel on jax): N GPUs, or without a GPU the CPU split into N logical "
                   "devices. The batch size stays the whole step's batch. Default 1; a resumed run: the number it "
                   "recorded.")
@backend_option()
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="Keras's dtype policy: float32 (the default), or mixed_bfloat16 / mixed_float16, 16-bit maths on "
                   "float32 weights (fast on GPUs and on CPUs with AMX or AVX-512 BF16). Keras engines only.")
@click.option("--animation", default="gif", show_default=True, type=click.Choice(ANIMATIONS),
              help="The training animation of a run on a generated set: "
                   + "; ".join(f"{name}: {entry.label}" for name, entry in ANIMATIONS.items()) + ".")
@click.option("--patience", type=int, metavar="N",
              help="Stop when the held-out figure (--monitor) has not improved for N epochs, and keep the best "
                   "epoch's weights, as Keras's EarlyStopping(restore_best_weights=True) does (default 0: off).")
@click.option("--monitor", type=click.Choice(["loss", "accuracy"]),
              help="The held-out figure --patience watches: loss (the default) or accuracy.")
@click.option("--tensorboard/--no-tensorboard", default=True, show_default=True,
              help="Write TensorBoard event files in the run's tb/ folder (see them with: tensorboard --logdir runs).")
@click.pass_context
def fit(ctx, recipe, dataset, model, epochs, batch_size, optimizer, learning_rate, loss, samples, noise, seed,
        validation_split, hidden, activation, l1, l2, dropout, features, data_path, test_fraction, engine, out, device,
        resume_dir, quiet, as_json, devices, backend, precision, animation, patience, monitor, tensorboard):
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
    beanstrain fit beans4-hidden2 --hidden 3 --activation tanh
    beanstrain fit spiral-deep8 --features x1,x2,x1^2,x2^2,x1*x2,sin(x1),sin(x2) --l2 0.001
    beanstrain fit my_recipe.toml --json
    beanstrain fit --resume runs/beans4-hidden2/20261123-153012-1
    beanstrain fit --resume runs/beans4-hidden2/20261123-153012-1 --epochs 8000   # a finished run, trained on
    beanstrain fit mnist-dense128 --devices 2
    beanstrain fit spiral-deep8 --patience 100              # stop when the test loss stops improving
    """
    from beanstrain.recipes import resolve_recipe
    from beanstrain.training import fit_run, resume_run

    flags = {"dataset": dataset, "model": model, "epochs": epochs, "batch_size": batch_size,
             "optimizer": optimizer, "learning_rate": learning_rate, "loss": loss, "samples": samples,
             "noise": noise, "seed": seed, "validation_split": validation_split, "engine": engine,
             "hidden": None if hidden is None else parse_hidden(hidden),
             "activation": None if activation is None else _names(activation), "l1": l1, "l2": l2,
             "dropout": dropout, "features": None if features is None else parse_features(features),
             "precision": precision, "patience": patience, "monitor": monitor, "test_fraction": test_fraction}
    if resume_dir is not None:
        # --epochs with --resume trains a finished run on to that many epochs in all.
        given = [f"--{key.replace('_', '-')}" for key, value in flags.items() if value is not None and key != "epochs"]
        given += ["RECIPE"] * (recipe is not None) + ["--data"] * (data_path is not None)
        given += [f"--{name}" for name in ("out", "animation", "tensorboard")
                  if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
        if given:
            raise UsageError(f"--resume continues a run with the settings it recorded; drop {', '.join(given)}")
        summary = resume_run(resume_dir, device=device, quiet=quiet, devices=devices, backend=backend, epochs=epochs)
    else:
        if data_path is not None and not points_replace_images(recipe, dataset, model):
            # A CSV of points stands in for the generated set, named by its whole path so that any folder finds it.
            flags["dataset"], data_path = str(Path(data_path).expanduser().absolute()), None
        resolved = resolve_recipe(recipe, flags)
        use_backend(backend)
        summary = fit_run(resolved, out=out, device=device, quiet=quiet, data_path=data_path,
                          devices=1 if devices is None else devices, animation=animation, tensorboard=tensorboard)
    if as_json:
        emit_json(summary)
    else:
        click.echo(f"trained in {summary['train_seconds']:.2f}s on {summary['device']} ({summary['engine']} engine)")
        for split, metrics in summary["metrics"].items():
            click.echo(f"{split:<6}" + "  ".join(f"{name} {value:.4f}" for name, value in metrics.items()))
        if "weights" in summary:
            click.echo("weights: " + "  ".join(f"{name}={spoken_weights(value)}"
                                                for name, value in summary["weights"].items()))
        stopping = summary.get("early_stopping")
        if stopping:
            ended = (f"stopped after epoch {stopping['stopped_epoch']}" if stopping["stopped_epoch"]
                     else "trained every epoch")
            click.echo(f"early stopping: {ended}; the weights are epoch {stopping['best_epoch']}'s, the best "
                       f"{stopping['monitor']} ({stopping['best']:.4f})")
        click.echo(f"run folder: {summary['run_dir']}")
    for warning in summary["warnings"]:
        click.echo(f"warning: {warning}", err=True)


def points_replace_images(recipe: str | None, dataset: str | None, model: str | None) -> bool:
    """Whether fit's --data is MNIST-format data (for an image recipe, set or network) rather than a CSV of points."""
    from beanstrain.data import is_image_dataset
    from beanstrain.models import get_network
    from beanstrain.recipes import load_recipe

    if dataset is not None:
        return is_image_dataset(dataset)
    if recipe is not None:
        return is_image_dataset(load_recipe(recipe).dataset)
    return model is not None and get_network(model).takes != "feature vectors"


@cli.command("eval", context_settings=CONTEXT)
@click.argument("target", required=False, metavar="[RECIPE|RUN_DIR]")
@out_option()
@click.option("--min-accuracy", type=float, help="Exit 1 when test accuracy is below this (0 to 1).")
@data_option("Evaluate image runs on this data's test split instead.")
@json_option("Print one JSON object on stdout.")
@backend_option()
def eval_command(target, out, min_accuracy, data_path, as_json, backend):
    """Evaluate a trained run on its test data and write eval.json into its folder.

    Takes the newest finished run of RECIPE under --out, or the run folder
    given (the newest finished run of any recipe when neither is given).
    With --min-accuracy it is a CI gate: exit 1 below the bar.

    \b
    beanstrain eval beans4-hidden2 --min-accuracy 0.9
    beanstrain eval runs/beans4-hidden2/20261123-153012-1 --json
    """
    from beanstrain.evaluation import eval_run

    use_backend(backend)
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
@data_option("Look only here: a .npz or a folder of the four IDX files.")
@json_option("Print one JSON list instead of text.")
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


# A point may start with a minus sign (-2,1.5): an unknown "option" is taken as a point or a file.
@cli.command(context_settings={**CONTEXT, "ignore_unknown_options": True})
@click.argument("images", nargs=-1, metavar="IMAGE...|POINT...")
@click.option("--run", "target", metavar="RECIPE|RUN_DIR",
              help="The newest finished run of RECIPE, or a run folder (default: the newest finished run "
                   "trained on images, or for points on a generated set).")
@click.option("--points", "points_file", metavar="FILE.csv", type=click.Path(dir_okay=False),
              help="Points to ask about, one a row, its values separated by commas (a header row is skipped).")
@out_option()
@click.option("--invert/--no-invert", default=None,
              help="Force inverting the image or not (default: invert when the border is lighter than "
                   "mid-grey, i.e. a dark digit on light paper).")
@json_option("Print one JSON list, one entry per image or point.")
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Save a picture here: each file, the 28x28 image the network saw, and its probability bars.")
@backend_option()
def predict(images, target, points_file, out, invert, as_json, plot, backend):
    """Ask a trained run about new inputs: your own images (PNG, BMP or JPEG, any size) for an image run, or
    points (1.0,0.3: one number per input) for a run on a generated set.

    Each image is brought to MNIST's form the way MNIST was made: grey,
    inverted when it is dark on light, the paper's grain and specks taken off,
    the ink fitted into 20x20 keeping its shape and placed so that its centre
    of mass is the middle of the 28x28 frame (for a Fashion-MNIST run, fitted
    to 28 and centred, as that set was made). Each point goes through the run's
    own input features and network, and is answered with the regression value,
    or the class probability and the class (by name where the set has names).
    A file or point that cannot be read gets a one-line error; the others are
    still answered, and the command exits 1 at the end.

    \b
    beanstrain predict my_digit.png --run mnist-lenet
    beanstrain predict *.png --run runs/mnist-lenet/20261123-153012-1 --json
    beanstrain predict shirt.jpg --run fashion-lenet --plot shirt-bars.png
    beanstrain predict --run beans4-hidden2 1.0,0.3 0.2,1.7
    beanstrain predict --run gender-softmax2 0,0,0
    beanstrain predict --run spiral-features --points beans.csv --json
    """
    # Image files given to a run on a generated set go on to the images' path, which refuses them in one line.
    files_given = bool(images) and all(Path(text).is_file() for text in images)
    points = (takes_points(target, out) and not files_given) if target else \
        any(looks_like_point(text) for text in images)
    if points or points_file:
        use_backend(backend)
        _predict_points(list(images), points_file, target, out, invert, as_json, plot)
        return
    if not images:
        raise UsageError("give IMAGE files for an image run, or POINTs (such as 1.0,0.3) or --points FILE.csv for a "
                         "run on a generated set")
    from beanstrain.predict import check_plot_path, plot_prediction, predict_images

    plot_path = check_plot_path(plot)
    use_backend(backend)
    prediction = predict_images(list(images), target, out=out, invert=invert)
    print_prediction(prediction, as_json, lambda result: f"{result['file']}: {result['label']} (probability "
                     f"{result['probability']:.4f}{', inverted' if result['inverted'] else ''})")
    if plot_path and plot_prediction(prediction, plot_path) and not as_json:
        click.echo(f"picture: {plot_path}")
    if prediction.failed:
        sys.exit(1)


def print_prediction(prediction, as_json: bool, describe) -> None:
    """A prediction's answers: one JSON list, or the run and a line each (`describe(result)`); an input that
    could not be answered is an error line on stderr either way."""
    if as_json:
        emit_json(prediction.results)
    else:
        click.echo(f"run: {prediction.run_dir} ({prediction.dataset})")
    for result in prediction.results:
        if "error" in result:
            click.echo(f"Error: {result['error']}", err=True)
        elif not as_json:
            click.echo(describe(result))


def _predict_points(texts, points_file, target, out, invert, as_json, plot):
    """`predict` for a run on a generated set: each point's answer, a line or a JSON entry each."""
    from beanstrain.points import point_line, predict_points

    given = [flag for flag, value in (("--invert/--no-invert", invert), ("--plot", plot)) if value is not None]
    if given:
        raise UsageError(f"{' and '.join(given)} {'are' if len(given) > 1 else 'is'} for images, not points")
    prediction = predict_points(texts, points_file, target, out)
    print_prediction(prediction, as_json, point_line)
    if prediction.failed:
        sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("recipe", required=False)
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUES",
              help="A recipe key and its values: comma-separated, or A..B for integers (both ends included). "
                   "Repeat for more keys; the sweep runs every combination.")
@click.option("--address",
              help="Run on this Ray cluster (auto, or HOST:PORT) instead of starting Ray here; beanstrain must be "
                   "installed on every node, and --out must be an absolute path to storage every node sees.")
@click.option("--parallel", type=int, help="Most trials at once (default: one per CPU core); each trial's "
                                            "TensorFlow threads are limited to its share of the CPUs.")
@out_option("Folder for the run folders and sweeps/ (with --address: shared storage, an absolute path).")
@click.option("--min-accuracy", type=float, help="Exit 1 unless the trials reach this test accuracy (0 to 1).")
@click.option("--min-fraction", type=click.FloatRange(0, 1),
              help="The fraction of trials that must reach --min-accuracy (default 1: every trial).")
@click.option("--resume", "resume_dir", type=click.Path(path_type=Path), metavar="SWEEP_DIR",
              help="Run the trials of this sweep that did not finish; interrupted ones continue from their "
                   "checkpoints.")
@click.option("--max-trials", type=int, default=MAX_TRIALS, show_default=True,
              help="The most trials a grid may have; a larger one is refused before anything starts.")
@quiet_option("No line per trial.")
@json_option("Print one JSON object on stdout when done; everything else goes to stderr.")
@data_option("MNIST-format data every trial of an image recipe trains on: a .npz or a "
                                          "folder of the four IDX files (with --address, a path every node sees).")
@backend_option()
@click.pass_context
def sweep(ctx, recipe, settings, address, parallel, out, min_accuracy, min_fraction, resume_dir, max_trials, quiet,
          as_json, data_path, backend):
    """Train RECIPE once for every combination of the --set values, on Ray, each trial an ordinary run.

    Needs Ray (pip install "beanstrain[sweep]"). Without --address, Ray starts
    on this machine inside the command and stops with it. Every trial gets its
    own run folder under --out, so eval, predict and compare work on it; the
    sweep's folder, OUT/sweeps/<recipe>-<time>-<n>/, holds sweep.json (the grid,
    each trial's settings, run folder, state and metrics), results.csv and
    sweep.png. Trials train on CPUs. A trial that fails or diverges is recorded
    and the others go on; the command then exits 1 if one failed (diverging is
    a result, not a failure). Ctrl-C stops the running trials after their epoch,
    with a checkpoint, and exits 130; --resume runs what did not finish. With
    --min-accuracy it is a CI gate: exit 1 unless enough trials reach the bar.
    With --address (a Ray cluster started with `ray start`; every node and this
    command need RAY_AUTH_MODE=token and the cluster's token) each trial's line
    names the node it ran on; docs/sweeps-and-pages.md sets a cluster up step by step.

    \b
    beanstrain sweep spiral-deep8 --set learning_rate=0.01,0.05,0.5 --set seed=0..4
    beanstrain sweep beans4-hidden2 --set seed=0..9 --min-accuracy 0.9
    beanstrain sweep beans4-hidden2 --set seed=0..9 --min-accuracy 0.9 --min-fraction 0.8
    beanstrain sweep mnist-lenet --set seed=0..3 --address auto --out /shared/runs
    beanstrain sweep mnist-dense128 --set seed=0..3 --data ~/Downloads/mnist.npz
    beanstrain sweep --resume runs/sweeps/spiral-deep8-20261124-120000-1
    """
    from beanstrain.ray_driver import resume_sweep, run_sweep
    from beanstrain.sweep import describe, node_text, resume_command

    if resume_dir is not None:
        given = [f"--{name}" for name, value in (("set", settings), ("address", address), ("data", data_path))
                 if value]
        given += ["RECIPE"] * (recipe is not None)
        given += ["--out"] * (ctx.get_parameter_source("out") != click.core.ParameterSource.DEFAULT)
        if given:
            raise UsageError(f"--resume runs a sweep as it was recorded; drop {', '.join(given)}")
        result = resume_sweep(resume_dir, parallel, min_accuracy, min_fraction, quiet, backend)
    elif recipe is None:
        raise UsageError("give a RECIPE (see `beanstrain list`) and its --set values, or --resume SWEEP_DIR")
    else:
        result = run_sweep(recipe, list(settings), out, address, parallel, min_accuracy, min_fraction, quiet, data_path,
                           backend, max_trials)
    if as_json:
        emit_json(result)
    else:
        for trial in result["trials"]:
            test = trial.get("test") or {}
            metrics = "  ".join(f"{name} {value:.4f}" for name, value in test.items()) or trial.get("error") or ""
            where = f"  on {node_text(trial.get('node'))}" if address and trial.get("node") else ""
            click.echo(f"trial {trial['trial']:<3} {describe(trial['settings']):<40} {trial['state']:<12} {metrics}"
                       f"{where}")
        click.echo(f"sweep folder: {result['sweep_dir']}" + (f" (picture: {result['picture']})"
                                                            if result["picture"] else ""))
    if result["state"] != "finished":
        raise CommandError(Interrupted(f"sweep interrupted; resume with: {resume_command(result['sweep_dir'])}"))
    failed = [trial for trial in result["trials"] if trial["state"] == "failed"]
    if result["passed"] is False:
        click.echo(f"Error: {result['gate']}", err=True)
        sys.exit(1)
    if result["gate"]:
        click.echo(result["gate"], err=True)
    if failed:
        click.echo(f"Error: {len(failed)} trial{'s' * (len(failed) > 1)} failed: " + "; ".join(
            f"trial {trial['trial']} ({describe(trial['settings'])}): {trial['error']}" for trial in failed), err=True)
        sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("targets", nargs=-1, required=True, metavar="RUN_OR_RECIPE...")
@out_option()
@click.option("--metric", help="The per-epoch metric to draw, a history.csv column every run has (default: "
                               "test_accuracy, else the first of val_accuracy, test_loss, val_loss, accuracy, "
                               "loss they share).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the picture here (a .png file): the metric per epoch, one labelled line per run.")
@click.option("--animate", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.gif|FILE.mp4",
              help="Race the runs in one animation, frame by frame by optimizer step: their paths on one cost "
                   "picture (slope and neuron lessons), or their boundaries side by side (2-D sets).")
@click.option("--train", is_flag=True,
              help="First train each recipe named that has no finished run under --out (with its own settings).")
@json_option("Print the table as one JSON list, one entry per run.")
def compare(targets, out, metric, plot, animate, train, as_json):
    """Compare finished runs: a table of their final metrics and a picture of one metric per epoch (above it,
    each run's decision boundary with its hidden units' lines, when the runs share one 2-D data set).

    Each RUN_OR_RECIPE is a run folder, or a recipe name for its newest
    finished run under --out. Runs are labelled by what differs between them
    (the recipe, the learning rate, the mapping, the seed...). Runs whose
    histories have different columns are compared on the columns they share.

    \b
    beanstrain compare mnist-levels-linear mnist-levels-ltp --plot levels.png
    beanstrain compare beans4-hidden1 beans4-hidden2 beans4-hidden3 --plot widths.png
    beanstrain compare runs/beans4-hidden2/20261123-153012-1 runs/beans4-hidden2/20261123-160101-1
    beanstrain compare beans4-hidden2 spiral-deep8 --metric test_loss --json
    beanstrain compare beans1-sgd beans1-minibatch beans1-batch --train --animate batches.gif
    """
    from beanstrain.compare import choose_metric, load_runs, shared_boundaries, table_rows, table_text, train_missing

    plot_path = _plot_file(plot)
    if animate:
        from beanstrain.plots.race import check_animate_file

        check_animate_file(animate.expanduser())
    if train:
        train_missing(list(targets), out)
    compared = load_runs(list(targets), out)
    chosen = choose_metric(compared, metric)
    if plot_path:
        from beanstrain.plots.compare import draw_comparison

        draw_comparison(compared, chosen, plot_path, shared_boundaries(compared))
    drawn = None
    if animate:
        from beanstrain.plots.race import write_race

        drawn = write_race(compared, animate.expanduser())
    if as_json:
        emit_json(table_rows(compared))
        return
    for line in table_text(compared):
        click.echo(line)
    if plot_path:
        click.echo(f"picture: {plot_path} ({chosen} per epoch)")
    if drawn:
        click.echo(f"animation: {animate} ({'one cost picture' if drawn == 'cost' else 'boundaries side by side'}, "
                   "frame by frame by optimizer step)")


def _names(text: str) -> str | list[str]:
    """--activation tanh as "tanh", --activation tanh,relu as one per layer."""
    names = [name.strip() for name in text.split(",")]
    return names[0] if len(names) == 1 else names


def _plot_file(plot: Path | None) -> Path | None:
    """Refuse a --plot that is a folder or whose folder does not exist, before any run is read."""
    if plot is None:
        return None
    plot = plot.expanduser()
    if plot.is_dir():
        raise UsageError(f"--plot {plot} is a folder; give a file name such as compare.png")
    if not plot.parent.is_dir():
        raise UsageError(f"--plot {plot}: folder {plot.parent} does not exist")
    if plot.suffix.lower() != ".png":
        raise UsageError(f"--plot {plot}: the picture is a PNG; give a file name ending in .png, such as compare.png")
    return plot


@cli.command("check", context_settings=CONTEXT)
@click.argument("student_file", required=False, type=click.Path(path_type=Path), metavar="[MY_RULES.py]")
@click.option("--recipe", metavar="LESSON", help=f"The lesson it is for: {spoken_list(sorted(LESSONS))}.")
@click.option("--template", "template_recipe", metavar="LESSON",
              help="Print the lesson's starting file (signatures, docstrings, TODOs) instead of checking one.")
@click.option("--steps", type=int, default=DEFAULT_STEPS, show_default=True,
              help="The steps of the lesson's run to check, from the first.")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), metavar="REPORT.xml",
              help="Also write the result as JUnit XML, one test case per function, for an autograder or CI.")
@json_option("Print the result as one JSON object: passed, and per function the step, message and details.")
def check_command(student_file, recipe, template_recipe, steps, junit, as_json):
    """Check your own NumPy forward, gradients and update against the numpy engine, step by step.

    Your file defines forward(params, x), gradients(params, x, y) and
    update(params, grads, rate), as the lesson's template describes. Each
    runs on the recipe's own data and batches, given the engine's weights
    at each step (and update the engine's gradients), so each function is
    checked on its own: the first step and weight where it differs is
    shown, expected against got, and the loss's slope measured by finite
    differences through your forward tells a wrong gradient from a wrong
    forward pass. Your file runs in a process of its own, with a time and a
    memory limit; what it raises is shown trimmed to your file. Exit 0 when
    all agree, 1 when one differs or fails.

    \b
    beanstrain check --template beans3-backprop > my_rules.py
    beanstrain check my_rules.py --recipe beans3-backprop
    beanstrain check my_rules.py --recipe beans1-sgd --steps 500 --junit report.xml
    """
    from beanstrain.check_verdicts import report_text, result_json, write_junit
    from beanstrain.checker import check_file, template_text

    if template_recipe:
        if student_file or recipe:
            raise UsageError("--template prints a starting file; give it alone: "
                             f"beanstrain check --template {template_recipe} > my_rules.py")
        click.echo(template_text(template_recipe), nl=False)
        return
    if not student_file or not recipe:
        raise UsageError("give your file and its lesson: beanstrain check my_rules.py --recipe beans1-sgd "
                         "(start one with: beanstrain check --template beans1-sgd > my_rules.py)")
    result = check_file(student_file, recipe, steps)
    if junit:
        write_junit(junit, result)
    if as_json:
        emit_json(result_json(result))
    else:
        click.echo(report_text(result), nl=False)
    sys.exit(0 if result.passed else 1)


@cli.command("show", context_settings=CONTEXT)
@click.argument("target", required=False, metavar="[RUN_DIR|RECIPE]")
@out_option()
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
              help="Also draw the layer diagram with each layer's shapes (keras.utils.plot_model; needs pydot and "
                   "Graphviz).")
@json_option("Print one JSON object: layers, shapes, parameters, recipe, figures.")
def show_command(target, out, plot, as_json):
    """Show a finished run: its network's layers, output shapes and parameter counts (Keras's summary), the
    recipe it was trained with, and its final figures.

    RUN_DIR is a run folder; a recipe name stands for its newest finished run
    under --out, and no name for the newest of all.

    \b
    beanstrain show runs/beans4-hidden2/20261205-101500-1
    beanstrain show mnist-lenet --plot lenet.png
    beanstrain show beans4-hidden2 --json
    """
    from beanstrain.show import show_run, show_text

    shown = show_run(target, out, plot.expanduser() if plot else None)
    if as_json:
        emit_json(shown)
    else:
        click.echo(show_text(shown), nl=False)


@cli.command("export", context_settings=CONTEXT)
@click.argument("target", required=False, metavar="[RUN_DIR|RECIPE]")
@click.option("--format", "format_name", required=True, type=click.Choice(sorted(EXPORT_FORMATS)),
              help="saved_model: a TensorFlow SavedModel folder (TF Serving, tf.saved_model.load); onnx: for "
                   "onnxruntime and most other runtimes (pip install \"beanstrain[export-onnx]\"); tflite: "
                   "for phones and microcontrollers (LiteRT).")
@click.option("--out", "destination", type=click.Path(path_type=Path), metavar="PATH",
              help="Where to write it (default: the run folder's export/model.onnx, export/model.tflite or "
                   "export/saved_model).")
@click.option("--runs", "out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True,
              help="Folder of runs a recipe name is looked up in.")
@json_option("Print one JSON object: the path, its size, the runtime it was checked with, the largest difference.")
def export_command(target, format_name, destination, out, as_json):
    """Export a finished run's network for another program, and check it there.

    Keras writes the format (model.export); the file is then loaded by its
    own runtime (TensorFlow's SavedModel loader, onnxruntime, the TFLite
    interpreter) and its predictions are compared with the run's model on
    the run's test inputs. Only an export that agrees is put in place:
    nothing is left behind by one that fails.

    \b
    beanstrain export runs/beans4-hidden2/20261205-101500-1 --format onnx
    beanstrain export beans4-hidden2 --format tflite --out hidden2.tflite
    beanstrain export mnist-lenet --format saved_model --json
    """
    from beanstrain.export import export_run

    done = export_run(target, format_name, out, destination.expanduser() if destination else None)
    if as_json:
        emit_json(done)
    else:
        click.echo(f"{done['format']}: {done['path']} ({done['bytes']:,} bytes); checked with {done['checked_with']} "
                   f"on {done['checked_samples']} test inputs, largest difference {done['max_difference']:.2g}")


@cli.command("step", context_settings=CONTEXT)
@click.argument("target", metavar="RECIPE|RUN_DIR")
@click.option("--at", "at", type=int, default=1, show_default=True, metavar="K",
              help="Which optimizer step of the run to work: 1 is the first, from the initial weights.")
@click.option("--batch-size", type=int, help="Samples per step (default: the run's own).")
@click.option("--optimizer", type=click.Choice(sorted(RULES)),
              help="Work the step with this update rule instead of the recipe's (for one that trains with adam).")
@click.option("--learning-rate", type=float, help="The rule's rate (default: the recipe's).")
@click.option("--seed", type=int, help="The run's seed: its data, initial weights and batch order (default: the "
              "recipe's).")
@click.option("--layer", type=int, metavar="L", help="Only layer L's units and weights (1 is the first hidden "
              "layer): for a network with more weights than fit on a page.")
@click.option("--markdown", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.md",
              help="Also write the step as a page: each formula in LaTeX with its numbers substituted.")
@json_option("Print every number of the step as one JSON object instead.")
def step_command(target, at, batch_size, optimizer, learning_rate, seed, layer, markdown, as_json):
    """One optimizer step of a small network worked by hand: every number, as the course writes it.

    The batch (x, y); forward, each unit's z and a; the loss; backward, each
    partial derivative of the chain (dL/da, da/dz, dz/dw) and each weight's
    gradient as their product (summed over the batch); then the update rule
    applied to each weight: old weight, rate, gradient, new weight. Names are
    the course's: w12_1 is layer 1's weight from x1 to unit 2, b2_1 that
    unit's bias, z2_1 and a2_1 its input and output. The numbers are the
    numpy engine's for that step of that run (its initial weights, batch
    order and rule), so you can check a line of your own arithmetic against
    one line here.

    \b
    beanstrain step beans3-backprop                      # the 1-2-1 net's first step
    beanstrain step beans1-sgd --at 3 --markdown step3.md
    beanstrain step spiral-deep8 --layer 3 --at 50
    """
    from beanstrain.worked_step import as_markdown, as_text, work_step

    if at < 1:
        raise UsageError(f"--at counts steps from 1, got {at}")
    worked = work_step(target, at, batch_size, layer, optimizer, learning_rate, seed)
    if markdown:
        from beanstrain import files

        try:
            files.write_text(markdown, as_markdown(worked))
        except OSError as error:
            raise RunError(f"cannot write {markdown}: {error.strerror or error}") from None
    if as_json:
        emit_json(worked.as_json())
    else:
        click.echo(as_text(worked), nl=False)
        if markdown:
            click.echo(f"written: {markdown}")


@cli.command("runs", context_settings=CONTEXT)
@out_option()
@click.option("--recipe", help="Only the runs of this recipe.")
@click.option("--state", type=click.Choice(RUN_STATES),
              help="Only the runs in this state (damaged: folders that are not readable runs).")
@json_option("Print one JSON list, one object per run.")
def runs_command(out, recipe, state, as_json):
    """List the runs under --out: recipe, state, test accuracy (or loss), epochs, seconds, started, folder.

    Reads only each run's config.json and metrics.json, so it answers at
    once. A folder that is not a readable run is listed as damaged, with its
    problem. Newest first within each recipe.

    \b
    beanstrain runs
    beanstrain runs --recipe beans4-hidden2 --state finished
    beanstrain runs --out class-runs --json
    """
    from beanstrain.catalog import catalog, table_lines

    rows = catalog(out, recipe, state)
    if as_json:
        emit_json([row.as_json() for row in rows])
    elif not rows:
        which = f"{state + ' ' if state else ''}runs{f' of {recipe}' if recipe else ''}"
        click.echo(f"no {which} under {out}" + ("" if Path(out).is_dir() else " (no such folder)"))
    else:
        for line in table_lines(rows):
            click.echo(line.rstrip())


@cli.command("report", context_settings=CONTEXT)
@click.argument("run_dir", required=False, type=click.Path(path_type=Path), metavar="[RUN_DIR]")
@out_option("Folder of runs whose index.html is written (when no RUN_DIR is given).")
@click.option("--open", "open_page", is_flag=True, help="Open the page in the default browser, when there is one.")
def report_command(run_dir, out, open_page):
    """Write a run's page (RUN_DIR/report.html), or the index of every run under --out (--out/index.html).

    Every run writes its report.html when it ends; this rewrites it. The
    index has one card per run, grouped by recipe, newest first, linking
    each run's page (pages missing from older runs are written too). Pages
    are plain HTML beside the run's own pictures: they work offline.

    \b
    beanstrain report runs/beans4-hidden2/20261123-153012-1
    beanstrain report --out runs --open
    """
    from beanstrain.report import write_index, write_run_page

    if run_dir is not None:
        if not run_dir.is_dir():
            raise UsageError(f"{run_dir} is not a folder")
        page = write_run_page(run_dir)
    else:
        page = write_index(out)
    click.echo(f"page: {page}")
    if open_page:
        import webbrowser

        try:
            opened = webbrowser.open(page.resolve().as_uri())
        except webbrowser.Error:
            opened = False
        if not opened:
            click.echo(f"no browser found to open it; open {page} yourself", err=True)


def main():
    cli(prog_name="beanstrain")


if __name__ == "__main__":
    main()

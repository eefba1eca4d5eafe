"""`beanstrain show`: a finished run's network (layers, shapes, parameters), its recipe and its final figures.

    beanstrain show runs/beans4-hidden2/20261205-101500-1
    beanstrain show mnist-lenet --plot lenet.png        # the layer diagram, as the course's perceptron chapter draws it
    beanstrain show beans4-hidden2 --json

The layers are Keras's own summary of the saved model.keras; the recipe is the one config.json
recorded; the figures are metrics.json's.  `--plot` draws `keras.utils.plot_model` with each layer's
input and output shapes, which needs pydot (pip install "beanstrain[plot]") and Graphviz's `dot`
(apt-get install graphviz).
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from beanstrain import files, runs
from beanstrain.errors import UsageError


def check_plot(path: Path) -> None:
    """Refuse, before any model is loaded, a --plot that cannot be drawn: a wrong name or missing tools."""
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise UsageError(f"--plot {path}: give a file ending in .png, .svg or .pdf, such as model.png")
    if not path.parent.is_dir():
        raise UsageError(f"--plot {path}: folder {path.parent} does not exist")
    if importlib.util.find_spec("pydot") is None:
        raise UsageError("--plot needs pydot, which is not installed: pip install \"beanstrain[plot]\"")
    if shutil.which("dot") is None:
        raise UsageError("--plot needs Graphviz's dot program, which is not on PATH: apt-get install graphviz "
                         "(brew install graphviz on a Mac)")


def show_run(target: str, out: Path, plot: Path | None = None) -> dict:
    """What `show --json` prints: the run, its layers, its parameters, recipe and figures (and the plot's path)."""
    if plot is not None:
        check_plot(plot)
    run_dir = runs.resolve_run(target, out)
    config = files.read_json(run_dir / runs.CONFIG)
    runs.require_finished(run_dir, config)
    from beanstrain.backends import use_backend

    use_backend(config.get("backend", "tensorflow"))
    from beanstrain.evaluation import load_run_model

    model = load_run_model(run_dir, config)
    layers = [{"name": layer.name, "type": type(layer).__name__,
               "output_shape": _shape(layer), "parameters": int(layer.count_params())} for layer in model.layers]
    trainable = sum(int(weight.numpy().size) if hasattr(weight, "numpy") else int(weight.size)
                    for weight in model.trainable_weights)
    lines: list[str] = []
    model.summary(print_fn=lambda line, *_, **__: lines.append(line), line_length=80)
    metrics = files.read_json(run_dir / runs.METRICS) if (run_dir / runs.METRICS).is_file() else {}
    shown = {"run_dir": str(run_dir), "recipe": config.get("recipe", {}), "engine": config.get("engine"),
             "backend": config.get("backend", "tensorflow"), "layers": layers,
             "parameters": int(model.count_params()), "trainable_parameters": trainable,
             "input_shape": [None if side is None else int(side) for side in model.inputs[0].shape],
             "metrics": metrics, "summary": "\n".join(lines)}
    if plot is not None:
        from beanstrain.devices import load_keras

        keras = load_keras()
        keras.utils.plot_model(model, to_file=str(plot), show_shapes=True, show_layer_names=True,
                               show_layer_activations=True, dpi=96)
        shown["plot"] = str(plot)
    return shown


def _shape(layer) -> list:
    output = getattr(layer, "output", None)
    shape = getattr(output, "shape", None)
    return [] if shape is None else [None if side is None else int(side) for side in shape]


def show_text(shown: dict) -> str:
    """The summary, the recipe's settings and the final figures, for a person."""
    recipe = shown["recipe"]
    out = [f"run: {shown['run_dir']}", f"recipe: {recipe.get('name')} ({shown['engine']} engine on "
                                        f"{shown['backend']})", shown["summary"].rstrip(), "", "trained with:"]
    width = max((len(key) for key, value in recipe.items() if value not in (None, "", [])), default=0)
    for key, value in recipe.items():
        if value not in (None, "", []) and key not in ("name", "description"):
            out.append(f"  {key:<{width}}  {value}")
    metrics = shown["metrics"]
    if metrics:
        out += ["", "final figures:"]
        for split in ("train", "test", "val"):
            figures = metrics.get(split) or {}
            if figures:
                out.append(f"  {split:<5}  " + "  ".join(f"{name} {value:.4f}" for name, value in figures.items()))
        if metrics.get("epochs") is not None:
            out.append(f"  epochs {metrics['epochs']}, {metrics.get('train_seconds', 0):.1f} s of training")
    if shown.get("plot"):
        out += ["", f"layer diagram: {shown['plot']}"]
    return "\n".join(out) + "\n"

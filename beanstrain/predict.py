"""Classifying a person's own images with a network trained on MNIST or Fashion-MNIST.

    >>> import tempfile
    >>> from PIL import Image
    >>> from beanstrain.recipes import resolve_recipe
    >>> from beanstrain.training import fit_run
    >>> folder = Path(tempfile.mkdtemp())
    >>> pixels, labels = np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10
    >>> for picture, label in zip(pixels, labels):
    ...     picture[2 * label:2 * label + 8, 10:18] = 255      # a bright square per class
    >>> np.savez(folder / "squares.npz", x_train=pixels, y_train=labels, x_test=pixels, y_test=labels)
    >>> run = fit_run(resolve_recipe("mnist-dense128", {"epochs": 1}), out=folder / "runs", quiet=True,
    ...               data_path=str(folder / "squares.npz"))
    >>> Image.fromarray(255 - pixels[7]).save(folder / "seven.png")     # dark on light, as drawn on paper
    >>> _ = (folder / "notes.txt").write_text("not a picture")
    >>> prediction = predict_images([str(folder / "seven.png"), str(folder / "notes.txt")],
    ...                             target="mnist-dense128", out=folder / "runs")
    >>> sorted(prediction.results[0]), prediction.results[0]["inverted"]
    (['file', 'inverted', 'label', 'predicted', 'probabilities', 'probability'], True)
    >>> prediction.results[1]["error"]
    '.../notes.txt holds text, not a PNG, BMP or JPEG image; save the drawing as PNG or JPEG'

Each file is read by `digits.read_digit` (grey, inverted when dark on light
unless `invert` says otherwise, the paper and specks taken off, framed in
28x28 as the run's dataset was: MNIST's 20x20 box and centre of mass, or
Fashion-MNIST's full frame).  A file that
cannot be read gets an error entry and the others are still predicted.  The
model is the newest finished run of a recipe, or a run folder, or, when
neither is given, the newest finished run trained on images; its file is
checked against the SHA-256 recorded at training and loaded in Keras's safe
mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain import files, runs
from beanstrain.data import get_dataset, is_image_dataset
from beanstrain.data.digits import picture_thumbnail, read_digit
from beanstrain.errors import RunError, UsageError
from beanstrain.evaluation import load_run_model, predictor
from beanstrain.plots.images import plot_digit_predictions


@dataclass
class Prediction:
    """What `predict_images` found: the run used, its class names, and one result per file."""

    run_dir: Path
    dataset: str
    class_names: tuple[str, ...]
    results: list[dict]
    images: np.ndarray  # (N, 28, 28) of the files read, in the order of the results without errors

    @property
    def failed(self) -> list[dict]:
        return [result for result in self.results if "error" in result]


def find_image_run(target: str | None, out: Path) -> tuple[Path, dict]:
    """The run folder and config of the model to use; a run trained on a non-image set is refused."""
    if target:
        run_dir = runs.resolve_run(target, out)
        config = files.read_json(run_dir / runs.CONFIG)
        runs.require_finished(run_dir, config)  # a run folder named directly may be unfinished
    else:
        image_runs = [(run_dir, config) for run_dir, config in runs.finished_runs(out)
                      if is_image_dataset(config.get("recipe", {}).get("dataset", ""))]
        if not image_runs:
            raise runs.train_first("a network trained on images", out, "mnist-lenet")
        run_dir, config = image_runs[-1]
    dataset = config.get("recipe", {}).get("dataset", "")
    if not is_image_dataset(dataset):
        raise UsageError(f"{run_dir} was trained on {dataset or 'an unknown dataset'}, not on 28x28 images; "
                         "predict needs a run of mnist or fashion-mnist (e.g. --run mnist-lenet) for images, "
                         "and asks this run about points such as 1.0,0.3")
    return run_dir, config


def predict_images(paths: list[str], target: str | None, out: Path, invert: bool | None = None) -> Prediction:
    """Predict every readable file with one call of the network; unreadable files get an error entry."""
    run_dir, config = find_image_run(target, out)
    recipe = config["recipe"]
    class_names = get_dataset(recipe["dataset"]).class_names
    model = load_run_model(run_dir, config)
    results, images = [], []
    for file in paths:
        try:
            image, inverted = read_digit(file, invert=invert, dataset=recipe["dataset"])
        except (UsageError, RunError) as error:
            results.append({"file": str(file), "error": str(error)})
            continue
        results.append({"file": str(file), "inverted": inverted})
        images.append(image)
    images = np.asarray(images, dtype=np.float32).reshape(len(images), 28, 28)
    if len(images):
        probabilities = predictor(model, recipe["model"])(images[..., None])
        readable = (result for result in results if "error" not in result)
        for result, row in zip(readable, probabilities):
            predicted = int(np.argmax(row))
            inverted = result.pop("inverted")
            result.update(predicted=predicted, label=class_names[predicted], probability=float(row[predicted]),
                          probabilities=[float(value) for value in row], inverted=inverted)
    return Prediction(run_dir, recipe["dataset"], class_names, results, images)


def check_plot_path(plot: str | Path | None) -> Path | None:
    """Refuse a --plot whose folder does not exist, before any work starts."""
    if plot is None:
        return None
    path = Path(plot).expanduser()
    if path.is_dir():
        raise UsageError(f"--plot {path} is a folder; give a file name such as predictions.png")
    if not path.parent.is_dir():
        raise UsageError(f"--plot {path}: folder {path.parent} does not exist")
    return path


def plot_prediction(prediction: Prediction, path: Path) -> str | None:
    """The course's picture of the files read: each file, the 28x28 image the network saw, its bars (predicted red)."""
    readable = [result for result in prediction.results if "error" not in result]
    if not readable:
        return None
    probabilities = np.asarray([result["probabilities"] for result in readable])
    captions = [f"{Path(result['file']).name}: {result['label']} ({result['probability']:.2f})"
                for result in readable]
    pictures = [picture_thumbnail(result["file"]) for result in readable]
    plot_digit_predictions(prediction.images, probabilities, captions, prediction.class_names, path, pictures)
    return str(path)

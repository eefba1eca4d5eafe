"""Asking a trained network about new beans: points typed on the command line or read from a CSV file.

    beanstrain predict --run beans4-hidden2 1.0,0.3 0.2,1.7
    beanstrain predict --run gender-softmax2 0,0,0 --json
    beanstrain predict --run spiral-features --points beans.csv

Every Keras lesson of the course ends this way (the gender net's `model.predict([[0, 0, 0]])`).
Each point goes through the run's own network, input features included (they are its first
layer), and is answered with the regression value, or the class probabilities and the class
(by the set's class names where it has them: gender's female and male).  A point with the wrong
number of values, a non-number, NaN or inf gets a one-line error naming it; the others are still
answered.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain import files, runs
from beanstrain.data import get_dataset, is_image_dataset
from beanstrain.errors import UsageError
from beanstrain.evaluation import load_run_model, predictor
from beanstrain.tasks import BINARY, REGRESSION

# A --points file larger than this is refused before it is read: a person's beans, not a dataset.
MAX_POINTS_BYTES = 64 * 2**20


@dataclass
class PointPrediction:
    """What `predict_points` found: the run used and one result per point, in the order given."""

    run_dir: Path
    dataset: str
    task: str
    results: list[dict]

    @property
    def failed(self) -> list[dict]:
        return [result for result in self.results if "error" in result]


def looks_like_point(text: str) -> bool:
    """Whether a command-line word is a point (numbers joined by commas) rather than an image file.

    >>> looks_like_point("1.0,0.3"), looks_like_point("-2"), looks_like_point("seven.png")
    (True, True, False)
    """
    if Path(text).exists():
        return False
    try:
        [float(part) for part in text.split(",")]
    except ValueError:
        return False
    return True


def parse_point(text: str, width: int, name: str) -> list[float]:
    """`1.0,0.3` as [1.0, 0.3], refused in one line naming the point when it does not fit the run.

    >>> parse_point("1, 0.5", 2, "point 1.0,0.5")
    [1.0, 0.5]
    >>> parse_point("1,nan", 2, "point 1,nan")
    Traceback (most recent call last):
    beanstrain.errors.UsageError: point 1,nan: 'nan' is not a finite number
    """
    parts = [part.strip() for part in text.split(",")]
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise UsageError(f"{name}: {part!r} is not a number") from None
        if not math.isfinite(value):
            raise UsageError(f"{name}: {part!r} is not a finite number")
        values.append(value)
    if len(values) != width:
        raise UsageError(f"{name}: {len(values)} value{'s' * (len(values) != 1)}, and the run's network takes "
                         f"{width} (one per input of its dataset)")
    return values


def read_points_file(path: str) -> list[tuple[str, str]]:
    """The rows of a CSV file as (name, text) pairs: `FILE row N` and the row's cells joined by commas.

    A first row with no number in it is a header and is skipped."""
    source = Path(path).expanduser()
    if not source.is_file():
        raise UsageError(f"--points {path}: no such file")
    if source.stat().st_size > MAX_POINTS_BYTES:
        raise UsageError(f"--points {path}: larger than {MAX_POINTS_BYTES // 2**20} MiB; give a file of a few points")
    try:
        with open(source, newline="", encoding="utf-8") as stream:
            rows = list(csv.reader(stream))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UsageError(f"--points {path}: cannot be read as CSV: {error}") from None
    points = []
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and not any(looks_like_point(cell) for cell in cells if cell):
            continue  # a header
        points.append((f"{path} row {number}", ",".join(cells)))
    if not points:
        raise UsageError(f"--points {path}: no points in it (one point a row, its values separated by commas)")
    return points


def takes_points(target: str, out: Path) -> bool:
    """Whether a run (a folder, or a recipe's newest finished run) was trained on a generated set; reads config.json."""
    config = files.read_json(runs.resolve_run(target, out) / runs.CONFIG)
    return not is_image_dataset(config.get("recipe", {}).get("dataset", "mnist"))


def find_vector_run(target: str | None, out: Path) -> tuple[Path, dict]:
    """The run to ask: a run folder, the newest finished run of a recipe, else the newest on a generated set."""
    if target:
        run_dir = runs.resolve_run(target, out)
        config = files.read_json(run_dir / runs.CONFIG)
        runs.require_finished(run_dir, config)
    else:
        vector_runs = [(run_dir, config) for run_dir, config in runs.finished_runs(out)
                       if not is_image_dataset(config.get("recipe", {}).get("dataset", "mnist"))]
        if not vector_runs:
            raise runs.train_first("a network trained on a generated set", out, "beans4-hidden2")
        run_dir, config = vector_runs[-1]
    dataset = config.get("recipe", {}).get("dataset", "")
    if is_image_dataset(dataset) or not dataset:
        raise UsageError(f"{run_dir} was trained on {dataset or 'an unknown dataset'}, which takes images: give "
                         "image files, or a run of a generated set (e.g. --run beans4-hidden2) for points")
    return run_dir, config


def answer(output: np.ndarray, task: str, class_names) -> dict:
    """One point's answer: the value, or the class probabilities, the class and its name."""
    if task == REGRESSION:
        return {"value": float(output[0])}
    probabilities = [1.0 - float(output[0]), float(output[0])] if task == BINARY else [float(p) for p in output]
    predicted = int(np.argmax(probabilities))
    label = class_names[predicted] if predicted < len(class_names) else str(predicted)
    return {"probabilities": probabilities, "predicted": predicted, "label": label,
            "probability": probabilities[predicted]}


def predict_points(texts: list[str], points_file: str | None, target: str | None, out: Path) -> PointPrediction:
    """Every readable point through the run's network in one call; a bad point gets an error entry."""
    named = [(f"point {text}", text) for text in texts]
    if points_file:
        named += read_points_file(points_file)
    run_dir, config = find_vector_run(target, out)
    recipe = config["recipe"]
    dataset = get_dataset(recipe["dataset"])
    results, rows = [], []
    for name, text in named:
        try:
            rows.append(parse_point(text, dataset.inputs, name))
            results.append({"point": text})
        except UsageError as error:
            results.append({"point": text, "error": str(error)})
    if rows:
        outputs = predictor(load_run_model(run_dir, config), recipe["model"])(np.asarray(rows, np.float32))
        answered = (result for result in results if "error" not in result)
        for result, row, output in zip(answered, rows, outputs):
            result.update(input=row, **answer(output, dataset.task, dataset.class_names))
    return PointPrediction(run_dir, recipe["dataset"], dataset.task, results)


def point_line(result: dict) -> str:
    """A point's answer as one line: `1.0,0.3: class 1 (probability 0.9731)`, `0,0,0: male (...)`, `0.5: 0.6012`."""
    if "value" in result:
        return f"{result['point']}: {result['value']:.4f}"
    label = result["label"]
    named = label if not label.isdigit() else f"class {label}"
    return f"{result['point']}: {named} (probability {result['probability']:.4f})"

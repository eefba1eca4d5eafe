"""How much accuracy `beanstrain predict` keeps when test images are saved as a person would give them.

    python benchmarks/drawn_digits.py --work /tmp/drawn                          # train once, then predict
    python benchmarks/drawn_digits.py --work /tmp/drawn --source /tmp/old-tree   # the same files, older code

MNIST is not on this machine, so real Fashion-MNIST (same format) stands in:
8,000 training and 2,000 test images in a .npz, trained with

    beanstrain fit RECIPE --data FORM.npz --optimizer adam --learning-rate 0.001 --batch-size 128 --epochs 10

(--learning-rate 0.001 is Keras's default for Adam: without it the recipe's 0.05,
meant for plain SGD, applies to Adam too and the network stays at 10%.)

Two forms of the same images are trained and measured:

- `as-is`: Fashion-MNIST as published, trained as `fashion-lenet`.  Clothes
  are not framed like MNIST's digits: each fills the 28x28 frame on its longer
  side and is centred by its box, and `predict` frames a picture that way for
  a Fashion-MNIST run (the code before that framing used MNIST's for both).
- `mnist-form`: each image brought to MNIST's construction first
  (tests/drawings.py `mnist_form`: the box of the ink brighter than half the
  brightest pixel fitted into 20x20, then moved by whole pixels so its centre
  of mass lands on pixel (14, 14), brightest pixel 255), the form every MNIST
  digit has, trained as `mnist-lenet`.  This is the case `predict` is for.
- `font-digits`: not Fashion-MNIST but the tests' digit-like images (the
  digits 0-9 in Pillow's font, slanted, turned and thickened, in MNIST's
  form), 8,000 and 2,000 of them, trained as `mnist-lenet`: digit shapes with
  strokes, but printed, not handwritten, and so far easier than MNIST.

The first 200 test images (`--shown`) of each form are saved the two ways a person gives them
(tests/drawings.py): a paint program's 112x112 drawing (dark on white, PNG or
BMP, some RGB) and a phone photo (150-400 px, grey noisy paper, off centre at
45-80% of the frame, strokes thicker or thinner, blue ink, JPEG quality 70).
Each kind goes through `beanstrain predict --run RUN --json` in one process;
the figure to compare is the network's own accuracy on the same 200 28x28
images.  `--source DIR` runs predict from another checkout (PYTHONPATH=DIR),
on the same trained runs and the same files, for a before/after comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPOSITORY = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPOSITORY / "tests"))  # the renderings shared with the tests

from drawings import as_drawing, as_photo, mnist_form, mnist_like_digits  # noqa: E402

FASHION = Path("/usr/share/datasets/fashion-mnist")
TRAIN, TEST = 8000, 2000
FORMS = ["as-is", "mnist-form", "font-digits"]
FIT = ["--optimizer", "adam", "--learning-rate", "0.001", "--batch-size", "128", "--epochs", "10"]


def fashion_splits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from beanstrain.data.formats import read_idx

    return (read_idx(FASHION / "train-images-idx3-ubyte.gz", "images")[:TRAIN],
            read_idx(FASHION / "train-labels-idx1-ubyte.gz", "labels")[:TRAIN],
            read_idx(FASHION / "t10k-images-idx3-ubyte.gz", "images")[:TEST],
            read_idx(FASHION / "t10k-labels-idx1-ubyte.gz", "labels")[:TEST])


def prepare(work: Path, form: str, shown: int) -> dict:
    """The .npz, the trained run, the files and the network's own predictions for one form (kept in `work`)."""
    folder = work / form
    record_path = folder / "prepared.json"
    if record_path.is_file():
        return json.loads(record_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    if form == "font-digits":
        rng = np.random.default_rng(0)
        x_train, y_train = mnist_like_digits(TRAIN, rng)
        x_test, y_test = mnist_like_digits(TEST, rng)
    else:
        x_train, y_train, x_test, y_test = fashion_splits()
    if form == "mnist-form":
        x_train = np.stack([mnist_form(image) for image in x_train])
        x_test = np.stack([mnist_form(image) for image in x_test])
    data = folder / "data.npz"
    np.savez(data, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    recipe = "fashion-lenet" if form == "as-is" else "mnist-lenet"  # predict frames by the run's dataset
    command = [sys.executable, "-m", "beanstrain.cli", "fit", recipe, "--data", str(data), *FIT,
               "--out", str(folder / "runs"), "--quiet", "--json"]
    summary = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    run_dir = Path(summary["run_dir"])
    rng = np.random.default_rng(0)
    files = {"drawing": [], "photo": []}
    for index, image in enumerate(x_test[:shown]):
        drawing = folder / "drawings" / f"{index:03d}.{'png' if index % 2 else 'bmp'}"
        drawing.parent.mkdir(exist_ok=True)
        files["drawing"].append(str(as_drawing(image, drawing, rng)))
        photo = folder / "photos" / f"{index:03d}.jpg"
        photo.parent.mkdir(exist_ok=True)
        files["photo"].append(str(as_photo(image, photo, rng)))
    record = {"run_dir": str(run_dir), "test_accuracy": summary["metrics"]["test"]["accuracy"],
              "labels": y_test[:shown].tolist(), "own": own_predictions(run_dir, x_test[:shown]).tolist(),
              "files": files, "summary": summary}
    record_path.write_text(json.dumps(record))
    return record


def own_predictions(run_dir: Path, images: np.ndarray) -> np.ndarray:
    from beanstrain.evaluation import load_run_model, predictor

    config = json.loads((run_dir / "config.json").read_text())
    model = load_run_model(run_dir, config)
    return predictor(model, config["recipe"]["model"])(images[..., None] / 255.0).argmax(axis=1)


def predicted(files: list[str], run_dir: str, source: Path | None) -> np.ndarray:
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    if source:  # `python -m` looks in its working folder first, so the other checkout's package is found
        environment["PYTHONPATH"] = str(source)
    command = [sys.executable, "-m", "beanstrain.cli", "predict", *files, "--run", run_dir, "--json"]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=source or REPOSITORY)
    if not finished.stdout.strip():
        sys.exit(f"predict failed:\n{finished.stderr[-3000:]}")
    return np.array([entry.get("predicted", -1) for entry in json.loads(finished.stdout)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the data, runs and files (reused)")
    parser.add_argument("--source", type=Path, help="run predict from this checkout instead of this one")
    parser.add_argument("--forms", nargs="+", default=FORMS, choices=FORMS)
    parser.add_argument("--shown", type=int, default=200,
                        help="test images saved each way (at most 2,000; a --work folder keeps its first count)")
    arguments = parser.parse_args()
    print(f"predict from: {arguments.source or REPOSITORY}")
    print("| form | saved as | predict | the network on the same images | predict = network | network, all 2,000 |")
    print("|---|---|---|---|---|---|")
    for form in arguments.forms:
        record = prepare(arguments.work, form, arguments.shown)
        shown = len(record["labels"])
        labels, own = np.array(record["labels"]), np.array(record["own"])
        for kind, files in record["files"].items():
            guesses = predicted(files, record["run_dir"], arguments.source)
            print(f"| {form} | {kind} | {(guesses == labels).sum()}/{shown} ({(guesses == labels).mean():.1%}) "
                  f"| {(own == labels).sum()}/{shown} ({(own == labels).mean():.1%}) "
                  f"| {(guesses == own).mean():.1%} | {record['test_accuracy']:.4f} |", flush=True)


if __name__ == "__main__":
    main()

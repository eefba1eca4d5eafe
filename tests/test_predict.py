"""`beanstrain predict` through the CLI, with the session's LeNet run trained on blobs (conftest.blob_run).

The blob network never saw a drawn digit, so most tests here check what
predict does with files (reading, inverting, errors, JSON, the picture).
Whether a drawing is read as the digit it shows is checked with a LeNet
trained on digit-like images in MNIST's form (tests/drawings.py): its
predictions on drawings and photos of its test digits must agree with its
predictions on the 28x28 digits themselves.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from drawings import as_drawing, as_photo, mnist_like_digits
from mnist_files import write_npz
from PIL import Image, ImageDraw

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

pytestmark = pytest.mark.usefixtures("isolated")


def draw_seven(path: Path, ink: int, paper: int) -> Path:
    picture = Image.new("L", (90, 110), paper)
    ImageDraw.Draw(picture).line([(15, 15), (75, 15), (35, 100)], fill=ink, width=9)
    picture.save(path)
    return path


@pytest.fixture
def sevens(tmp_path):
    """The same seven, light on dark (like MNIST) and dark on light (like a drawing on paper)."""
    return (draw_seven(tmp_path / "light.png", ink=255, paper=0),
            draw_seven(tmp_path / "dark.png", ink=0, paper=255))


def predict_json(invoke, blob_run, *args, exit_code=0):
    result = invoke("predict", *args, "--out", blob_run["out"], "--json", exit_code=exit_code)
    return json.loads(result.stdout), result


def test_json_shape(invoke, blob_run, sevens):
    results, _ = predict_json(invoke, blob_run, *sevens, "--run", "mnist-lenet")
    assert [entry["file"] for entry in results] == [str(path) for path in sevens]
    for entry in results:
        assert set(entry) == {"file", "predicted", "label", "probability", "probabilities", "inverted"}
        assert len(entry["probabilities"]) == 10 and sum(entry["probabilities"]) == pytest.approx(1.0, abs=1e-4)
        assert entry["predicted"] == int(np.argmax(entry["probabilities"]))
        assert entry["label"] == str(entry["predicted"])
        assert entry["probability"] == max(entry["probabilities"])


def test_dark_on_light_is_inverted_to_the_same_prediction(invoke, blob_run, sevens):
    light, dark = predict_json(invoke, blob_run, *sevens)[0]  # no --run: the newest image run
    assert light["inverted"] is False and dark["inverted"] is True
    np.testing.assert_allclose(light["probabilities"], dark["probabilities"], atol=1e-5)


def test_invert_flags_override_the_rule(invoke, blob_run, sevens):
    kept = predict_json(invoke, blob_run, sevens[1], "--no-invert")[0][0]
    inverted = predict_json(invoke, blob_run, sevens[1])[0][0]
    assert kept["inverted"] is False
    assert not np.allclose(kept["probabilities"], inverted["probabilities"], atol=1e-4)
    assert predict_json(invoke, blob_run, sevens[0], "--invert")[0][0]["inverted"] is True


def test_a_bad_file_among_good_ones(invoke, blob_run, sevens, tmp_path):
    notes = tmp_path / "notes.png"
    notes.write_text("not a picture")
    results, result = predict_json(invoke, blob_run, sevens[0], notes, tmp_path / "missing.png", sevens[1],
                                   exit_code=1)
    assert [("error" in entry) for entry in results] == [False, True, True, False]
    assert results[1] == {"file": str(notes), "error": f"{notes} holds text, not a PNG, BMP or JPEG image; "
                                                       "save the drawing as PNG or JPEG"}
    assert results[2]["error"] == f"{tmp_path / 'missing.png'} does not exist"
    assert result.stderr.count("Error: ") == 2


def test_text_output_and_plot(invoke, blob_run, sevens, tmp_path):
    picture = tmp_path / "bars.png"
    result = invoke("predict", *sevens, "--out", blob_run["out"], "--plot", picture)
    lines = result.stdout.splitlines()
    assert lines[0] == f"run: {blob_run['summary']['run_dir']} (mnist)"
    assert lines[1].startswith(f"{sevens[0]}: ") and "probability" in lines[1] and "inverted" not in lines[1]
    assert lines[2].endswith(", inverted)") and lines[3] == f"picture: {picture}"
    assert picture.read_bytes().startswith(PNG_MAGIC)
    assert not list(tmp_path.glob(".bars-*"))  # written atomically: no temporary file left behind


def test_plot_shows_each_picture_beside_what_the_network_saw(invoke, blob_run, sevens, tmp_path, monkeypatch):
    from beanstrain import predict
    from beanstrain.data.digits import picture_thumbnail, read_digit
    from beanstrain.plots import images as image_plots

    drawn = {}
    draw = image_plots.plot_digit_predictions

    def keep_and_draw(images, probabilities, captions, class_names, path, pictures=None):
        drawn.update(images=images, probabilities=probabilities, captions=captions, pictures=pictures)
        return draw(images, probabilities, captions, class_names, path, pictures)

    monkeypatch.setattr(predict, "plot_digit_predictions", keep_and_draw)
    picture = tmp_path / "bars.png"
    results, _ = predict_json(invoke, blob_run, *sevens, "--plot", picture)
    for index, path in enumerate(sevens):
        np.testing.assert_array_equal(drawn["images"][index], read_digit(path)[0])  # the network's own input
        np.testing.assert_array_equal(drawn["pictures"][index], picture_thumbnail(path))  # the file as given
        np.testing.assert_allclose(drawn["probabilities"][index], results[index]["probabilities"])
    assert drawn["captions"][1].startswith("dark.png: ")
    assert Image.open(picture).size[0] > 1000  # two files: picture, input and bars, twice across


def test_plot_into_a_missing_folder_is_refused_first(invoke, blob_run, sevens, tmp_path):
    result = invoke("predict", sevens[0], "--out", blob_run["out"], "--plot", tmp_path / "no" / "bars.png",
                    exit_code=2)
    assert "does not exist" in result.output


def test_a_run_on_a_toy_set_is_refused(invoke, fit_json, sevens, tmp_path):
    fit_json("beans7-neuron", "--epochs", "1")
    result = invoke("predict", sevens[0], "--run", "beans7-neuron", "--out", tmp_path / "runs", exit_code=2)
    assert "was trained on beans7, not on 28x28 images" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_no_image_run_names_the_command(invoke, sevens, tmp_path):
    result = invoke("predict", sevens[0], "--out", tmp_path / "runs", exit_code=1)
    assert "train one first: beanstrain fit mnist-lenet" in result.output


def test_a_changed_model_file_is_refused(invoke, blob_run, sevens, tmp_path):
    run_dir = tmp_path / "runs" / "mnist-lenet" / "copy"
    shutil.copytree(blob_run["summary"]["run_dir"], run_dir)
    with open(run_dir / "model.keras", "ab") as model_file:
        model_file.write(b"\0")
    result = invoke("predict", sevens[0], "--run", run_dir, exit_code=1)
    assert "has changed since it was trained" in result.output


def test_fashion_runs_name_the_clothes(invoke, fit_json, blob_run, sevens, tmp_path, monkeypatch):
    from beanstrain import predict
    from beanstrain.data.digits import read_digit

    framed = []

    def read_and_keep(*args, **kwargs):
        framed.append(kwargs)
        return read_digit(*args, **kwargs)

    monkeypatch.setattr(predict, "read_digit", read_and_keep)
    summary = fit_json("--dataset", "fashion-mnist", "--model", "mlp512", "--epochs", "1", "--data", blob_run["data"])
    entry = json.loads(invoke("predict", sevens[0], "--run", summary["run_dir"], "--json").stdout)[0]
    assert framed[0]["dataset"] == "fashion-mnist"  # clothes are framed as Fashion-MNIST framed them
    fashion = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
               "Ankle boot")
    assert entry["label"] == fashion[entry["predicted"]]


def test_an_unfinished_run_folder_is_refused(invoke, blob_run, sevens, tmp_path):
    run_dir = tmp_path / "runs" / "mnist-lenet" / "copy"
    shutil.copytree(blob_run["summary"]["run_dir"], run_dir)
    config = json.loads((run_dir / "config.json").read_text())
    (run_dir / "config.json").write_text(json.dumps({**config, "state": "interrupted"}))
    result = invoke("predict", sevens[0], "--run", run_dir, exit_code=1)
    assert "is interrupted, not finished: continue it with: beanstrain fit --resume" in result.output


# --- drawings of digits: what the network sees must be the digit it learned --------------------

AGREEMENT_FILES = 40  # test digits drawn each way


@pytest.fixture(scope="module")
def digit_run(runner, tmp_path_factory):
    """mnist-lenet trained on digit-like images in MNIST's form; returns its run folder and unseen test digits."""
    from beanstrain.cli import cli

    rng = np.random.default_rng(8)
    train_images, train_labels = mnist_like_digits(2000, rng)
    test_images, test_labels = mnist_like_digits(AGREEMENT_FILES, rng)
    root = tmp_path_factory.mktemp("digit-run")
    data = write_npz(root / "digits.npz", (train_images, train_labels, test_images, test_labels))
    result = runner.invoke(cli, ["fit", "mnist-lenet", "--data", str(data), "--optimizer", "adam",
                                 "--learning-rate", "0.002", "--batch-size", "64", "--epochs", "2",
                                 "--validation-split", "0", "--out", str(root / "runs"), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    return {"run_dir": Path(json.loads(result.stdout)["run_dir"]), "images": test_images, "labels": test_labels}


def model_predictions(run_dir: Path, images: np.ndarray) -> np.ndarray:
    """The network's own classes for 28x28 uint8 images: the oracle a drawing of the same digit must match."""
    from beanstrain.evaluation import load_run_model, predictor

    config = json.loads((run_dir / "config.json").read_text())
    model = load_run_model(run_dir, config)
    return predictor(model, config["recipe"]["model"])(images[..., None] / 255.0).argmax(axis=1)


@pytest.mark.parametrize("kind", ["drawing", "photo"])
def test_drawings_are_predicted_as_the_digits_themselves(invoke, digit_run, tmp_path, kind):
    rng = np.random.default_rng(1)
    files = []
    for index, image in enumerate(digit_run["images"]):
        if kind == "drawing":
            files.append(as_drawing(image, tmp_path / f"{index}.{'png' if index % 2 else 'bmp'}", rng))
        else:
            files.append(as_photo(image, tmp_path / f"{index}.jpg", rng, specks=index % 3))
    own = model_predictions(digit_run["run_dir"], digit_run["images"])
    assert (own == digit_run["labels"]).mean() >= 0.9  # the network learned the digits
    results = json.loads(invoke("predict", *files, "--run", digit_run["run_dir"], "--json").stdout)
    predicted = np.array([entry["predicted"] for entry in results])
    assert all(entry["inverted"] for entry in results)
    assert (predicted == own).mean() >= 0.95

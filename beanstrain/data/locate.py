"""Where the image sets are looked for, how to get them, and loading them: `beanstrain data`'s answers.

    >>> import tempfile, numpy as np
    >>> folder = Path(tempfile.mkdtemp())
    >>> pixels, labels = np.zeros((3, 28, 28), np.uint8), np.array([7, 2, 1], np.uint8)
    >>> np.savez(folder / "mnist.npz", x_train=pixels, y_train=labels, x_test=pixels[:2], y_test=labels[:2])
    >>> data = load_images("mnist", data_path=str(folder / "mnist.npz"))
    >>> data.x_train.shape, data.y_test, data.source == str(folder / "mnist.npz")
    ((3, 28, 28), array([7, 2], dtype=uint8), True)
    >>> describe_images("mnist", data_path=str(folder))["train"]     # a folder holding mnist.npz will do
    3
    >>> search_places("fashion-mnist")[-1]                           # the last place looked in
    PosixPath('/usr/share/datasets/fashion-mnist')

A dataset is either a Keras-style `.npz` (keys x_train, y_train, x_test,
y_test) or a folder of the four IDX files, each optionally gzipped (read by
`beanstrain.data.formats`).  Places are tried in this order and the first
that exists wins:

1. `data_path` (the CLI's --data): an .npz, a folder of IDX files, or a
   folder holding either under its usual name (e.g. a copy of Keras's cache),
2. the folder named by $BEANSTRAIN_DATA,
3. Keras's cache ($KERAS_HOME/datasets, else ~/.keras/datasets),
4. system folders (Debian's dataset-fashion-mnist package).

Keras's own download is tried only when none of them holds the dataset.
Every problem is a `RunError` naming the file and what is wrong.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain.data.formats import IDX_FILES, NPZ_KEYS, checked_split, count_images, idx_path, read_idx, read_npz
from beanstrain.data.registry import get_dataset
from beanstrain.errors import RunError, UsageError, first_line

HOW_TO_PASS = "pass --data PATH (a .npz or a folder of the four IDX files)"


@dataclass(frozen=True)
class ImageData:
    """Both splits as loaded: uint8 pixels (or floats already in [0, 1]) and uint8 labels 0-9."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # the path read, or "keras download"


def _entry(name: str):
    """The registry's entry for an image set (`beanstrain.data.ImageSet`); other names are refused."""

    return get_dataset(name, "image")


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    keras_home = os.environ.get("KERAS_HOME")
    return (Path(keras_home).expanduser() if keras_home else Path.home() / ".keras") / "datasets"


def search_places(name: str, data_path: str | None = None) -> list[Path]:
    """Every place looked in for `name`, in search order (for messages and `beanstrain data`)."""
    entry = _entry(name)
    places = [Path(data_path).expanduser()] if data_path else []
    if os.environ.get("BEANSTRAIN_DATA"):
        folder = Path(os.environ["BEANSTRAIN_DATA"]).expanduser()
        places += [folder / entry.keras_file, folder / f"{name}.npz", folder / name]
    places.append(keras_cache_dir() / entry.keras_file)
    places += [Path(folder) for folder in entry.system_dirs]
    return list(dict.fromkeys(places))  # mnist's keras_file is also "<name>.npz": list it once


def find_images(name: str, data_path: str | None = None) -> Path | None:
    """The first place holding `name` (an .npz file or a folder of the four IDX files), else None.

    A `data_path` the user gave is never skipped: if it does not exist that is a
    UsageError, and a folder without the files is a RunError saying which are missing.
    """
    entry = _entry(name)
    if data_path:
        return _check_given_path(entry, Path(data_path).expanduser())
    return next((place for place in search_places(name) if _holds_dataset(place)), None)


def load_images(name: str, data_path: str | None = None, download: bool = True) -> ImageData:
    """Find, read and check `name`; Keras's download is the last resort when nothing is found."""
    entry = _entry(name)
    place = find_images(name, data_path)
    if place is None:
        arrays = _download_or_explain(entry, search_places(name, data_path), download)
        source = "keras download"
        wheres = [f"{key} from Keras's {name} download" for key in NPZ_KEYS]
    elif place.is_file():
        arrays, source = read_npz(place), str(place)
        wheres = [f"{place} ({key})" for key in NPZ_KEYS]
    else:
        paths = [idx_path(place, base) for base in IDX_FILES.values()]
        arrays = tuple(read_idx(path, part) for path, (_, part) in zip(paths, IDX_FILES))
        source, wheres = str(place), [str(path) for path in paths]
    x_train, y_train = checked_split(*arrays[:2], *wheres[:2])
    x_test, y_test = checked_split(*arrays[2:], *wheres[2:])
    return ImageData(name, x_train, y_train, x_test, y_test, source)


def describe_images(name: str, data_path: str | None = None) -> dict:
    """Where `name` is and how many images each split holds, from headers only (quick):
    `{"name", "found", "looked_in", "train", "test", "problem"}`.

    'problem' is the one-line RunError message when the file found cannot be read.
    """
    info = {"name": name, "found": None, "looked_in": [str(p) for p in search_places(name, data_path)],
            "train": None, "test": None, "problem": None}
    try:
        place = find_images(name, data_path)
        if place is not None:
            info["found"] = str(place)
            info["train"], info["test"] = count_images(place)
    except RunError as error:
        info["problem"] = str(error)
    return info


def keras_download(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras's own loader for `name` (it downloads into Keras's cache); tests replace this."""
    import keras  # late: only a run that found no file pays for importing Keras

    loader = getattr(keras.datasets, name.replace("-", "_"))
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return x_train, y_train, x_test, y_test


def _download_or_explain(image_set, places: list[Path], download: bool) -> tuple:
    reason = "downloading was not allowed"
    if download:
        try:
            return keras_download(image_set.name)
        except Exception as error:  # no network, no Keras, a bad cache: all end in the one message below
            reason = f"Keras's download failed ({first_line(error)})"
    looked = ", ".join(str(place) for place in places)
    raise RunError(f"{image_set.name} was not found (looked in {looked}) and {reason}; {how_to_get(image_set.name)}")


def how_to_get(name: str) -> str:
    """How to put `name` where it is looked for, on a machine with no network (one line)."""
    image_set = _entry(name)
    cache = keras_cache_dir()
    if image_set.keras_file.endswith(".npz"):
        copy = f"copy {image_set.keras_file} to {cache}/"
    else:
        copy = f"copy the four {image_set.name} IDX .gz files to {cache / image_set.keras_file}/"
    if image_set.system_dirs:
        copy += f", install Debian's dataset-{image_set.name} package,"
    return f"{copy} or {HOW_TO_PASS}"


def _check_given_path(image_set, path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"data path {path} does not exist; "
                         "give a .npz file or a folder of the four IDX files")
    if path.is_file() or _holds_dataset(path):
        return path
    # A folder that holds the usual file names (e.g. the Keras cache folder) is fine too.
    for inner in (image_set.keras_file, f"{image_set.name}.npz", image_set.name):
        if _holds_dataset(path / inner):
            return path / inner
    missing = [base + "[.gz]" for base in IDX_FILES.values() if idx_path(path, base) is None]
    raise RunError(f"{path} holds neither {image_set.keras_file} nor the four IDX files "
                   f"(missing {', '.join(missing)})")


def _holds_dataset(place: Path) -> bool:
    if place.is_file():
        return True
    return place.is_dir() and all(idx_path(place, base) for base in IDX_FILES.values())



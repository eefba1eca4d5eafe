"""MNIST-format image datasets: where they are looked for, how they are read and checked.

    >>> data = load_images("fashion-mnist")     # the first copy found, else Keras's download
    >>> data.x_train.shape, data.source
    ((60000, 28, 28), '/usr/share/datasets/fashion-mnist')
    >>> load_images("mnist", data_path="~/Downloads/mnist.npz", download=False)

A dataset is either a Keras-style `.npz` (keys x_train, y_train, x_test,
y_test) or a folder of the four IDX files, each optionally gzipped.  Places
are tried in this order and the first that exists wins:

1. `data_path` (the CLI's --data): an .npz, a folder of IDX files, or a
   folder holding either under its usual name (e.g. a copy of Keras's cache),
2. the folder named by $BEANSTRAIN_DATA,
3. Keras's cache ($KERAS_HOME/datasets, else ~/.keras/datasets),
4. system folders (Debian's dataset-fashion-mnist package).

Keras's own download is tried only when none of them holds the dataset.
These files come from the internet and from students' disks, so nothing in
them is trusted: every problem is a `RunError` naming the file and what is
wrong, and a corrupt or hostile file (a gzip bomb, a header that lies) never
costs more memory than its header declares, which is itself capped.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain.errors import RunError, UsageError, first_line, lookup

IDX_FILES = {  # (split, part) -> file name in the original distribution; each may end in .gz
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IMAGE_SIDE = 28
IDX_DIMENSIONS = {"images": 3, "labels": 1}
IDX_UNSIGNED_BYTE = 0x08
GZIP_MAGIC = b"\x1f\x8b"
# Real MNIST is 47 MB of pixels; a header claiming more than this is corrupt or hostile.
MAX_DATA_BYTES = 2**31
READ_CHUNK_BYTES = 2**20
HOW_TO_PASS = "pass --data PATH (a .npz or a folder of the four IDX files)"


@dataclass(frozen=True)
class ImageSet:
    """One entry of the registry: what the dataset is and where copies of it live."""

    name: str
    summary: str
    class_names: tuple[str, ...]
    keras_file: str  # its name in Keras's cache: an .npz file or a folder of gzipped IDX files
    system_dirs: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImageData:
    """Both splits as loaded: uint8 pixels (or floats already in [0, 1]) and uint8 labels 0-9."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # the path read, or "keras download"


IMAGE_DATASETS = {
    "mnist": ImageSet(
        name="mnist",
        summary="28x28 grey handwritten digits, 60,000 train / 10,000 test",
        class_names=tuple(str(digit) for digit in range(10)),
        keras_file="mnist.npz",
    ),
    "fashion-mnist": ImageSet(
        name="fashion-mnist",
        summary="28x28 grey photos of clothes in 10 classes, 60,000 train / 10,000 test",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                     "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        keras_file="fashion-mnist",
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded datasets: $KERAS_HOME/datasets, else ~/.keras/datasets."""
    keras_home = os.environ.get("KERAS_HOME")
    return (Path(keras_home).expanduser() if keras_home else Path.home() / ".keras") / "datasets"


def search_places(name: str, data_path: str | None = None) -> list[Path]:
    """Every place looked in for `name`, in search order (for messages and `beanstrain data`).

    >>> search_places("mnist")
    [PosixPath('/home/ada/.keras/datasets/mnist.npz')]
    """
    image_set = lookup("dataset", name, IMAGE_DATASETS)
    places = [Path(data_path).expanduser()] if data_path else []
    if os.environ.get("BEANSTRAIN_DATA"):
        folder = Path(os.environ["BEANSTRAIN_DATA"]).expanduser()
        places += [folder / image_set.keras_file, folder / f"{name}.npz", folder / name]
    places.append(keras_cache_dir() / image_set.keras_file)
    places += [Path(folder) for folder in image_set.system_dirs]
    return list(dict.fromkeys(places))  # mnist's keras_file is also "<name>.npz": list it once


def find_images(name: str, data_path: str | None = None) -> Path | None:
    """The first place holding `name` (an .npz file or a folder of the four IDX files), else None.

    A `data_path` the user gave is never skipped: if it does not exist that is a
    UsageError, and a folder without the files is a RunError saying which are missing.
    """
    image_set = lookup("dataset", name, IMAGE_DATASETS)
    if data_path:
        return _check_given_path(image_set, Path(data_path).expanduser())
    return next((place for place in search_places(name) if _holds_dataset(place)), None)


def load_images(name: str, data_path: str | None = None, download: bool = True) -> ImageData:
    """Find, read and check `name`; Keras's download is the last resort when nothing is found.

    >>> load_images("mnist", data_path="mnist-idx/").y_test[:5]
    array([7, 2, 1, 0, 4], dtype=uint8)
    """
    image_set = lookup("dataset", name, IMAGE_DATASETS)
    place = find_images(name, data_path)
    if place is None:
        arrays = _download_or_explain(image_set, search_places(name, data_path), download)
        source = "keras download"
        wheres = [f"{key} from Keras's {name} download" for key in NPZ_KEYS]
    elif place.is_file():
        arrays, source = read_npz(place), str(place)
        wheres = [f"{place} ({key})" for key in NPZ_KEYS]
    else:
        paths = [_idx_path(place, base) for base in IDX_FILES.values()]
        arrays = tuple(read_idx(path, part) for path, (_, part) in zip(paths, IDX_FILES))
        source, wheres = str(place), [str(path) for path in paths]
    x_train, y_train = _checked_split(*arrays[:2], *wheres[:2])
    x_test, y_test = _checked_split(*arrays[2:], *wheres[2:])
    return ImageData(name, x_train, y_train, x_test, y_test, source)


def describe_images(name: str, data_path: str | None = None) -> dict:
    """Where `name` is and how many images each split holds, from headers only (quick).

    >>> describe_images("fashion-mnist")
    {'name': 'fashion-mnist', 'found': '/usr/share/datasets/fashion-mnist', 'looked_in': [...],
     'train': 60000, 'test': 10000, 'problem': None}

    'problem' is the one-line RunError message when the file found cannot be read.
    """
    info = {"name": name, "found": None, "looked_in": [str(p) for p in search_places(name, data_path)],
            "train": None, "test": None, "problem": None}
    try:
        place = find_images(name, data_path)
        if place is not None:
            info["found"] = str(place)
            info["train"], info["test"] = _count_images(place)
    except RunError as error:
        info["problem"] = str(error)
    return info


def read_idx(path: Path, part: str | None = None) -> np.ndarray:
    """One IDX file (plain or gzipped, told apart by content) as a uint8 array.

    `part` ("images" or "labels") demands that kind of file.  The header's sizes
    are checked before the body is read, and never more than the declared size
    plus one byte is decompressed, so a gzip bomb costs nothing.

    >>> read_idx(Path("t10k-labels-idx1-ubyte.gz"), "labels").shape
    (10000,)
    """
    path = Path(path)
    with _reading(path) as stream:
        dimensions = _read_idx_header(stream, path, part)
        what = "images" if len(dimensions) == 3 else "labels"
        declared = math.prod(dimensions)
        body = _read_at_most(stream, declared + 1)
    if len(body) < declared:
        raise RunError(f"{path}: truncated: expected {declared:,} bytes of {what}, found {len(body):,}")
    if len(body) > declared:
        raise RunError(f"{path}: has data after the {dimensions[0]:,} {what} its header declares; "
                       "the file is corrupt or not an IDX file")
    return np.frombuffer(body, dtype=np.uint8).reshape(dimensions)


def read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """x_train, y_train, x_test, y_test from a Keras-style .npz, never unpickling anything.

    >>> x_train, y_train, x_test, y_test = read_npz(Path("~/.keras/datasets/mnist.npz").expanduser())
    """
    path = Path(path)
    _npz_headers(path)  # refuses missing keys, object arrays and oversized arrays before loading
    try:
        with np.load(path, allow_pickle=False) as archive:
            return tuple(archive[key] for key in NPZ_KEYS)
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise RunError(f"{path}: is a damaged .npz archive ({first_line(error)})") from None


def keras_download(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Keras's own loader for `name` (it downloads into Keras's cache); tests replace this."""
    import keras  # late: only a run that found no file pays for importing Keras

    loader = getattr(keras.datasets, name.replace("-", "_"))
    (x_train, y_train), (x_test, y_test) = loader.load_data()
    return x_train, y_train, x_test, y_test


def _download_or_explain(image_set: ImageSet, places: list[Path], download: bool) -> tuple:
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
    image_set = lookup("dataset", name, IMAGE_DATASETS)
    cache = keras_cache_dir()
    if image_set.keras_file.endswith(".npz"):
        copy = f"copy {image_set.keras_file} to {cache}/"
    else:
        copy = f"copy the four {image_set.name} IDX .gz files to {cache / image_set.keras_file}/"
    if image_set.system_dirs:
        copy += f", install Debian's dataset-{image_set.name} package,"
    return f"{copy} or {HOW_TO_PASS}"


def _check_given_path(image_set: ImageSet, path: Path) -> Path:
    if not path.exists():
        raise UsageError(f"data path {path} does not exist; "
                         "give a .npz file or a folder of the four IDX files")
    if path.is_file() or _holds_dataset(path):
        return path
    # A folder that holds the usual file names (e.g. the Keras cache folder) is fine too.
    for inner in (image_set.keras_file, f"{image_set.name}.npz", image_set.name):
        if _holds_dataset(path / inner):
            return path / inner
    missing = [base + "[.gz]" for base in IDX_FILES.values() if _idx_path(path, base) is None]
    raise RunError(f"{path} holds neither {image_set.keras_file} nor the four IDX files "
                   f"(missing {', '.join(missing)})")


def _holds_dataset(place: Path) -> bool:
    if place.is_file():
        return True
    return place.is_dir() and all(_idx_path(place, base) for base in IDX_FILES.values())


def _idx_path(folder: Path, base: str) -> Path | None:
    """`folder/base`, else `folder/base.gz`, else None."""
    return next((path for path in (folder / base, folder / f"{base}.gz") if path.is_file()), None)


def _count_images(place: Path) -> tuple[int, int]:
    if place.is_file():
        headers = _npz_headers(place)
        return headers["x_train"][0][0], headers["x_test"][0][0]
    counts = []
    for base in (IDX_FILES["train", "images"], IDX_FILES["test", "images"]):
        path = _idx_path(place, base)
        with _reading(path) as stream:
            counts.append(_read_idx_header(stream, path, "images")[0])
    return counts[0], counts[1]


@contextlib.contextmanager
def _reading(path: Path):
    """`with _reading(path) as stream`: the file, decompressed when its content is gzip.

    Every failure of the file or of gzip becomes a one-line RunError naming it.
    """
    try:
        with open(path, "rb") as probe:
            gzipped = probe.read(2) == GZIP_MAGIC  # the content decides, not the name
        stream = gzip.open(path, "rb") if gzipped else open(path, "rb")
    except OSError as error:
        raise RunError(f"{path}: cannot be read ({error.strerror or error})") from None
    try:
        with stream:
            yield stream
    except EOFError:  # gzip's way of saying the compressed data stops before its end marker
        raise RunError(f"{path}: truncated gzip: the compressed data ends early") from None
    except (OSError, zlib.error) as error:
        raise RunError(f"{path}: corrupt gzip data ({first_line(error)})") from None


def _read_idx_header(stream, path: Path, part: str | None) -> tuple[int, ...]:
    magic = _read_at_most(stream, 4)
    if len(magic) < 4:
        raise RunError(f"{path}: too short to be an IDX file ({len(magic)} bytes)")
    wanted = [IDX_DIMENSIONS[part]] if part else [1, 3]
    if magic[:2] != b"\0\0" or magic[3] not in wanted:
        expected = " or ".join(f"0x{IDX_UNSIGNED_BYTE << 8 | ndim:08X}" for ndim in wanted)
        kind = f"an IDX {part} file" if part else "an IDX file"
        raise RunError(f"{path}: bad magic number 0x{magic.hex().upper()}; expected {expected} for {kind}")
    if magic[2] != IDX_UNSIGNED_BYTE:
        raise RunError(f"{path}: IDX data type 0x{magic[2]:02X} is not supported; "
                       "expected 0x08 (unsigned bytes)")
    ndim = magic[3]
    sizes = _read_at_most(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise RunError(f"{path}: truncated: the header ends after {4 + len(sizes)} bytes")
    dimensions = struct.unpack(f">{ndim}I", sizes)
    if ndim == 3 and dimensions[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise RunError(f"{path}: images are {dimensions[1]}x{dimensions[2]}; expected 28x28")
    if math.prod(dimensions) > MAX_DATA_BYTES:  # Python ints: no overflow
        what = "images" if ndim == 3 else "labels"
        raise RunError(f"{path}: header declares {dimensions[0]:,} {what}, more than the "
                       f"{MAX_DATA_BYTES:,} bytes this reader accepts; the header is corrupt")
    return dimensions


def _read_at_most(stream, limit: int) -> bytearray:
    """Up to `limit` bytes, read in chunks so memory follows the real content, not the request."""
    data = bytearray()
    while len(data) < limit:
        chunk = stream.read(min(READ_CHUNK_BYTES, limit - len(data)))
        if not chunk:
            break
        data += chunk
    return data


def _npz_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """Shape and dtype of each array, read from the .npy headers inside the zip (no data)."""
    with open(path, "rb") as probe:
        start = probe.read(6)
    if start.startswith(b"\x93NUMPY"):
        raise RunError(f"{path}: is a single .npy array; expected a .npz (np.savez) of {', '.join(NPZ_KEYS)}")
    if start[:3] == b"\0\0\x08" or start[:2] == GZIP_MAGIC:
        raise RunError(f"{path}: looks like one IDX file; pass the folder holding all four")
    if not start.startswith(b"PK"):
        raise RunError(f"{path}: is not a .npz file (not a zip archive)")
    headers = {}
    try:
        with zipfile.ZipFile(path) as archive:
            members = {member.removesuffix(".npy"): member for member in archive.namelist()}
            missing = [key for key in NPZ_KEYS if key not in members]
            if missing:
                held = ", ".join(sorted(members)) or "nothing"
                raise RunError(f"{path}: is missing {', '.join(missing)} (it holds {held})")
            for key in NPZ_KEYS:
                with archive.open(members[key]) as member:
                    version = np.lib.format.read_magic(member)
                    if version not in ((1, 0), (2, 0)):
                        raise RunError(f"{path}: {key} uses .npy format {version}, which is not supported")
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
                        else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read_header(member)
                headers[key] = (shape, dtype)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise RunError(f"{path}: is a damaged .npz archive ({first_line(error)})") from None
    for key, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise RunError(f"{path}: {key} holds pickled Python objects, which are never loaded; "
                           "save plain numeric arrays with np.savez")
        if math.prod(shape) * dtype.itemsize > MAX_DATA_BYTES:
            raise RunError(f"{path}: {key} declares shape {shape}, more than the "
                           f"{MAX_DATA_BYTES:,} bytes this reader accepts")
    return headers


def _checked_split(images, labels, images_where: str, labels_where: str):
    """The split's arrays, validated: 28x28 uint8 or [0, 1] floats, integer labels 0-9, counts equal."""
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise RunError(f"{images_where}: images have shape {images.shape}; expected (N, 28, 28)")
    if len(images) == 0:
        raise RunError(f"{images_where}: holds no images")
    if images.dtype.kind == "f":
        if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
            raise RunError(f"{images_where}: float pixels must be finite and in [0, 1]; "
                           f"found {images.min()} to {images.max()}")
        images = images.astype(np.float32, copy=False)
    elif images.dtype != np.uint8:
        raise RunError(f"{images_where}: pixels have dtype {images.dtype}; "
                       "expected uint8 (0-255) or floats scaled to [0, 1]")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise RunError(f"{labels_where}: labels have shape {labels.shape} and dtype {labels.dtype}; "
                       "expected (N,) integers 0-9 (not one-hot)")
    if len(labels) != len(images):
        raise RunError(f"{images_where} has {len(images):,} images but {labels_where} "
                       f"has {len(labels):,} labels")
    outside = np.flatnonzero((labels < 0) | (labels > 9))
    if outside.size:
        raise RunError(f"{labels_where}: label {labels[outside[0]]} at position {outside[0]} "
                       "is outside 0-9")
    return images, labels.astype(np.uint8, copy=False)

"""Reading MNIST-format files, bounded and checked: IDX files (plain or gzipped) and Keras-style .npz.

    >>> import tempfile, numpy as np
    >>> folder = Path(tempfile.mkdtemp())
    >>> labels = np.array([7, 2, 1], dtype=np.uint8)
    >>> _ = (folder / "labels-idx1-ubyte").write_bytes(b"\\0\\0\\x08\\x01" + (3).to_bytes(4, "big") + labels.tobytes())
    >>> read_idx(folder / "labels-idx1-ubyte", "labels")
    array([7, 2, 1], dtype=uint8)
    >>> read_idx(folder / "labels-idx1-ubyte", "images")
    Traceback (most recent call last):
    beanstrain.errors.RunError: ...: bad magic number 0x00000801; expected 0x00000803 for an IDX images file

These files come from the internet and from students' disks, so nothing in
them is trusted: every problem is a `RunError` naming the file and what is
wrong, and a corrupt or hostile file (a gzip bomb, a header that lies) never
costs more memory than its header declares, which is itself capped.  Where
the files are looked for is `beanstrain.data.locate`'s.
"""

from __future__ import annotations

import contextlib
import gzip
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from beanstrain.errors import RunError, first_line

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


def read_idx(path: Path, part: str | None = None) -> np.ndarray:
    """One IDX file (plain or gzipped, told apart by content) as a uint8 array.

    `part` ("images" or "labels") demands that kind of file.  The header's sizes
    are checked before the body is read, and never more than the declared size
    plus one byte is decompressed, so a gzip bomb costs nothing.  (The module's
    docstring shows one read.)
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

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "mnist.npz"
    >>> images, labels = np.zeros((2, 28, 28), np.uint8), np.array([5, 0], np.uint8)
    >>> np.savez(path, x_train=images, y_train=labels, x_test=images[:1], y_test=labels[:1])
    >>> [array.shape for array in read_npz(path)]
    [(2, 28, 28), (2,), (1, 28, 28), (1,)]
    """
    path = Path(path)
    _npz_headers(path)  # refuses missing keys, object arrays and oversized arrays before loading
    try:
        with np.load(path, allow_pickle=False) as archive:
            return tuple(archive[key] for key in NPZ_KEYS)
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as error:
        raise RunError(f"{path}: is a damaged .npz archive ({first_line(error)})") from None


def idx_path(folder: Path, base: str) -> Path | None:
    """`folder/base`, else `folder/base.gz`, else None."""
    return next((path for path in (folder / base, folder / f"{base}.gz") if path.is_file()), None)


def count_images(place: Path) -> tuple[int, int]:
    """Train and test image counts of an .npz file or a folder of IDX files, from headers only."""
    if place.is_file():
        headers = _npz_headers(place)
        return headers["x_train"][0][0], headers["x_test"][0][0]
    counts = []
    for base in (IDX_FILES["train", "images"], IDX_FILES["test", "images"]):
        path = idx_path(place, base)
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
        stream = gzip.open(path, "rb") if gzipped else open(path, "rb")  # noqa: SIM115 (closed below)
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


def checked_split(images, labels, images_where: str, labels_where: str):
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

"""A CSV file of a person's own points, read and checked, to stand in for a generated set.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "points.csv"
    >>> _ = path.write_text("x1,x2,y\\n0,0,0\\n0,1,1\\n1,0,1\\n1,1,0\\n")
    >>> table = read_points(str(path))
    >>> table.x.shape, table.task, table.class_names
    ((4, 2), 'binary', ())
    >>> train, test = split_rows(len(table.x), test_fraction=0.5, seed=0)
    >>> len(train), len(test)
    (2, 2)

The header names the columns: `x` for one input, or `x0, x1, ...` (or `x1, x2, ...`) for several, and `y`,
the target.  A `y` of numbers is a regression target, unless every value is 0 or 1 (two classes); a `y` of
words names the classes (two names: binary, more: one-hot classes, as the `gender` set gives).  Every
mistake is one line: a missing column, a non-number, NaN or inf, fewer than MIN_ROWS rows, a file larger
than the memory available, a label column with one class, a file that is not CSV.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain.data import memory
from beanstrain.errors import UsageError
from beanstrain.tasks import BINARY, MULTICLASS, REGRESSION

MIN_ROWS = 4  # two to train on and two to test on, at the default test fraction
# Reading holds the text, Python's rows of strings and the float arrays at once: measured with tracemalloc
# on a 2-input file, the peak is about 60 bytes of memory per byte of the file.
BYTES_PER_FILE_BYTE = 60
SPLIT_STREAM = 2  # the seed stream of the train/test split (0 and 1 draw a generated set's train and test)
_NUMBERED = re.compile(r"x(\d+)$")


@dataclass(frozen=True)
class PointsTable:
    """The points of a CSV file: inputs (N, inputs) float32, targets as a generated set of that task gives them."""

    x: np.ndarray
    y: np.ndarray
    task: str
    class_names: tuple[str, ...]
    columns: tuple[str, ...]  # the input columns, in order

    @property
    def num_classes(self) -> int:
        return max(2, len(self.class_names)) if self.task != REGRESSION else 1


def looks_like_path(name: str) -> bool:
    """Whether a dataset name is a file rather than a registered set: it has a suffix or a folder in it."""
    return "/" in name or "\\" in name or Path(name).suffix != ""


def read_points(path: str) -> PointsTable:
    """Read and check a CSV of points; every mistake is one `UsageError` naming the file (and row).

    The last few files read are kept, keyed by their size and time of change, since a run asks several times."""
    file = Path(path).expanduser()
    try:
        stat = file.stat()
    except OSError as error:
        raise UsageError(f"--data {path}: cannot be read: {error.strerror or error}") from None
    return _read_points(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _read_points(path: str, size: int, changed: int) -> PointsTable:
    file = Path(path).expanduser()
    label = f"--data {path}"
    if not file.is_file():
        raise UsageError(f"{label}: is not a file")
    available = memory.available_memory()
    if available is not None and size * BYTES_PER_FILE_BYTE > available:
        raise UsageError(f"{label}: a file of {memory.format_bytes(size)} needs about "
                         f"{memory.format_bytes(size * BYTES_PER_FILE_BYTE)} of memory to read, and this machine has "
                         f"{memory.format_bytes(available)} available; use fewer rows")
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise UsageError(f"{label}: cannot be read: {error.strerror or error}") from None
    if b"\0" in raw[:65536]:
        raise UsageError(f"{label}: is not a CSV file (it holds binary data); give a text file with a header "
                         "line such as x1,x2,y")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{label}: is not a CSV file (not UTF-8 text); give a text file with a header line "
                         "such as x1,x2,y") from None
    try:
        rows = [row for row in csv.reader(io.StringIO(text)) if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise UsageError(f"{label}: is not a CSV file: {error}") from None
    if not rows:
        raise UsageError(f"{label}: is empty; its first line names the columns, such as x1,x2,y")
    header = [cell.strip() for cell in rows[0]]
    columns = _input_columns(header, label)
    body = rows[1:]
    if len(body) < MIN_ROWS:
        raise UsageError(f"{label}: has {len(body)} rows of points; at least {MIN_ROWS} are needed (some to train "
                         "on, some to test on)")
    positions = [header.index(name) for name in columns]
    target = header.index("y")
    x = np.empty((len(body), len(columns)), np.float32)
    labels = []
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise UsageError(f"{label} line {number}: {len(row)} values, and the header names {len(header)} columns")
        for column, position in enumerate(positions):
            x[number - 2, column] = _finite(row[position], f"{label} line {number}, column {header[position]}")
        labels.append(row[target].strip())
    y, task, class_names = _targets(labels, label)
    return PointsTable(x, y, task, class_names, tuple(columns))


def _input_columns(header: list[str], label: str) -> list[str]:
    """The input columns' names in order: x alone, or x0, x1, ... (or x1, x2, ...), numbered without a gap."""
    if len(header) == 1 and any(mark in header[0] for mark in ";\t|"):
        raise UsageError(f"{label}: its header {header[0]!r} is one column; separate the columns with commas, "
                         "such as x1,x2,y")
    if all(_is_number(cell) for cell in header):
        raise UsageError(f"{label}: has no header; its first line must name the columns, such as x1,x2,y")
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise UsageError(f"{label}: column {duplicated[0]!r} appears twice in the header")
    if "y" not in header:
        raise UsageError(f"{label}: has no column y (the target); its header is {','.join(header)}")
    inputs = [name for name in header if name != "y"]
    unknown = [name for name in inputs if name != "x" and not _NUMBERED.match(name)]
    if unknown:
        raise UsageError(f"{label}: unknown column {unknown[0]!r}; the columns are x (or x0, x1, ...) and y")
    if not inputs:
        raise UsageError(f"{label}: has no input column; name it x, or x0, x1, ... for several")
    if inputs == ["x"]:
        return inputs
    if "x" in inputs:
        raise UsageError(f"{label}: column x goes alone; name several inputs x0, x1, ...")
    numbers = sorted(int(_NUMBERED.match(name).group(1)) for name in inputs)
    first = numbers[0] if numbers[0] in (0, 1) else 0
    expected = list(range(first, first + len(numbers)))
    missing = [f"x{number}" for number in expected if number not in numbers]
    if missing or numbers != expected:
        gap = missing[0] if missing else f"x{numbers[-1]}"
        raise UsageError(f"{label}: missing column {gap}; number the inputs x0, x1, ... (or x1, x2, ...) "
                         "without a gap")
    return [f"x{number}" for number in expected]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _finite(text: str, where: str) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"{where}: {text} is not a finite number; remove or fix the row")
    return value


def _targets(labels: list[str], label: str) -> tuple[np.ndarray, str, tuple[str, ...]]:
    """y as numbers (regression, or 0/1 for two classes) or as class names; a column of one class is refused."""
    numeric = [_is_number(text) for text in labels]
    if all(numeric):
        values = np.array([_finite(text, f"{label} line {number}, column y")
                           for number, text in enumerate(labels, start=2)], np.float64)
        if np.isin(values, (0.0, 1.0)).all():
            if len(np.unique(values)) < 2:
                raise UsageError(f"{label}: every y is {values[0]:g}, one class; a classifier needs both 0 and 1")
            return values.astype(np.float32), BINARY, ()
        if len(np.unique(values)) < 2:
            raise UsageError(f"{label}: every y is {values[0]:g}; there is nothing to learn")
        return values.astype(np.float32), REGRESSION, ()
    if any(numeric):
        first = numeric.index(True) if numeric.count(True) < numeric.count(False) else numeric.index(False)
        raise UsageError(f"{label} line {first + 2}, column y: {labels[first]!r} mixes with the other labels; "
                         "y is all numbers (a value, or 0/1) or all class names")
    if any(not text for text in labels):
        empty = labels.index("")
        raise UsageError(f"{label} line {empty + 2}, column y: the label is empty")
    names = tuple(sorted(set(labels)))
    if len(names) < 2:
        raise UsageError(f"{label}: every y is {names[0]!r}, one class; a classifier needs two or more")
    numbers = np.array([names.index(text) for text in labels], np.int64)
    if len(names) == 2:
        return numbers.astype(np.float32), BINARY, names
    return np.eye(len(names), dtype=np.float32)[numbers], MULTICLASS, names


def split_rows(rows: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows to train on and to test on, each in file order: a draw from the seed, at least one row each."""
    tested = min(rows - 1, max(1, round(rows * test_fraction)))
    order = np.random.default_rng(np.random.SeedSequence([seed, SPLIT_STREAM])).permutation(rows)
    return np.sort(order[tested:]), np.sort(order[:tested])

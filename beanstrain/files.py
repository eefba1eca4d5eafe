"""Writing files so that nothing is ever half-written, and reading back what was written.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> write_json(folder / "metrics.json", {"test": {"accuracy": 0.93}})
    >>> read_json(folder / "metrics.json")
    {'test': {'accuracy': 0.93}}
    >>> digest = write_with(folder / "notes.txt", lambda path: path.write_text("written by a library"))
    >>> digest == file_sha256(folder / "notes.txt")
    True

Every file goes to a temporary name in the same folder first and is moved
into place with `os.replace`, so a process killed at any moment leaves the
previous good file or none, never a truncated one.  `write_with` does the
same for libraries that write a file themselves (a Keras model, a NumPy
archive, a matplotlib figure).  The temporaries are hidden files,
`.<stem>-<8 characters>.<suffix>`; `remove_temporaries` deletes those a
killed process left behind.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from beanstrain.errors import RunError

# mkstemp creates files readable by their owner only; run files should get
# the permissions any other new file would.
_UMASK = os.umask(0)
os.umask(_UMASK)

# What tempfile.mkstemp(prefix=".<stem>-", suffix=".<ext>") names a file.
_TEMPORARY = re.compile(r"\.[\w.-]+-[a-z0-9_]{8}\.(json|csv|keras|png|npz)")


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path` (same suffix); move it onto `path` only if the block succeeds.

    An OSError on the way (a full disk, a read-only folder) leaves with `path` named in it
    (`written_file`), since the temporary name, or none at all, is what the writer saw.
    """
    path = Path(path)
    temporary = None
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=path.suffix, dir=path.parent)
        os.close(handle)
        temporary = Path(temporary)
        os.chmod(temporary, 0o666 & ~_UMASK)
        yield temporary
        os.replace(temporary, path)
    except OSError as error:
        if getattr(error, "written_file", None) is None:
            error.written_file = path
        raise
    finally:
        if temporary is not None:
            # Removing it must not replace the error that brought us here.
            with contextlib.suppress(OSError):
                Path(temporary).unlink(missing_ok=True)


def written_file(error: BaseException) -> Path | None:
    """The file whose atomic write failed with `error`, if it was one."""
    return getattr(error, "written_file", None)


def write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def json_text(data) -> str:
    """The text every JSON file of a run holds: indented, keys in the order given, a final newline."""
    return json.dumps(data, indent=2, sort_keys=False) + "\n"


def write_json(path: Path, data) -> None:
    write_text(path, json_text(data))


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunError(f"{path} is not readable JSON: {error}") from None


def write_csv(path: Path, rows: list[list]) -> None:
    """Rows of cells (the header first), comma-separated, one line each."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    write_text(path, buffer.getvalue())


def write_with(path: Path, write: Callable[[Path], object]) -> str:
    """`write(temporary)` fills a temporary file beside `path`, which then replaces `path`; returns its SHA-256."""
    with atomic_path(path) as temporary:
        write(temporary)
        digest = file_sha256(temporary)
    return digest


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def remove_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed process left behind (atomic_path names them `.<stem>-*`)."""
    for path in Path(folder).iterdir():
        if path.is_file() and _TEMPORARY.fullmatch(path.name):
            path.unlink(missing_ok=True)

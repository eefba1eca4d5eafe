"""The one way beanstrain makes and saves a matplotlib picture: the Agg backend (never a window),
a PNG written atomically.

    >>> plt = pyplot()
    >>> figure, axes = plt.subplots()
    >>> import tempfile; from pathlib import Path
    >>> save_figure(figure, Path(tempfile.mkdtemp()) / "empty.png")
    'empty.png'
"""

from __future__ import annotations

from pathlib import Path

from beanstrain import files


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> str:
    try:
        with files.atomic_path(path) as temporary:
            figure.savefig(temporary, dpi=100, bbox_inches="tight", format="png")
    finally:
        pyplot().close(figure)
    return path.name

"""The mappings from level to weight of a run on levels, every level marked, as the course plots them.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> plot_levels(100, "ltp-ltd", 0.8, folder / "levels.png", "fashion-mnist: dense128-nobias")
    'levels.png'

All three curves are drawn; the ones the run's mapping steps along are drawn
bold and say whether a weight that rose or one that fell takes its value
there.  Every run starts its weights at their levels' linear values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beanstrain.engines.levels import CURVES, GMAX, GMIN, get_mapping, grid
from beanstrain.plots.figure import pyplot, save_figure

CURVE_LABELS = {"linear": "linear", "potentiation": "potentiation (LTP)", "depression": "depression (LTD)"}


def role(curve: str, mapping: str) -> str:
    """What the run's mapping uses a curve for; every run starts its weights on the linear curve.

    >>> role("depression", "ltp-ltd"), role("potentiation", "ltp"), role("linear", "ltp")
    ('a weight that fell', 'every step', 'the starting values only')
    """
    entry = get_mapping(mapping)
    uses = [when for when, name in (("a weight that rose", entry.up), ("a weight that fell", entry.down))
            if name == curve]
    used = {0: "", 1: uses[0] if uses else "", 2: "every step"}[len(uses)]
    if curve == "linear":
        return f"{used} and the starting values" if used else "the starting values only"
    return used or "not used"


def plot_levels(levels: int, mapping: str, nonlinearity: float, path: Path, title: str) -> str:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(7, 5))
    steps = np.arange(levels + 1)
    marker_size = 3 if levels > 40 else 5
    for curve in CURVES:
        used = role(curve, mapping)
        stepped = used not in ("not used", "the starting values only")
        axes.plot(steps, grid(curve, levels, nonlinearity), marker="o",
                  markersize=marker_size if stepped else marker_size * 0.6, linewidth=2 if stepped else 0.8,
                  alpha=1.0 if stepped else 0.45, label=f"{CURVE_LABELS[curve]}: {used}")
    axes.axhline(GMIN, color="grey", linewidth=0.6, linestyle=":")
    axes.axhline(GMAX, color="grey", linewidth=0.6, linestyle=":")
    axes.set_xlim(-levels * 0.02, levels * 1.02)
    axes.set_ylim(GMIN - 0.1, GMAX + 0.1)
    axes.set_xlabel(f"level P (0 to {levels}); one step per epoch")
    axes.set_ylabel("weight G(P)")
    # Below the axes: inside, the legend would hide a curve wherever it went.
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), fontsize=9, title_fontsize=9,
                title=f"this run's mapping: '{mapping}', A = {nonlinearity:g}")
    axes.grid(alpha=0.3)
    axes.set_title(f"{title}: every weight on one of {levels + 1} levels")
    return save_figure(figure, path)

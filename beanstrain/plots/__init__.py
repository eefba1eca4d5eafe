"""The pictures beanstrain draws.

    figure.py     pyplot, save_figure: matplotlib's Agg backend and one atomic PNG writer for every picture
    pictures.py   PICTURES, RunOutputs, draw_run_pictures: which pictures a finished run gets
    toy.py, images.py, history.py, units.py, levels.py   the drawings (units.py: each unit's and weight's view)
    replay.py     the network's outputs over a grid at every snapshot, for the animation and the unit views
    animate.py    training.gif / training.mp4
    compare.py, sweep.py   the pictures of `beanstrain compare` and of a sweep

This package only re-exports; each name lives in the module above.
"""

from beanstrain.plots.figure import pyplot, save_figure
from beanstrain.plots.pictures import PICTURES, Picture, RunOutputs, draw_run_pictures

__all__ = ["PICTURES", "Picture", "RunOutputs", "draw_run_pictures", "pyplot", "save_figure"]

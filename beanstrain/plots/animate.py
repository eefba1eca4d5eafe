"""The course's training animation, from a run's trace: the fitted curve or the decision boundary, epoch by epoch.

    beanstrain fit --dataset beans4 --model hidden2                    # training.gif in the run folder
    beanstrain fit --dataset beans1 --model neuron --animation mp4     # training.mp4 (needs ffmpeg)

    >>> sorted(ANIMATIONS), ANIMATIONS["gif"].file
    (['gif', 'mp4', 'none'], 'training.gif')
    >>> check_animation("none")

One frame per snapshot of the trace (about 150), at `FPS` frames a second,
the last one held for `PAUSE_SECONDS`; each frame's title gives the epoch
(and the step, for traces taken inside epochs) and the training loss and
accuracy of the very weights it draws (`replay.snapshot_figures`).  For 1-D sets the prediction curve over
the scatter, for 2-D sets the predicted probability as an image with the
0.5 line over the points.  The figure is drawn once and each frame only
changes the curve's data or paints the probability image's pixels, which
is many times faster than a new `contourf` per frame; frames are small
(400x320) and quantized to a palette, so the GIF stays around a megabyte
and the frames held until it is written take a few tens of megabytes.

This module imports nothing heavy at the top: the command line reads its
choices (`ANIMATIONS`) for `--animation`.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beanstrain import files
from beanstrain.errors import UsageError, lookup
from beanstrain.plots.figure import pyplot
from beanstrain.plots.replay import hidden_unit_inputs
from beanstrain.plots.toy import CLASS_COLOURS, UNIT_COLOURS, unit_lines

FPS = 20  # GIF stores frame times in hundredths of a second: 20 fps is exactly 5 of them
PAUSE_SECONDS = 2.0  # the last frame is held this long before the loop starts again
FIGURE_INCHES, DPI = (5.0, 4.0), 80  # 400x320 pixels: even sides, as libx264 needs
BOUNDARY_LEVELS = 10  # colour steps of the probability image, as boundary.png's contour levels
TITLE_POINTS = 10
IMAGE_ALPHA = 0.75  # the probability image's colours over white, as in boundary.png


@dataclass(frozen=True)
class Animation:
    file: str | None  # what the run folder gets; None: nothing
    label: str  # a few words for --help
    needs: str | None = None  # a program that must be on PATH


ANIMATIONS: dict[str, Animation] = {
    "gif": Animation("training.gif", "an animated GIF (the default)"),
    "mp4": Animation("training.mp4", "an H.264 video, written by ffmpeg", needs="ffmpeg"),
    "none": Animation(None, "no animation"),
}


def animation_available(name: str) -> bool:
    needs = lookup("animation", name, ANIMATIONS).needs
    return needs is None or shutil.which(needs) is not None


def check_animation(name: str) -> None:
    """Refuse, before anything is trained, an animation whose writer is missing."""
    if not animation_available(name):
        needs = ANIMATIONS[name].needs
        raise UsageError(f"--animation {name} needs {needs}, which is not on PATH; install it "
                         f"(apt-get install {needs}) or use --animation gif")


def _title(run, frame: int) -> str:
    """The frame's epoch (and step inside an epoch), and the loss and accuracy of the weights it draws."""
    replay = run.replay
    epoch = replay.epochs[frame]
    shown = f"{epoch:.4f}".rstrip("0") if isinstance(epoch, float) else f"{epoch}"
    text = f"{run.dataset.name}: epoch {shown}"
    if replay.steps is not None and any(isinstance(value, float) for value in replay.epochs):  # taken by step
        text += f", step {replay.steps[frame]}"
    if replay.losses is None:
        return text + (" (initial weights)" if frame == 0 else "")
    text += f"   loss {replay.losses[frame]:.4f}"
    if replay.accuracies is not None:
        text += f"   accuracy {replay.accuracies[frame]:.2f}"
    return text


class _ProbabilityImage:
    """Paints P(class 1) straight into the frame's pixels inside the axes, in boundary.png's colour steps.

    The probability at each pixel is interpolated bilinearly between the four grid points around it, so the
    colour steps have smooth edges rather than the grid's blocks.  Each pixel's neighbours and shares are
    worked out once, and a frame interpolates separably (along the grid's rows, then between them) and
    looks its colours up in a table: a fraction of what matplotlib's `imshow` takes for the same image.
    """

    def __init__(self, axes, grid_shape, height: int):

        box = axes.get_window_extent()  # display pixels, origin at the bottom left
        self.columns = slice(int(np.ceil(box.x0)) + 1, int(np.floor(box.x1)) - 1)
        self.rows = slice(height - int(np.floor(box.y1)) + 1, height - int(np.ceil(box.y0)) - 1)
        rows, columns = grid_shape
        # Each pixel centre's place on the grid, whose first and last points lie on the axes' edges.
        across = (np.arange(self.columns.start, self.columns.stop) + 0.5 - box.x0) / box.width * (columns - 1)
        up = (height - np.arange(self.rows.start, self.rows.stop) - 0.5 - box.y0) / box.height * (rows - 1)
        self.grid_shape = (rows, columns)
        self.left = np.clip(np.floor(across).astype(int), 0, columns - 2)
        self.below = np.clip(np.floor(up).astype(int), 0, rows - 2)
        self.right, self.above = self.left + 1, self.below + 1
        self.right_share = np.clip(across - self.left, 0.0, 1.0).astype(np.float32)[None, :]
        self.up_share = np.clip(up - self.below, 0.0, 1.0).astype(np.float32)[:, None]
        colours = pyplot().get_cmap("RdBu_r", BOUNDARY_LEVELS)(np.arange(BOUNDARY_LEVELS))[:, :3]
        self.colours = np.round((IMAGE_ALPHA * colours + (1 - IMAGE_ALPHA)) * 255).astype(np.uint8)  # on white

    def paint(self, pixels, probability) -> None:
        grid = np.asarray(probability, np.float32).reshape(self.grid_shape) * BOUNDARY_LEVELS
        # Separably: along each grid row to the pixels' columns, then between rows to the pixels' rows.
        left = grid[:, self.left]
        across = grid[:, self.right]
        across -= left
        across *= self.right_share
        across += left
        smooth, upper = across[self.below], across[self.above]
        upper -= smooth
        upper *= self.up_share
        smooth += upper  # in place throughout: a frame allocates only what it must
        steps = smooth.astype(np.uint8)  # probabilities lie in 0..1, so these are 0..BOUNDARY_LEVELS
        np.minimum(steps, BOUNDARY_LEVELS - 1, out=steps)
        pixels[self.rows, self.columns, :3] = self.colours[steps]


def _scene(run, axes):
    """The parts of a frame that stay: the points, the axes' limits and labels; returns what changes."""

    replay, dataset = run.replay, run.dataset
    x, y = dataset.x_train, dataset.y_train
    if replay.two_inputs:
        grid_x, grid_y = replay.axes
        axes.set_xlim(grid_x.min(), grid_x.max())
        axes.set_ylim(grid_y.min(), grid_y.max())
        labels = y.argmax(axis=1) if y.ndim > 1 else y.round()
        for value, colour in enumerate(CLASS_COLOURS):
            chosen = labels == value
            axes.scatter(x[chosen, 0], x[chosen, 1], c=colour, s=14, edgecolors="black", linewidths=0.5)
        axes.set_xlabel("x0")
        axes.set_ylabel("x1")
        return list(axes.collections)  # the points: drawn over the image every frame
    (xs,) = replay.axes
    axes.scatter(x[:, 0], y.reshape(len(y), -1)[:, -1], s=12, c="tab:blue")
    (curve,) = axes.plot(xs, replay.outputs[0][:, -1], c="tab:red", linewidth=2)
    low = min(float(np.min(y)), float(replay.outputs[-1].min()))
    high = max(float(np.max(y)), float(replay.outputs[-1].max()))
    axes.set_ylim(low - 0.1 * (high - low + 1e-9), high + 0.1 * (high - low + 1e-9))
    axes.set_xlabel("size")
    axes.set_ylabel("toxicity" if dataset.task == "regression" else "P(toxic)")
    return [curve]


class _Title:
    """The frame's title, written with Pillow in matplotlib's own font: a tenth of the time matplotlib takes."""

    def __init__(self, figure, axes):
        from matplotlib import font_manager
        from PIL import ImageFont

        size = round(TITLE_POINTS * DPI / 72)
        self.font = ImageFont.truetype(font_manager.findfont(font_manager.FontProperties()), size)
        box = axes.get_window_extent()
        height = figure.bbox.height
        self.anchor = ((box.x0 + box.x1) / 2, height - box.y1 - size * 0.45)

    def write(self, picture, text: str) -> None:
        from PIL import ImageDraw

        ImageDraw.Draw(picture).text(self.anchor, text, font=self.font, fill=(0, 0, 0), anchor="ms")


def frames(run):
    """Every frame of the animation, as RGB Pillow images, drawn on one figure.

    Blitting: what stays (axes, ticks, labels) is drawn once; each frame restores it and draws only
    what changes: the image or the curve, the 0.5 line, the points over them; then the title.
    """
    from PIL import Image

    plt = pyplot()
    replay = run.replay
    figure, axes = plt.subplots(figsize=FIGURE_INCHES, dpi=DPI)
    changing = _scene(run, axes)
    # Laid out once, around the tick labels and axis labels the scene has; the top strip holds the title.
    figure.tight_layout(pad=0.5, rect=(0, 0, 1, 0.93))
    title = _Title(figure, axes)
    for artist in changing:
        artist.set_animated(True)
    axes.set_autoscale_on(False)
    canvas = figure.canvas
    canvas.draw()
    background = canvas.copy_from_bbox(figure.bbox)
    pixels = np.asarray(canvas.buffer_rgba())
    image = _ProbabilityImage(axes, replay.axes[0].shape, pixels.shape[0]) if replay.two_inputs else None
    if image is not None:
        # The 0.5 line: contourpy's lines (what `contour` computes) put into one collection made once,
        # rather than a new contour set each frame.
        from contourpy import contour_generator
        from matplotlib.collections import LineCollection

        grid_x, grid_y = replay.axes
        boundary = axes.add_collection(LineCollection([], colors="black", linewidths=1.2, animated=True))
        # Each hidden unit's line (its input 0) of a network of one hidden layer, moving as it trains.
        first = hidden_unit_inputs(replay.layers, run.trace.snapshots[0], replay.inputs)
        unit_collections = [] if first is None else [
            axes.add_collection(LineCollection([], colors=UNIT_COLOURS[unit % len(UNIT_COLOURS)], linewidths=1.2,
                                               linestyles="--", animated=True)) for unit in range(first.shape[1])]
    try:
        for frame, outputs in enumerate(replay.outputs):
            canvas.restore_region(background)
            if image is not None:
                probability = outputs[:, -1]
                image.paint(pixels, probability)
                if probability.min() < 0.5 < probability.max():
                    boundary.set_segments(contour_generator(grid_x, grid_y, probability.reshape(grid_x.shape))
                                          .lines(0.5))
                    axes.draw_artist(boundary)
                if unit_collections:
                    inputs = hidden_unit_inputs(replay.layers, run.trace.snapshots[frame], replay.inputs)
                    for collection, segments in zip(unit_collections, unit_lines(grid_x, grid_y, inputs)):
                        collection.set_segments(segments)
                        axes.draw_artist(collection)
            else:
                changing[0].set_ydata(outputs[:, -1])
            for artist in changing:
                axes.draw_artist(artist)
            picture = Image.fromarray(pixels[:, :, :3].copy())
            title.write(picture, _title(run, frame))
            yield picture
    finally:
        plt.close(figure)


def write_frames(pictures, path: Path, kind: str) -> None:
    """Frames (RGB Pillow images, an iterable) as an animated GIF or an H.264 MP4 (`kind`), the last one held."""
    (_write_mp4 if kind == "mp4" else _write_gif)(pictures, path)


def _write_gif(pictures, path: Path) -> None:
    from PIL import Image

    pictures = [frame.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
                for frame in pictures]
    durations = [round(1000 / FPS)] * (len(pictures) - 1) + [round(1000 * PAUSE_SECONDS)]
    files.write_with(path, lambda temporary: pictures[0].save(
        temporary, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0))


def _write_mp4(pictures, path: Path) -> None:
    """H.264 through ffmpeg, fed raw frames on its standard input; the pause is the last frame repeated."""
    def encode(temporary: Path) -> None:
        process = None
        last = None
        for frame in pictures:
            width, height = frame.width // 2 * 2, frame.height // 2 * 2
            last = np.asarray(frame)[:height, :width]
            if process is None:
                process = subprocess.Popen(
                    ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24",
                     "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-", "-c:v", "libx264", "-pix_fmt", "yuv420p",
                     "-movflags", "+faststart", "-f", "mp4", str(temporary)],
                    stdin=subprocess.PIPE, stderr=subprocess.PIPE)
            process.stdin.write(last.tobytes())
        for _ in range(round(PAUSE_SECONDS * FPS)):
            process.stdin.write(last.tobytes())
        _, errors = process.communicate()
        if process.returncode:
            raise OSError(f"ffmpeg failed: {errors.decode(errors='replace').strip().splitlines()[-1:]}")

    files.write_with(path, encode)


def animate(run, path: Path) -> str:
    """The run's animation in the format it asked for (`run.animation`), written to `path`."""
    write_frames(frames(run), path, run.animation)
    return path.name

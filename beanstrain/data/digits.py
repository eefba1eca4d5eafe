"""Reading a person's drawn digit so a network trained on MNIST can classify it.

    >>> import tempfile
    >>> from PIL import ImageDraw
    >>> drawing = Image.new("L", (90, 110), "white")                # black pen on white paper
    >>> ImageDraw.Draw(drawing).line([(15, 15), (75, 15), (35, 100)], fill="black", width=9)
    >>> path = Path(tempfile.mkdtemp()) / "my_seven.jpg"
    >>> drawing.save(path)
    >>> image, inverted = read_digit(path)
    >>> image.shape, image.dtype, inverted
    ((28, 28), dtype('float32'), True)

MNIST digits are light strokes on black, fitted into a 20x20 box and placed
in a 28x28 frame by their centre of mass.  A drawing from a paint program or
a phone photo is usually the opposite: dark on light, any size, off centre,
on grey and grainy paper.  `read_digit` brings it to MNIST's form the way
MNIST itself was made.  It turns the picture grey and inverts it when it is
dark on light; then (center=True, the default):

1. the paper's level (a plane fitted to the picture's border, for uneven
   light) and its grain (the border's median absolute deviation) are taken
   off, so the paper becomes 0, and the strokes' typical ink, not the
   brightest pixel, becomes about 1;
2. the ink, down to a tenth of that level (a light pencil line), is cut into
   connected parts, and those under a tenth of the largest are dropped as
   specks (dust, JPEG blocks), so they neither widen the crop nor pull the
   centre of mass;
3. the bounding box of the ink brighter than half the strokes' level (MNIST
   was made from bilevel scans) is fitted into 20x20 keeping its aspect ratio,
   and the digit is placed so that its centre of mass lands on pixel (14, 14)
   of the 28x28 frame, in one resampling step; the brightest pixel becomes 1.

`dataset="fashion-mnist"` frames a picture as Fashion-MNIST was made instead:
the item's box fitted to 28 on its longer side and centred (FRAMINGS).
center=False only resizes the whole picture to 28x28.

Only PNG, BMP and JPEG are read, told apart by the file's content, never its
name, so few of Pillow's decoders are ever reached by a stranger's file.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from beanstrain.errors import RunError, UsageError, first_line

MAX_PIXELS = 4096 * 4096  # far below Pillow's own bomb limit; a drawn digit needs little
ACCEPTED_FORMATS = ["PNG", "BMP", "JPEG"]
MNIST_SIDE = 28
INK_BOX_SIDE = 20  # MNIST fits each digit into 20x20 and pads it to 28x28
MIN_CONTRAST = 0.1  # ink this close to the paper's brightness means a blank picture
MNIST_CENTRE = 14  # the row and column (from 0) that take the centre of mass: 28 // 2, where MNIST recipes put it
WORKING_SIDE = 512  # bigger photos are shrunk to this first: ample for a 20x20 digit, and quick
NOISE_SIGMAS = 3.0  # paper grain up to this many standard deviations is taken off as paper
MAD_TO_SIGMA = 1.4826  # median absolute deviation -> standard deviation, for Gaussian noise
SPECK_FRACTION = 0.1  # ink parts smaller than this share of the largest part are specks, not strokes
FAINT_INK = 0.1  # the share of the strokes' ink level that still counts as ink (a light pencil line)
MIN_PAPER_PIXELS = 20  # fewer border pixels of paper than this: take the paper as level, not a plane

OTHER_FORMATS = {  # leading bytes -> what to call the file when it is refused
    b"GIF8": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"RIFF": "a RIFF file (WebP?)",
    b"%PDF": "a PDF document",
    b"<svg": "an SVG drawing",
    b"<?xm": "an XML or SVG file",
}


@dataclass(frozen=True)
class Framing:
    """How a dataset's pictures sit in their 28x28 frame."""

    ink: float  # the share of the strokes' ink level that counts as ink for the bounding box
    box_side: int  # the bounding box's longer side, in frame pixels
    by_mass: bool  # centre of mass on pixel (14, 14), else the box's centre on the frame's middle


FRAMINGS = {
    # LeCun: the bilevel digit fitted into 20x20 keeping its aspect ratio, then centred by its centre of mass.
    "mnist": Framing(ink=0.5, box_side=INK_BOX_SIDE, by_mass=True),
    # Zalando: the product trimmed, its longest edge resized to 28, then centred on the canvas.
    "fashion-mnist": Framing(ink=0.1, box_side=MNIST_SIDE, by_mass=False),
}


def read_digit(path: str | Path, invert: bool | None = None, center: bool = True,
               dataset: str = "mnist") -> tuple[np.ndarray, bool]:
    """The digit in `path` as a float32 (28, 28) array in [0, 1], light on dark like MNIST.

    Returns (image, inverted).  invert=None decides from the picture whether it
    is dark-on-light and so must be inverted; True or False overrides that.
    `dataset` names the set whose framing to copy (FRAMINGS): a shirt for a
    Fashion-MNIST network fills the frame rather than a 20x20 box.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "shirt.png"
    >>> shirt = Image.new("L", (200, 200), "white")
    >>> shirt.paste(0, (40, 30, 160, 180))                      # a dark garment on white
    >>> shirt.save(path)
    >>> image, inverted = read_digit(path, dataset="fashion-mnist")
    >>> inverted, image.shape
    (True, (28, 28))
    >>> image, inverted = read_digit(path, invert=False, center=False)   # only resized to 28x28
    >>> inverted, round(float(image[0, 0]), 2)
    (False, 1.0)
    """
    path = Path(path).expanduser()
    grey = _load_grey(path)
    inverted = looks_dark_on_light(grey) if invert is None else bool(invert)
    if inverted:
        grey = 1.0 - grey
    digit = _fit_like_mnist(grey, FRAMINGS[dataset]) if center else _resize(grey, (MNIST_SIDE, MNIST_SIDE))
    # Lanczos resampling overshoots a little at sharp edges; the network expects [0, 1].
    return np.clip(digit, 0.0, 1.0).astype(np.float32), inverted


def looks_dark_on_light(grey: np.ndarray) -> bool:
    """True when the picture's border, which is almost all background, is lighter than mid-grey.

    `grey` is a 2-D array of floats in [0, 1] (or uint8 0-255).

    >>> looks_dark_on_light(np.ones((28, 28)))   # a blank white page
    True
    """
    grey = np.asarray(grey)
    scale = 255.0 if grey.dtype == np.uint8 else 1.0
    return bool(_border_median(grey.astype(np.float32) / scale) > 0.5)


def picture_thumbnail(path: str | Path, side: int = 112) -> np.ndarray:
    """The picture as the person gave it, in colour (uint8 RGB), shrunk to fit side x side: for `predict --plot`.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "tall.png"
    >>> Image.new("RGB", (300, 400), "white").save(path)
    >>> picture_thumbnail(path).shape
    (112, 84, 3)
    """
    def shrink(image: Image.Image) -> np.ndarray:
        if image.mode.startswith("I"):  # 16-bit grey, scaled as the network's input is
            image = Image.fromarray(np.round(_grey_array(image) * 255).astype(np.uint8))
        image = _on_white_paper(image).convert("RGB")
        image.thumbnail((side, side), Image.Resampling.LANCZOS)
        return np.asarray(image)

    return _load(Path(path).expanduser(), shrink)


def _load_grey(path: Path) -> np.ndarray:
    """The picture as a float32 grey array in [0, 1], at its own size; refusals are one line."""
    return _load(path, _grey_array)


def _load(path: Path, convert):
    """convert(the decoded picture, turned upright), after every check; refusals are one line."""
    if not path.exists():
        raise UsageError(f"{path} does not exist")
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not an image file")
    if path.stat().st_size == 0:
        raise RunError(f"{path} is empty (0 bytes); expected a PNG, BMP or JPEG image")
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its limit and twice it; a warning must stop us too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path, formats=ACCEPTED_FORMATS) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:  # checked before any pixel is decoded
                    raise RunError(f"{path} is {width}x{height} pixels, more than the {MAX_PIXELS:,} "
                                   "read for a drawn digit; shrink it first")
                image = ImageOps.exif_transpose(image)  # phone photos are often stored sideways
                return convert(image)
    except Image.UnidentifiedImageError:
        raise RunError(f"{path} holds {_what_it_holds(path)}, not a PNG, BMP or JPEG image; "
                       "save the drawing as PNG or JPEG") from None
    except PermissionError:
        raise RunError(f"{path} cannot be read (permission denied)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise RunError(f"{path} has too many pixels for a drawn digit (over Pillow's decompression-bomb "
                       "limit); shrink it first") from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
        # Pillow reports damaged files with any of these, e.g. "image file is truncated".
        raise RunError(f"{path} is a damaged or cut-short image ({first_line(error)})") from None


def _grey_array(image: Image.Image) -> np.ndarray:
    if image.mode.startswith("I"):  # 16-bit grey PNGs: scale by their range, not clip at 255
        return np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0.0, 1.0)
    return np.asarray(_on_white_paper(image).convert("L"), dtype=np.float32) / 255.0


def _on_white_paper(image: Image.Image) -> Image.Image:
    """Transparent pixels mean "no ink": a picture with transparency is laid on white paper."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return image


def _what_it_holds(path: Path) -> str:
    with open(path, "rb") as probe:
        start = probe.read(64)
    if start[4:8] == b"ftyp":
        return "a HEIC/AVIF photo"
    for magic, description in OTHER_FORMATS.items():
        if start.startswith(magic):
            return description
    try:
        start.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "data of an unknown format"


def _border_median(grey: np.ndarray) -> float:
    """Median brightness of the outer tenth of the picture (at least one pixel wide)."""
    return float(np.median(grey[_border(grey.shape)]))


def _border(shape: tuple[int, int]) -> np.ndarray:
    """True on the outer tenth of a picture of this shape (at least one pixel wide): mostly paper in a drawing."""
    width = max(1, min(shape) // 10)
    border = np.ones(shape, dtype=bool)
    border[width:-width, width:-width] = False
    return border


def _paper(grey: np.ndarray) -> tuple[np.ndarray, float]:
    """The paper's brightness at every pixel, and the standard deviation of its grain.

    A plane fitted to the border, because light falls unevenly across a photo;
    border pixels far from the border's median (ink reaching the edge) are left
    out of the fit, and the grain is the median absolute deviation around it.
    """
    rows, columns = np.nonzero(_border(grey.shape))
    values = grey[rows, columns]
    median = float(np.median(values))
    spread = MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
    paper = np.abs(values - median) <= max(NOISE_SIGMAS * spread, MIN_CONTRAST / 2)
    if paper.sum() < MIN_PAPER_PIXELS:  # too little border for a plane: a level page
        return np.full(grey.shape, median, dtype=np.float32), spread
    design = np.stack([np.ones(paper.sum()), rows[paper], columns[paper]], axis=1)
    (level, per_row, per_column), *_ = np.linalg.lstsq(design, values[paper], rcond=None)
    grain = MAD_TO_SIGMA * float(np.median(np.abs(values[paper] - design @ (level, per_row, per_column))))
    plane = (level + per_row * np.arange(grey.shape[0])[:, None] + per_column * np.arange(grey.shape[1])[None, :])
    return plane.astype(np.float32), grain


def _resize(grey: np.ndarray, size: tuple[int, int], box: tuple[float, float, float, float] | None = None,
            resample: Image.Resampling = Image.Resampling.LANCZOS) -> np.ndarray:
    """`grey`, or its `box` (left, top, right, bottom; fractions allowed), resized to (width, height), as float32.

    Pillow widens its filter when it shrinks, so each new pixel averages the old
    pixels it covers: the anti-aliasing MNIST's own normalisation gave its digits.
    """
    picture = Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32))
    return np.asarray(picture.resize(size, resample, box=box), dtype=np.float32)


def _fit_like_mnist(grey: np.ndarray, framing: Framing) -> np.ndarray:
    """The ink's box fitted into the framing's box and placed in 28x28 by its centre of mass (or its box)."""
    grey = _working_size(grey)
    ink = _stretch_ink(grey)
    if ink is None:  # a blank picture has no digit to crop to
        return _resize(grey, (MNIST_SIDE, MNIST_SIDE))
    main = _main_ink(ink > FAINT_INK)  # faint strokes are kept, specks are not
    boxed = main & (ink > framing.ink)
    boxed = boxed if boxed.any() else main
    rows, columns = np.flatnonzero(boxed.any(axis=1)), np.flatnonzero(boxed.any(axis=0))
    scale = framing.box_side / max(rows[-1] + 1 - rows[0], columns[-1] + 1 - columns[0])  # frame px per px
    # Specks go; the strokes' soft edges, up to a frame pixel beyond the faint ink, stay.
    ink = ink * _dilate(main, radius=1 + int(np.ceil(1 / scale)))
    # Pixel-edge coordinates: pixel i spans [i, i + 1), so the frame's pixel 14 is centred at 14.5.
    if framing.by_mass:
        mass = ink.sum()
        centre_row = float((ink.sum(axis=1) * (np.arange(ink.shape[0]) + 0.5)).sum() / mass)
        centre_column = float((ink.sum(axis=0) * (np.arange(ink.shape[1]) + 0.5)).sum() / mass)
        target = MNIST_CENTRE + 0.5
    else:
        centre_row, centre_column = (rows[0] + rows[-1] + 1) / 2, (columns[0] + columns[-1] + 1) / 2
        target = MNIST_SIDE / 2
    # The region of the (zero-padded) picture that becomes the 28x28 frame, resampled once.
    margin = int(np.ceil(MNIST_SIDE / scale)) + 1
    left, top = centre_column + margin - target / scale, centre_row + margin - target / scale
    box = (left, top, left + MNIST_SIDE / scale, top + MNIST_SIDE / scale)
    frame = np.clip(_resize(np.pad(ink, margin), (MNIST_SIDE, MNIST_SIDE), box), 0.0, None)
    return frame / frame.max()  # the brightest pixel is 1, as in MNIST, however fine the pen


def _working_size(grey: np.ndarray) -> np.ndarray:
    """A big photo shrunk (averaging) to WORKING_SIDE on its longer side: plenty for a 20x20 digit."""
    longer = max(grey.shape)
    if longer <= WORKING_SIDE:
        return grey
    height, width = (max(1, round(side * WORKING_SIDE / longer)) for side in grey.shape)
    return _resize(grey, (width, height), resample=Image.Resampling.BOX)


def _stretch_ink(grey: np.ndarray) -> np.ndarray | None:
    """Paper to 0 and the strokes' typical ink to about 1, the paper's grain below 0; None for a blank picture.

    The paper's level and grain come from the border (`_paper`); the ink's level
    is the typical brightness of the strokes, not the single brightest pixel, so
    one bright speck or a JPEG ring does not dim the whole digit.
    """
    paper, noise = _paper(grey)
    above = grey - paper
    candidates = above[above > max(NOISE_SIGMAS * noise, MIN_CONTRAST / 2)]
    if candidates.size == 0:
        return None
    peak = float(np.percentile(candidates, 99))
    strongest = float(np.median(above[above > peak / 2]))
    if strongest < MIN_CONTRAST:
        return None
    floor = min(NOISE_SIGMAS * noise, strongest / 2)  # the paper's grain, taken off so the paper is 0
    # Not clipped at 1: ink brighter than the strokes' typical level keeps its shading until the end.
    return np.clip((above - floor) / (strongest - floor), 0.0, None)


def _main_ink(mask: np.ndarray) -> np.ndarray:
    """The parts of `mask` (8-connected) at least SPECK_FRACTION the size of the largest: specks dropped."""
    rows, starts, ends = _runs(mask)
    if not len(rows):
        return mask
    part = _join_touching_runs(rows, starts, ends, mask.shape[0])
    sizes = np.bincount(part, weights=ends - starts)
    kept = sizes >= SPECK_FRACTION * sizes.max()
    main = np.zeros_like(mask)
    for row, start, end in zip(rows[kept[part]], starts[kept[part]], ends[kept[part]]):
        main[row, start:end] = True
    return main


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every horizontal run of True in `mask`: its row, first column and the column after its last."""
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)  # row-major order, so the n-th end closes the n-th start
    return rows, starts, ends


def _join_touching_runs(rows: np.ndarray, starts: np.ndarray, ends: np.ndarray, height: int) -> np.ndarray:
    """For each run, the number of the 8-connected part it belongs to (union-find over runs of adjacent rows)."""
    parent = list(range(len(rows)))

    def root(run: int) -> int:
        while parent[run] != run:
            parent[run] = parent[parent[run]]
            run = parent[run]
        return run

    first = np.searchsorted(rows, np.arange(height + 1))  # runs of row r: first[r] up to first[r + 1]
    for row in range(1, height):
        above, here = int(first[row - 1]), int(first[row])
        above_end, here_end = here, int(first[row + 1])
        while above < above_end and here < here_end:
            if starts[above] <= ends[here] and starts[here] <= ends[above]:  # overlapping or touching corners
                parent[root(here)] = root(above)
            if ends[above] < ends[here]:
                above += 1
            else:
                here += 1
    roots = np.array([root(run) for run in range(len(rows))])
    return np.unique(roots, return_inverse=True)[1]


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """`mask` grown by `radius` pixels in every direction (a square neighbourhood)."""
    height, width = mask.shape
    padded = np.pad(mask, radius)
    grown_down = np.zeros((height, width + 2 * radius), dtype=bool)
    for step in range(2 * radius + 1):
        grown_down |= padded[step:step + height]
    grown = np.zeros_like(mask)
    for step in range(2 * radius + 1):
        grown |= grown_down[:, step:step + width]
    return grown

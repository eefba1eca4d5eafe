"""Digit-like 28x28 images made the way MNIST was made, and the files a person would make of them.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> rng = np.random.default_rng(0)
    >>> originals, labels = mnist_like_digits(20, rng)      # (20, 28, 28) uint8, light on dark
    >>> originals.shape, originals.dtype
    ((20, 28, 28), dtype('uint8'))
    >>> drawing = as_drawing(originals[0], folder / "0.png", rng)   # 112x112, dark ink on white
    >>> photo = as_photo(originals[0], folder / "0.jpg", rng)       # grey noisy paper, blue ink, JPEG 70

The originals are the digits 0-9 written in Pillow's built-in font, slanted,
turned and thickened at random, then brought to MNIST's form as LeCun's
page describes it (`mnist_form`): the ink fitted into a 20x20 box keeping its
aspect ratio (its grey levels come from averaging, i.e. anti-aliasing), then
moved by whole pixels so that its centre of mass lands on pixel (14, 14) of
the 28x28 frame.  The renderings are the two kinds of file a person gives `predict`: a drawing from a
paint program (112x112, dark on white, PNG or BMP, some RGB) and a phone photo
(150-400 px, grey noisy paper, the digit off centre at 45-80% of the frame,
strokes thicker or thinner, blue ink, JPEG quality 70).  benchmarks/drawn_digits.py
uses the same renderings on real images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

WRITING_SIDE = 120  # the canvas a digit is written on before it is brought to 28x28


def mnist_like_digits(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`count` digit-like images in MNIST's form (uint8, light on dark) and their labels 0-9."""
    font = ImageFont.load_default(size=80)
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    images = np.stack([mnist_form(_written_digit(int(label), font, rng)) for label in labels])
    return images, labels.astype(np.uint8)


def _written_digit(label: int, font, rng: np.random.Generator) -> np.ndarray:
    """One digit written light on black, slanted and turned a little, with a stroke 0-3 px thicker."""
    canvas = Image.new("L", (WRITING_SIDE, WRITING_SIDE), 0)
    ImageDraw.Draw(canvas).text((WRITING_SIDE / 2, WRITING_SIDE / 2), str(label), fill=255, font=font,
                                anchor="mm", stroke_width=int(rng.integers(0, 4)), stroke_fill=255)
    shear = rng.uniform(-0.3, 0.3)
    canvas = canvas.transform(canvas.size, Image.Transform.AFFINE,
                              (1, shear, -shear * WRITING_SIDE / 2, 0, 1, 0), Image.Resampling.BILINEAR)
    return np.asarray(canvas.rotate(rng.uniform(-12, 12), Image.Resampling.BILINEAR))


def mnist_form(written: np.ndarray) -> np.ndarray:
    """MNIST's construction on a grey image (light on dark, any size) -> 28x28 uint8.

    The box of its bilevel ink (brighter than half its brightest pixel) is fitted
    into 20x20 keeping the aspect ratio, by averaging (anti-aliasing); then the
    28x28 frame is cut around the centre of mass, to the nearest whole pixel, so
    that it lands on pixel (14, 14).  The brightest pixel becomes 255.
    """
    written = np.asarray(written, dtype=np.float32)
    ink = written > written.max() / 2
    rows, columns = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    scale = 20 / max(rows[-1] + 1 - rows[0], columns[-1] + 1 - columns[0])
    size = (max(1, round(written.shape[1] * scale)), max(1, round(written.shape[0] * scale)))
    fitted = np.clip(np.asarray(Image.fromarray(written).resize(size, Image.Resampling.LANCZOS)), 0, None)
    fitted = np.pad(fitted, 28)
    places_down, places_across = np.arange(fitted.shape[0]), np.arange(fitted.shape[1])
    top = round(fitted.sum(axis=1) @ places_down / fitted.sum()) - 14
    left = round(fitted.sum(axis=0) @ places_across / fitted.sum()) - 14
    frame = fitted[top:top + 28, left:left + 28]
    return np.round(frame * 255 / frame.max()).astype(np.uint8)


def as_drawing(original: np.ndarray, path: Path, rng: np.random.Generator) -> Path:
    """A paint program's drawing: 112x112, dark ink on white; PNG or BMP by `path`'s suffix, RGB half the time."""
    picture = Image.fromarray(255 - np.asarray(original, dtype=np.uint8)).resize((112, 112), Image.Resampling.BICUBIC)
    if rng.random() < 0.5:
        picture = picture.convert("RGB")
    picture.save(path)
    return path


def as_photo(original: np.ndarray, path: Path, rng: np.random.Generator, specks: int = 0) -> Path:
    """A phone photo of the digit written in blue ink on grey paper, saved as JPEG quality 70.

    150-400 px on a side; the ink's box (20x20 for a digit) fills 45-80% of the frame, off centre;
    strokes up to a few pixels thicker or thinner; Gaussian grain and a light gradient on the
    paper; `specks` dark dots of dust scattered over it.
    """
    side = int(rng.integers(150, 401))
    original = np.asarray(original, dtype=np.uint8)
    inked = original > 25
    ink_side = max(np.ptp(np.flatnonzero(inked.any(axis=1))), np.ptp(np.flatnonzero(inked.any(axis=0)))) + 1
    scale = rng.uniform(0.45, 0.80) * side / ink_side  # the ink's box, 20 px for a digit, to 45-80% of the frame
    enlarged = Image.fromarray(original).resize((round(28 * scale), round(28 * scale)), Image.Resampling.BICUBIC)
    pen = rng.choice(["finer", "same", "broader"])
    if pen != "same":  # about half an MNIST pixel less or more stroke
        size = 2 * max(1, round(scale / 4)) + 1
        enlarged = enlarged.filter(ImageFilter.MinFilter(size) if pen == "finer" else ImageFilter.MaxFilter(size))
    ink = np.asarray(enlarged, dtype=np.float64) / 255
    rows, columns = np.flatnonzero(ink.max(axis=1) > 0.1), np.flatnonzero(ink.max(axis=0) > 0.1)
    ink = ink[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    coverage = np.zeros((side, side))
    top = int(rng.integers(0, max(1, side - ink.shape[0])))
    left = int(rng.integers(0, max(1, side - ink.shape[1])))
    placed = ink[:side - top, :side - left]
    coverage[top:top + placed.shape[0], left:left + placed.shape[1]] = placed
    for _ in range(specks):
        radius = rng.uniform(1, 2.5)
        row, column = rng.uniform(0, side, 2)
        grid_rows, grid_columns = np.ogrid[:side, :side]
        coverage[(grid_rows - row) ** 2 + (grid_columns - column) ** 2 <= radius ** 2] = 1.0
    paper = rng.uniform(150, 215) * np.array([1.0, 0.98, 0.93])  # grey, a little warm
    gradient = np.linspace(-1, 1, side)[None, :, None] * rng.uniform(0, 12)
    blue = np.array([rng.uniform(10, 60), rng.uniform(20, 70), rng.uniform(110, 170)])
    pixels = paper + gradient + coverage[..., None] * (blue - paper)
    pixels += rng.normal(0, rng.uniform(3, 10), pixels.shape)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB").save(path, format="JPEG", quality=70)
    return path

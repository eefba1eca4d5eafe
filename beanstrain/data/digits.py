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

MNIST digits are light strokes on black, about 20x20 pixels of ink centred
in a 28x28 frame.  A drawing from a paint program or a phone photo is usually
the opposite: dark on light, any size, off centre.  `read_digit` brings it to
MNIST's form: grey, inverted when dark-on-light, then (center=True, the
default) the paper is stretched to 0 and the strongest ink to 1, the digit is
cropped to its bounding box, fitted into 20x20 keeping its aspect ratio, and
centred by that box in 28x28.  MNIST itself centres by the centre of mass;
the bounding box is close for a drawn digit and easier to explain.
center=False only resizes the whole picture to 28x28.

Only PNG, BMP and JPEG are read, told apart by the file's content, never its
name, so few of Pillow's decoders are ever reached by a stranger's file.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from beanstrain.errors import RunError, UsageError, first_line

MAX_PIXELS = 4096 * 4096  # far below Pillow's own bomb limit; a drawn digit needs little
ACCEPTED_FORMATS = ["PNG", "BMP", "JPEG"]
MNIST_SIDE = 28
INK_BOX_SIDE = 20  # MNIST fits each digit into 20x20 and pads it to 28x28
MIN_CONTRAST = 0.1  # ink this close to the paper's brightness means a blank picture
OTHER_FORMATS = {  # leading bytes -> what to call the file when it is refused
    b"GIF8": "a GIF image",
    b"II*\x00": "a TIFF image",
    b"MM\x00*": "a TIFF image",
    b"RIFF": "a RIFF file (WebP?)",
    b"%PDF": "a PDF document",
    b"<svg": "an SVG drawing",
    b"<?xm": "an XML or SVG file",
}


def read_digit(path: str | Path, invert: bool | None = None, center: bool = True) -> tuple[np.ndarray, bool]:
    """The digit in `path` as a float32 (28, 28) array in [0, 1], light on dark like MNIST.

    Returns (image, inverted).  invert=None decides from the picture whether it
    is dark-on-light and so must be inverted; True or False overrides that
    (`read_digit(path, invert=False, center=False)` takes the picture as it is).
    """
    path = Path(path).expanduser()
    grey = _load_grey(path)
    inverted = looks_dark_on_light(grey) if invert is None else bool(invert)
    if inverted:
        grey = 1.0 - grey
    digit = _fit_like_mnist(grey) if center else _resize(grey, (MNIST_SIDE, MNIST_SIDE))
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


def _load_grey(path: Path) -> np.ndarray:
    """The picture as a float32 grey array in [0, 1], at its own size; refusals are one line."""
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
                return _grey_array(image)
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
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        # Transparent pixels mean "no ink": lay the picture on white paper.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0


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
    width = max(1, min(grey.shape) // 10)
    border = np.concatenate([grey[:width].ravel(), grey[-width:].ravel(),
                             grey[:, :width].ravel(), grey[:, -width:].ravel()])
    return float(np.median(border))


def _resize(grey: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`grey` resized to (width, height) with Lanczos filtering, kept as float32."""
    picture = Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32))
    return np.asarray(picture.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)


def _fit_like_mnist(grey: np.ndarray) -> np.ndarray:
    """Paper to 0 and ink to 1, cropped to the ink, fitted into 20x20, centred in 28x28."""
    paper, strongest = _border_median(grey), float(grey.max())
    if strongest - paper < MIN_CONTRAST:  # a blank picture has no digit to crop to
        return _resize(grey, (MNIST_SIDE, MNIST_SIDE))
    # A photo's paper is grey, not black; MNIST's background is exactly 0.
    stretched = np.clip((grey - paper) / (strongest - paper), 0.0, 1.0)
    ink_rows = np.flatnonzero((stretched > 0.5).any(axis=1))
    ink_columns = np.flatnonzero((stretched > 0.5).any(axis=0))
    crop = stretched[ink_rows[0]:ink_rows[-1] + 1, ink_columns[0]:ink_columns[-1] + 1]
    scale = INK_BOX_SIDE / max(crop.shape)
    new_height = max(1, round(crop.shape[0] * scale))
    new_width = max(1, round(crop.shape[1] * scale))
    frame = np.zeros((MNIST_SIDE, MNIST_SIDE), dtype=np.float32)
    top, left = (MNIST_SIDE - new_height) // 2, (MNIST_SIDE - new_width) // 2
    frame[top:top + new_height, left:left + new_width] = _resize(crop, (new_width, new_height))
    return frame

"""Reading a person's drawn digit for `beanstrain predict` (beanstrain/data/digits.py).

The digits are drawn here with PIL's ImageDraw; the same drawing saved in
different ways (light or dark, PNG, JPEG, BMP, RGBA, palette, 16-bit) must
come back as the same MNIST-like array.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, features

from beanstrain.data import digits
from beanstrain.data.digits import looks_dark_on_light, read_digit
from beanstrain.errors import RunError, UsageError


def draw_seven(ink=255, paper=0, size=(160, 200)):
    """A thick '7' drawn off centre, as a grey 'L' image."""
    picture = Image.new("L", size, paper)
    pen = ImageDraw.Draw(picture)
    pen.line([(30, 40), (110, 40), (60, 170)], fill=ink, width=14)
    return picture


@pytest.fixture
def light_on_dark(tmp_path):
    path = tmp_path / "seven.png"
    draw_seven().save(path)
    return path


@pytest.fixture
def reference(light_on_dark):
    """The light-on-dark PNG as read: every other way of saving the drawing must match it."""
    image, inverted = read_digit(light_on_dark)
    assert not inverted
    return image


def assert_mnist_like(image):
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0


def ink_box(image):
    rows = np.flatnonzero((image > 0.5).any(axis=1))
    columns = np.flatnonzero((image > 0.5).any(axis=0))
    return rows[0], rows[-1], columns[0], columns[-1]


def test_light_on_dark_png_is_centred_like_mnist(reference):
    assert_mnist_like(reference)
    assert reference.max() == pytest.approx(1.0, abs=0.05)
    assert np.all(reference[:3] == 0) and np.all(reference[-3:] == 0)  # MNIST's black margin
    top, bottom, left, right = ink_box(reference)
    assert 19 <= bottom - top + 1 <= 21  # the taller side fills the 20x20 box
    assert abs((top + bottom) / 2 - 13.5) <= 1 and abs((left + right) / 2 - 13.5) <= 1.5


def test_dark_on_light_jpeg_is_inverted(tmp_path, reference):
    path = tmp_path / "seven.jpg"
    draw_seven(ink=0, paper=255).convert("RGB").save(path, quality=90)
    image, inverted = read_digit(path)
    assert inverted
    assert_mnist_like(image)
    assert np.abs(image - reference).mean() < 0.03  # JPEG blurs the strokes a little


def test_photo_of_grey_paper_gets_a_black_background(tmp_path, reference):
    path = tmp_path / "photo.jpg"
    draw_seven(ink=40, paper=190).save(path, quality=95)
    image, inverted = read_digit(path)
    assert inverted
    assert np.abs(image[:3]).max() < 0.05  # the grey paper became MNIST's black
    assert np.abs(image - reference).mean() < 0.05


def test_rgba_is_laid_on_white_paper(tmp_path, reference):
    path = tmp_path / "seven-transparent.png"
    strokes = draw_seven()  # 255 where the pen went: that is where the ink is opaque
    rgba = Image.merge("RGBA", [Image.new("L", strokes.size, 0)] * 3 + [strokes])
    rgba.save(path)
    image, inverted = read_digit(path)
    assert inverted
    np.testing.assert_allclose(image, reference, atol=1e-6)


def test_palette_and_16_bit_grey_match_8_bit_grey(tmp_path, reference):
    palette = tmp_path / "palette.png"
    draw_seven().convert("P").save(palette)
    image, inverted = read_digit(palette)
    assert not inverted
    np.testing.assert_allclose(image, reference, atol=1e-6)
    # Mid-grey ink, read without the contrast stretch: a 16-bit file must be scaled, not clipped at 255.
    grey = tmp_path / "grey.png"
    draw_seven(ink=120).save(grey)
    deep = tmp_path / "sixteen.png"
    Image.fromarray(np.asarray(draw_seven(ink=120), dtype=np.uint16) * 257).save(deep)
    assert Image.open(deep).mode.startswith("I")
    image, inverted = read_digit(deep, center=False)
    assert not inverted
    np.testing.assert_allclose(image, read_digit(grey, center=False)[0], atol=1e-5)
    assert 0.4 < image.max() < 0.6


def test_bmp_reads_the_same_pixels_as_png(tmp_path, light_on_dark, reference):
    path = tmp_path / "seven.bmp"
    draw_seven().save(path)
    image, _ = read_digit(path)
    np.testing.assert_array_equal(image, reference)


def test_content_not_extension_decides_the_format(tmp_path, reference):
    path = tmp_path / "seven.jpg"  # PNG bytes under a JPEG name
    draw_seven().save(path, format="PNG")
    np.testing.assert_array_equal(read_digit(path)[0], reference)


def test_invert_overrides(tmp_path, light_on_dark):
    dark_paper, inverted = read_digit(light_on_dark, invert=True, center=False)
    assert inverted and dark_paper[0, 0] == pytest.approx(1.0)  # the black paper became white
    white_paper = tmp_path / "seven.png"
    draw_seven(ink=0, paper=255).save(white_paper)
    kept, inverted = read_digit(white_paper, invert=False, center=False)
    assert not inverted and np.median(kept) == pytest.approx(1.0)


def test_28x28_without_centring_round_trips_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    pixels[:3], pixels[-3:], pixels[:, :3], pixels[:, -3:] = 0, 0, 0, 0  # a dark border: not inverted
    path = tmp_path / "small.png"
    Image.fromarray(pixels).save(path)
    image, inverted = read_digit(path, center=False)
    assert not inverted
    np.testing.assert_array_equal(image, pixels.astype(np.float32) / 255)


def test_blank_page_gives_an_empty_digit(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(path)
    image, inverted = read_digit(path)
    assert inverted
    np.testing.assert_array_equal(image, np.zeros((28, 28), np.float32))


def test_exif_orientation_is_applied(tmp_path):
    picture = Image.new("L", (60, 30), 0)
    ImageDraw.Draw(picture).rectangle([0, 12, 59, 17], fill=255)  # a horizontal bar as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = tmp_path / "phone.jpg"
    picture.save(path, exif=exif, quality=95)
    image, _ = read_digit(path, center=False)
    assert image[:, 12:16].mean() > 0.8 and image[:, :8].mean() < 0.1  # shown upright: a vertical bar


def test_looks_dark_on_light():
    page = np.ones((40, 40), np.float32)
    page[10:30, 18:22] = 0.0
    assert looks_dark_on_light(page)
    assert not looks_dark_on_light(1.0 - page)
    assert looks_dark_on_light((page * 255).astype(np.uint8))
    assert not looks_dark_on_light(np.zeros((1, 1), np.uint8))


# --- refusals: one line naming the file and the problem ---------------------

def refusal(path, error=RunError):
    with pytest.raises(error) as caught:
        read_digit(path)
    message = str(caught.value)
    assert message.startswith(str(path)) and "\n" not in message
    return message


def test_text_named_png(tmp_path):
    path = tmp_path / "x.png"
    path.write_text("this is not a picture\n")
    assert refusal(path) == (f"{path} holds text, not a PNG, BMP or JPEG image; "
                             "save the drawing as PNG or JPEG")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert refusal(path) == f"{path} is empty (0 bytes); expected a PNG, BMP or JPEG image"


OTHER_FORMATS = [("GIF", "a GIF image"), ("TIFF", "a TIFF image"), ("WEBP", "a RIFF file (WebP?)")]


@pytest.mark.parametrize("format_name, description", OTHER_FORMATS)
def test_other_image_formats_are_refused(tmp_path, format_name, description):
    if format_name == "WEBP" and not features.check("webp"):
        pytest.skip("this Pillow cannot write WebP")
    path = tmp_path / "seven.png"
    draw_seven().save(path, format=format_name)
    assert refusal(path) == (f"{path} holds {description}, not a PNG, BMP or JPEG image; "
                             "save the drawing as PNG or JPEG")


@pytest.mark.parametrize("format_name", ["PNG", "JPEG"])
def test_truncated_image(tmp_path, format_name):
    noise = np.random.default_rng(1).integers(0, 256, (200, 200), dtype=np.uint8)
    path = tmp_path / f"cut.{format_name.lower()}"
    Image.fromarray(noise).save(path, format=format_name)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert refusal(path).startswith(f"{path} is a damaged or cut-short image (")


def test_oversized_image_is_refused_before_decoding(tmp_path, monkeypatch):
    monkeypatch.setattr(digits, "MAX_PIXELS", 100)
    path = tmp_path / "big.png"
    Image.new("L", (20, 20)).save(path)
    assert refusal(path) == (f"{path} is 20x20 pixels, more than the 100 read for a drawn digit; "
                             "shrink it first")


def test_pillow_decompression_bomb_warning_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # 400 pixels: Pillow only warns
    path = tmp_path / "bomb.png"
    Image.new("L", (20, 20)).save(path)
    assert "too many pixels for a drawn digit" in refusal(path)


def test_missing_file_and_folder_are_usage_errors(tmp_path):
    assert refusal(tmp_path / "nope.png", UsageError) == f"{tmp_path / 'nope.png'} does not exist"
    assert refusal(tmp_path, UsageError) == f"{tmp_path} is a folder, not an image file"

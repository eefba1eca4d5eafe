"""Reading a person's drawn digit for `beanstrain predict` (beanstrain/data/digits.py).

The digits are drawn here with PIL's ImageDraw; the same drawing saved in
different ways (light or dark, PNG, JPEG, BMP, RGBA, palette, 16-bit) must
come back as the same MNIST-like array.  Digits made in MNIST's own form
(tests/drawings.py), then drawn and photographed as a person would, must come
back as the 28x28 digit they started from.
"""

from __future__ import annotations

import numpy as np
import pytest
from drawings import as_drawing, as_photo, mnist_like_digits
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


def centre_of_mass(image):
    """(row, column) of the image's centre of mass, counting pixels from 0 as MNIST's recipes do."""
    image = np.asarray(image, dtype=np.float64)
    places = np.arange(image.shape[0])
    return (image.sum(axis=1) @ places / image.sum(), image.sum(axis=0) @ places / image.sum())


def test_light_on_dark_png_is_fitted_and_centred_like_mnist(reference):
    assert_mnist_like(reference)
    assert reference.max() == pytest.approx(1.0, abs=0.05)
    top, bottom, left, right = ink_box(reference)
    assert 19 <= bottom - top + 1 <= 21 and right - left + 1 <= 20  # the taller side fills the 20x20 box
    assert np.allclose(centre_of_mass(reference), (14, 14), atol=0.1)  # placed by its centre of mass
    # A seven's ink is heavy at the top, so its box sits low: centring the box would miss by a pixel or more.
    assert (top + bottom) / 2 - 14 > 0.75


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


# --- MNIST's form: digits drawn and photographed must come back as themselves -------------------

def similarity(image, original):
    """Mean absolute difference and correlation of a read image with the 28x28 uint8 digit it shows."""
    original = original / 255.0
    return np.abs(image - original).mean(), np.corrcoef(image.ravel(), original.ravel())[0, 1]


@pytest.fixture(scope="module")
def originals():
    return mnist_like_digits(30, np.random.default_rng(3))[0]


@pytest.mark.parametrize("kind", ["drawing", "photo"])
def test_drawings_come_back_as_the_mnist_digit(tmp_path, originals, kind):
    """112x112 drawings (PNG, BMP, some RGB) and off-centre photos on grey grainy paper in blue ink at JPEG 70."""
    rng = np.random.default_rng(4)
    differences, correlations = [], []
    for index, original in enumerate(originals):
        if kind == "drawing":
            path = as_drawing(original, tmp_path / f"{index}.{'png' if index % 2 else 'bmp'}", rng)
        else:
            path = as_photo(original, tmp_path / f"{index}.jpg", rng)
        image, inverted = read_digit(path)
        assert inverted
        assert_mnist_like(image)
        assert np.allclose(centre_of_mass(image), (14, 14), atol=0.25)
        difference, correlation = similarity(image, original)
        differences.append(difference)
        correlations.append(correlation)
    # The originals sit up to half a pixel off (14, 14), moved by whole pixels as MNIST's were,
    # and a photo's pen is finer or broader: close, not equal.  Centring the box instead gives
    # about 0.08-0.09 and 0.75.
    assert np.mean(differences) < 0.06 and np.mean(correlations) > 0.9
    assert min(correlations) > 0.65


def garment(width=20, shade=120):
    """A Fashion-MNIST-like shirt: its box 28 px tall, `width` wide, centred; light on dark, shaded."""
    picture = Image.new("L", (28, 28), 0)
    left = (28 - width) // 2
    ImageDraw.Draw(picture).polygon([(left + 4, 0), (left + width - 5, 0), (left + width - 1, 8),
                                     (left + width - 5, 10), (left + width - 5, 27), (left + 4, 27),
                                     (left + 4, 10), (left, 8)], fill=255)
    pixels = np.asarray(picture, dtype=np.float64)
    pixels[6:22] *= shade / 255  # a darker body under a bright collar and hem
    return pixels.astype(np.uint8)


@pytest.mark.parametrize("kind", ["drawing", "photo"])
def test_clothes_are_framed_like_fashion_mnist(tmp_path, kind):
    """A Fashion-MNIST run's pictures fill the frame (box 28 on its longer side, centred by the box)."""
    rng = np.random.default_rng(7)
    original = garment()
    render = as_drawing if kind == "drawing" else as_photo
    path = render(original, tmp_path / f"shirt.{'png' if kind == 'drawing' else 'jpg'}", rng)
    image, _ = read_digit(path, dataset="fashion-mnist")
    top, bottom, left, right = ink_box(image / image.max() * 5)  # any visible ink, as the set was trimmed
    assert bottom - top + 1 >= 27 and abs((left + right) / 2 - 13.5) <= 0.5
    difference, correlation = similarity(image, original)
    assert difference < 0.06 and correlation > 0.9
    as_digit, _ = read_digit(path)  # framed like MNIST instead: shrunk into 20x20
    assert similarity(as_digit, original)[1] < correlation - 0.2


def test_specks_on_the_paper_neither_widen_the_crop_nor_move_the_digit(tmp_path, originals):
    rng = np.random.default_rng(5)
    for index, original in enumerate(originals[:10]):
        image, _ = read_digit(as_photo(original, tmp_path / f"{index}.jpg", rng, specks=6))
        difference, correlation = similarity(image, original)
        assert difference < 0.07 and correlation > 0.8, index


def test_a_faint_stroke_is_kept_and_a_speck_is_not(tmp_path):
    def seven_with_a_light_stem(speck: bool):
        picture = draw_seven()
        pen = ImageDraw.Draw(picture)
        pen.line([(110, 40), (60, 170)], fill=70, width=14)  # the stem drawn lightly: under half the ink
        if speck:
            pen.ellipse([148, 183, 153, 188], fill=255)  # a speck of full ink in a corner
        path = tmp_path / f"seven-{speck}.png"
        picture.save(path)
        return read_digit(path)[0]

    clean, specked = seven_with_a_light_stem(False), seven_with_a_light_stem(True)
    np.testing.assert_array_equal(specked, clean)  # the speck changed nothing
    bar_bottom = np.flatnonzero((clean > 0.5).any(axis=1))[-1]
    assert clean[bar_bottom + 2:].sum() > 0.2 * clean.sum()  # the light stem is still drawn below the bar


def test_one_bright_speck_does_not_dim_the_digit(tmp_path, reference):
    picture = draw_seven(ink=200, paper=20)
    picture.putpixel((150, 190), 255)  # one stuck pixel brighter than every stroke
    path = tmp_path / "stuck.png"
    picture.save(path)
    image, _ = read_digit(path)
    assert np.abs(image - reference).max() < 0.01


@pytest.mark.parametrize("pixels", [np.zeros((1, 1)), np.ones((1, 1)), np.eye(3), np.ones((40, 30)),
                                    np.random.default_rng(6).random((64, 64))],
                         ids=["black-dot", "white-dot", "diagonal", "white-page", "noise"])
def test_odd_pictures_still_give_an_mnist_like_array(tmp_path, pixels):
    path = tmp_path / "odd.png"
    Image.fromarray((pixels * 255).astype(np.uint8)).save(path)
    image, _ = read_digit(path)
    assert_mnist_like(image)


def test_a_big_photo_is_read_at_a_working_size(tmp_path, monkeypatch, light_on_dark, reference):
    monkeypatch.setattr(digits, "WORKING_SIDE", 100)  # the 160x200 seven is shrunk to 80x100 first
    image, _ = read_digit(light_on_dark)
    assert similarity(image, reference * 255)[1] > 0.97


def test_thumbnail_keeps_the_picture_as_given(tmp_path):
    blue = Image.new("RGB", (300, 150), (200, 200, 200))
    ImageDraw.Draw(blue).line([(40, 20), (60, 130)], fill=(20, 30, 160), width=12)
    blue.save(tmp_path / "blue.jpg", quality=95)
    thumbnail = digits.picture_thumbnail(tmp_path / "blue.jpg")
    assert thumbnail.shape == (56, 112, 3) and thumbnail.dtype == np.uint8  # fitted into 112x112, shape kept
    assert thumbnail[:, :, 2].max() - thumbnail[:, :, 0].min() > 100  # the blue ink is still blue, not inverted
    transparent = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    transparent.save(tmp_path / "clear.png")
    assert np.all(digits.picture_thumbnail(tmp_path / "clear.png", side=10) == 255)  # laid on white paper
    with pytest.raises(UsageError):
        digits.picture_thumbnail(tmp_path / "missing.png")


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

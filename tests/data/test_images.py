"""Finding, reading and checking MNIST-format datasets (beanstrain/data/locate.py and formats.py).

Every file here is built in tmp_path: small random splits written as IDX
(plain and gzipped) and as Keras-style .npz, so nothing needs the network or
the real datasets.
"""

from __future__ import annotations

import dataclasses
import gzip
import subprocess
import sys

import numpy as np
import pytest
from mnist_files import idx_bytes, random_splits, write_file, write_idx_folder, write_npz

from beanstrain.data import DATASETS, formats, list_datasets, locate
from beanstrain.data.formats import read_idx, read_npz
from beanstrain.data.locate import describe_images, find_images, load_images, search_places
from beanstrain.errors import RunError, UsageError

NAMES = list(list_datasets("image"))


def assert_same(data, splits):
    for loaded, expected in zip((data.x_train, data.y_train, data.x_test, data.y_test), splits):
        assert loaded.dtype == expected.dtype
        np.testing.assert_array_equal(loaded, expected)


pytestmark = pytest.mark.usefixtures("isolated")  # every test sees only the files it writes


@pytest.fixture
def downloads(monkeypatch):
    """Counts calls to the download and makes it fail."""
    calls = []

    def failing_download(name):
        calls.append(name)
        raise ConnectionError("URL fetch failure: Name or service not known")
    monkeypatch.setattr(locate, "keras_download", failing_download)
    return calls


# --- the registry ---------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_registry_entries_are_complete(name):
    entry = DATASETS[name]
    assert entry.name == name and len(entry.class_names) == 10 and entry.summary
    assert "\n" not in entry.summary


def test_class_names():
    assert DATASETS["mnist"].class_names == tuple("0123456789")
    assert DATASETS["fashion-mnist"].class_names[0] == "T-shirt/top"
    assert DATASETS["fashion-mnist"].class_names[9] == "Ankle boot"


def test_unknown_name_suggests_the_closest():
    with pytest.raises(UsageError, match="unknown dataset 'fashion'; did you mean 'fashion-mnist'"):
        load_images("fashion")


# --- every way of finding a dataset ---------------------------------------

def test_data_path_npz(tmp_path):
    splits = random_splits()
    path = write_npz(tmp_path / "digits.npz", splits)
    data = load_images("mnist", data_path=str(path))
    assert_same(data, splits)
    assert data.source == str(path) and data.name == "mnist"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_data_path_idx_folder(tmp_path, gz):
    splits = random_splits()
    folder = write_idx_folder(tmp_path / "idx", splits, gz=gz)
    data = load_images("fashion-mnist", data_path=str(folder))
    assert_same(data, splits)
    assert data.source == str(folder)


def test_idx_folder_may_mix_plain_and_gzipped(tmp_path):
    splits = random_splits()
    folder = write_idx_folder(tmp_path / "idx", splits, gz=True)
    (folder / "t10k-labels-idx1-ubyte.gz").rename(folder / "t10k-labels-idx1-ubyte")
    write_file(folder / "t10k-labels-idx1-ubyte", idx_bytes(splits[3]))
    assert_same(load_images("mnist", data_path=str(folder)), splits)


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    labels = random_splits()[1]
    path = write_file(tmp_path / "labels.gz", idx_bytes(labels))  # plain bytes, .gz name
    np.testing.assert_array_equal(read_idx(path, "labels"), labels)


def test_data_path_folder_holding_the_keras_file(tmp_path):
    splits = random_splits()
    write_npz(tmp_path / "downloads" / "mnist.npz", splits)
    data = load_images("mnist", data_path=str(tmp_path / "downloads"))
    assert data.source == str(tmp_path / "downloads" / "mnist.npz")
    assert_same(data, splits)


def test_data_path_that_does_not_exist_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match=r"data path .*nowhere\.npz does not exist"):
        load_images("mnist", data_path=str(tmp_path / "nowhere.npz"))


def test_data_path_folder_missing_files_names_them(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", random_splits())
    (folder / "t10k-images-idx3-ubyte").unlink()
    with pytest.raises(RunError, match=r"holds neither mnist\.npz nor the four IDX files "
                                       r"\(missing t10k-images-idx3-ubyte\[\.gz\]\)"):
        load_images("mnist", data_path=str(folder))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("layout", ["keras_file", "name.npz", "name folder"])
def test_beanstrain_data_folder(tmp_path, monkeypatch, name, layout):
    splits = random_splits(seed=3)
    folder = tmp_path / "course-data"
    keras_file = DATASETS[name].keras_file
    if layout == "keras_file" and keras_file.endswith(".npz"):
        place = write_npz(folder / keras_file, splits)
    elif layout == "keras_file":
        place = write_idx_folder(folder / keras_file, splits, gz=True)
    elif layout == "name.npz":
        place = write_npz(folder / f"{name}.npz", splits)
    else:
        place = write_idx_folder(folder / name, splits)
    monkeypatch.setenv("BEANSTRAIN_DATA", str(folder))
    data = load_images(name)
    assert data.source == str(place)
    assert_same(data, splits)


def test_keras_cache_under_keras_home(tmp_path):
    mnist, fashion = random_splits(seed=1), random_splits(seed=2)
    write_npz(tmp_path / "keras-home" / "datasets" / "mnist.npz", mnist)
    write_idx_folder(tmp_path / "keras-home" / "datasets" / "fashion-mnist", fashion, gz=True)
    assert_same(load_images("mnist"), mnist)
    assert_same(load_images("fashion-mnist"), fashion)
    assert load_images("fashion-mnist").source == str(tmp_path / "keras-home" / "datasets" / "fashion-mnist")


def test_keras_cache_in_home_without_keras_home(tmp_path, monkeypatch):
    monkeypatch.delenv("KERAS_HOME")
    splits = random_splits()
    path = write_npz(tmp_path / "home" / ".keras" / "datasets" / "mnist.npz", splits)
    assert find_images("mnist") == path
    assert_same(load_images("mnist"), splits)


def test_system_dirs(tmp_path, monkeypatch):
    splits = random_splits()
    folder = write_idx_folder(tmp_path / "usr-share" / "fashion-mnist", splits, gz=True)
    entry = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(folder),))
    monkeypatch.setitem(DATASETS, "fashion-mnist", entry)
    data = load_images("fashion-mnist")
    assert data.source == str(folder)
    assert_same(data, splits)


def test_search_order_first_existing_place_wins(tmp_path, monkeypatch):
    given, env, cache, system = (random_splits(seed=seed) for seed in range(4))
    monkeypatch.setenv("BEANSTRAIN_DATA", str(tmp_path / "env"))
    entry = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=(str(tmp_path / "system"),))
    monkeypatch.setitem(DATASETS, "fashion-mnist", entry)
    places = [write_idx_folder(tmp_path / "system", system),
              write_idx_folder(tmp_path / "keras-home" / "datasets" / "fashion-mnist", cache),
              write_npz(tmp_path / "env" / "fashion-mnist.npz", env),
              write_npz(tmp_path / "given.npz", given)]
    assert_same(load_images("fashion-mnist", data_path=str(places[3])), given)
    for expected_place, expected_splits in zip(places[:3][::-1], [env, cache, system]):
        data = load_images("fashion-mnist")
        assert data.source == str(expected_place)
        assert_same(data, expected_splits)
        # Take this place away: the next one in the order must be found.
        for path in sorted(expected_place.rglob("*"), reverse=True) + [expected_place]:
            path.rmdir() if path.is_dir() else path.unlink()


def test_search_places_lists_every_place_in_order(tmp_path, monkeypatch):
    monkeypatch.setenv("BEANSTRAIN_DATA", str(tmp_path / "env"))
    entry = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=("/srv/fashion",))
    monkeypatch.setitem(DATASETS, "fashion-mnist", entry)
    cache = tmp_path / "keras-home" / "datasets"
    assert search_places("mnist", data_path=str(tmp_path / "x.npz")) == [
        tmp_path / "x.npz", tmp_path / "env" / "mnist.npz", tmp_path / "env" / "mnist", cache / "mnist.npz"]
    assert [str(place) for place in search_places("fashion-mnist")] == [
        str(tmp_path / "env" / "fashion-mnist"), str(tmp_path / "env" / "fashion-mnist.npz"),
        str(cache / "fashion-mnist"), "/srv/fashion"]


def test_a_partial_folder_in_the_cache_is_not_found(tmp_path):
    folder = write_idx_folder(tmp_path / "keras-home" / "datasets" / "fashion-mnist", random_splits())
    (folder / "train-labels-idx1-ubyte").unlink()
    assert find_images("fashion-mnist") is None


# --- the download, the last resort ----------------------------------------

def test_download_is_used_when_nothing_is_found(monkeypatch):
    splits = random_splits(seed=7)
    asked = []
    monkeypatch.setattr(locate, "keras_download", lambda name: asked.append(name) or splits)
    data = load_images("fashion-mnist")
    assert asked == ["fashion-mnist"] and data.source == "keras download"
    assert_same(data, splits)


def test_download_result_is_validated_too(monkeypatch):
    x_train, y_train, x_test, y_test = random_splits()
    y_train[3] = 12
    monkeypatch.setattr(locate, "keras_download", lambda name: (x_train, y_train, x_test, y_test))
    with pytest.raises(RunError, match=r"y_train from Keras's mnist download: label 12 at position 3"):
        load_images("mnist")


def test_no_download_when_a_file_exists(tmp_path, downloads):
    write_npz(tmp_path / "keras-home" / "datasets" / "mnist.npz", random_splits())
    load_images("mnist")
    assert downloads == []


def test_failed_download_lists_the_places_and_both_remedies(tmp_path, monkeypatch, downloads):
    monkeypatch.setenv("BEANSTRAIN_DATA", str(tmp_path / "env"))
    with pytest.raises(RunError) as caught:
        load_images("mnist")
    message = str(caught.value)
    assert downloads == ["mnist"]
    assert "\n" not in message
    for place in search_places("mnist"):
        assert str(place) in message
    assert "Keras's download failed (URL fetch failure: Name or service not known)" in message
    assert f"copy mnist.npz to {tmp_path / 'keras-home' / 'datasets'}/" in message
    assert "pass --data PATH (a .npz or a folder of the four IDX files)" in message


def test_fashion_message_names_the_folder_and_debian_package(tmp_path, monkeypatch, downloads):
    entry = dataclasses.replace(DATASETS["fashion-mnist"], system_dirs=("/srv/fashion",))
    monkeypatch.setitem(DATASETS, "fashion-mnist", entry)
    with pytest.raises(RunError, match=r"looked in .*fashion-mnist, /srv/fashion\) .* copy the four "
                                       r"fashion-mnist IDX \.gz files to .*fashion-mnist/, install Debian's "
                                       r"dataset-fashion-mnist package, or pass --data PATH"):
        load_images("fashion-mnist")


def test_download_false_never_downloads(downloads):
    with pytest.raises(RunError, match="mnist was not found .* and downloading was not allowed"):
        load_images("mnist", download=False)
    assert downloads == []


# --- validation: each problem is one line naming the file ------------------

def corrupt_images_file(tmp_path, data, gz=False):
    """A folder whose train images file holds `data`; returns the folder and that file."""
    folder = write_idx_folder(tmp_path / "idx", random_splits(), gz=gz)
    path = folder / ("train-images-idx3-ubyte" + (".gz" if gz else ""))
    write_file(path, data, gz)
    return folder, path


def load_error(folder_or_file):
    with pytest.raises(RunError) as caught:
        load_images("mnist", data_path=str(folder_or_file))
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_bad_magic(tmp_path):
    folder, path = corrupt_images_file(tmp_path, b"\x12\x34\x56\x78" + bytes(100))
    assert load_error(folder) == (f"{path}: bad magic number 0x12345678; "
                                  "expected 0x00000803 for an IDX images file")


def test_labels_file_where_images_belong(tmp_path):
    folder, path = corrupt_images_file(tmp_path, idx_bytes(np.zeros(50, np.uint8)))
    assert load_error(folder) == (f"{path}: bad magic number 0x00000801; "
                                  "expected 0x00000803 for an IDX images file")


def test_wrong_data_type_byte(tmp_path):
    folder, path = corrupt_images_file(tmp_path, idx_bytes(np.zeros((5, 28, 28), np.uint8), magic=0x0D03))
    assert load_error(folder) == (f"{path}: IDX data type 0x0D is not supported; "
                                  "expected 0x08 (unsigned bytes)")


def test_wrong_image_size(tmp_path):
    folder, path = corrupt_images_file(tmp_path, idx_bytes(np.zeros((50, 32, 32), np.uint8)), gz=True)
    assert load_error(folder) == f"{path}: images are 32x32; expected 28x28"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_truncated_body(tmp_path, gz):
    folder, path = corrupt_images_file(tmp_path, idx_bytes(np.zeros((50, 28, 28), np.uint8))[:1016], gz=gz)
    assert load_error(folder) == f"{path}: truncated: expected 39,200 bytes of images, found 1,000"


def test_truncated_header(tmp_path):
    folder, path = corrupt_images_file(tmp_path, b"\0\0\x08\x03\0\0\0\x32\0\0")
    assert load_error(folder) == f"{path}: truncated: the header ends after 10 bytes"


def test_empty_idx_file(tmp_path):
    folder, path = corrupt_images_file(tmp_path, b"")
    assert load_error(folder) == f"{path}: too short to be an IDX file (0 bytes)"


@pytest.mark.parametrize("gz", [False, True], ids=["plain", "gzipped"])
def test_trailing_bytes(tmp_path, gz):
    with_extra = idx_bytes(np.zeros((50, 28, 28), np.uint8)) + b"extra"
    folder, path = corrupt_images_file(tmp_path, with_extra, gz=gz)
    assert load_error(folder) == (f"{path}: has data after the 50 images its header declares; "
                                  "the file is corrupt or not an IDX file")


def test_count_mismatch(tmp_path):
    x_train, y_train, x_test, y_test = random_splits()
    folder = write_idx_folder(tmp_path / "idx", (x_train, y_train[:49], x_test, y_test))
    assert load_error(folder) == (f"{folder / 'train-images-idx3-ubyte'} has 50 images but "
                                  f"{folder / 'train-labels-idx1-ubyte'} has 49 labels")


def test_label_outside_0_to_9(tmp_path):
    x_train, y_train, x_test, y_test = random_splits()
    y_test[7] = 10
    folder = write_idx_folder(tmp_path / "idx", (x_train, y_train, x_test, y_test), gz=True)
    path = folder / "t10k-labels-idx1-ubyte.gz"
    assert load_error(folder) == f"{path}: label 10 at position 7 is outside 0-9"


def test_truncated_gzip(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", random_splits(), gz=True)
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-300])  # cuts the end of the deflate stream and the trailer
    assert load_error(folder) == f"{path}: truncated gzip: the compressed data ends early"


def test_corrupt_gzip(tmp_path):
    folder, path = corrupt_images_file(tmp_path, b"")
    path.write_bytes(b"\x1f\x8b\x08\x00" + bytes(20))
    assert load_error(folder).startswith(f"{path}: corrupt gzip data (")


def test_gzip_declaring_far_more_than_it_holds(tmp_path):
    header_lies = idx_bytes(np.zeros((50, 28, 28), np.uint8), dimensions=(1_000_000, 28, 28))
    folder, path = corrupt_images_file(tmp_path, header_lies, gz=True)
    assert load_error(folder) == f"{path}: truncated: expected 784,000,000 bytes of images, found 39,200"


def test_header_declaring_more_than_the_reader_accepts(tmp_path):
    header_lies = idx_bytes(np.zeros((5, 28, 28), np.uint8), dimensions=(4_000_000_000, 28, 28))
    folder, path = corrupt_images_file(tmp_path, header_lies, gz=True)
    assert load_error(folder).startswith(f"{path}: header declares 4,000,000,000 images, more than the")


def test_gzip_bomb_is_refused_after_the_declared_size(tmp_path, monkeypatch):
    # 50 honest images followed by 64 MB of zeros: only the declared size + 1 byte may be decompressed.
    bomb = gzip.compress(idx_bytes(np.zeros((50, 28, 28), np.uint8)) + bytes(64 * 2**20))
    folder, path = corrupt_images_file(tmp_path, b"")
    path.write_bytes(bomb)
    decompressed = []
    real_open = gzip.open

    def counting_open(*args, **kwargs):
        stream = real_open(*args, **kwargs)
        real_read = stream.read
        stream.read = lambda size=-1: decompressed.append(len(chunk := real_read(size))) or chunk
        return stream
    monkeypatch.setattr(formats.gzip, "open", counting_open)
    assert load_error(folder).startswith(f"{path}: has data after the 50 images")
    assert 50 * 28 * 28 < sum(decompressed) <= 16 + 50 * 28 * 28 + 1


def test_npz_missing_key(tmp_path):
    path = tmp_path / "mnist.npz"
    x_train, y_train, x_test, _ = random_splits()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test)
    assert load_error(path) == f"{path}: is missing y_test (it holds x_test, x_train, y_train)"


def test_npz_with_a_pickled_object_array(tmp_path):
    splits = list(random_splits())
    splits[1] = np.array([{"label": 1}] * 50, dtype=object)
    path = write_npz(tmp_path / "mnist.npz", splits)
    assert load_error(path) == (f"{path}: y_train holds pickled Python objects, which are never loaded; "
                                "save plain numeric arrays with np.savez")


def test_npz_that_is_not_a_zip(tmp_path):
    path = write_file(tmp_path / "mnist.npz", b"x_train,y_train\n1,2\n")
    assert load_error(path) == f"{path}: is not a .npz file (not a zip archive)"


def test_npz_cut_short(tmp_path):
    path = write_npz(tmp_path / "mnist.npz", random_splits())
    path.write_bytes(path.read_bytes()[:5000])
    assert load_error(path).startswith(f"{path}: is a damaged .npz archive (")


def test_single_npy_and_single_idx_file_are_explained(tmp_path):
    npy = tmp_path / "x.npy"
    np.save(npy, random_splits()[0])
    assert load_error(npy).startswith(f"{npy}: is a single .npy array; expected a .npz")
    idx = write_file(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(random_splits()[0]), gz=True)
    assert load_error(idx) == f"{idx}: looks like one IDX file; pass the folder holding all four"


@pytest.mark.parametrize("key, value, problem", [
    ("x_train", np.zeros((50, 784), np.uint8),
     "(x_train): images have shape (50, 784); expected (N, 28, 28)"),
    ("x_train", np.zeros((50, 28, 28), np.int64), "(x_train): pixels have dtype int64; expected uint8"),
    ("x_test", np.full((20, 28, 28), 255.0),
     "(x_test): float pixels must be finite and in [0, 1]; found 255.0"),
    ("x_test", np.full((20, 28, 28), np.nan, np.float32), "(x_test): float pixels must be finite"),
    ("y_train", np.zeros((50, 10), np.uint8), "(y_train): labels have shape (50, 10) and dtype uint8; "
                                             "expected (N,) integers 0-9 (not one-hot)"),
    ("y_train", np.zeros(50, np.float32), "(y_train): labels have shape (50,) and dtype float32"),
    ("y_test", np.full(20, -1, np.int64), "(y_test): label -1 at position 0 is outside 0-9"),
    ("x_train", np.zeros((0, 28, 28), np.uint8), "(x_train): holds no images"),
])
def test_npz_contents_are_checked(tmp_path, key, value, problem):
    splits = dict(zip(formats.NPZ_KEYS, random_splits()))
    splits[key] = value
    path = write_npz(tmp_path / "mnist.npz", list(splits.values()))
    assert load_error(path).startswith(f"{path} {problem}")


def test_npz_of_scaled_floats_and_int_labels_is_accepted(tmp_path):
    x_train, y_train, x_test, y_test = random_splits()
    scaled = (x_train / 255.0, y_train.astype(np.int64), x_test / 255.0, y_test.astype(np.int64))
    data = load_images("mnist", data_path=str(write_npz(tmp_path / "scaled.npz", scaled)))
    assert data.x_train.dtype == np.float32 and data.y_train.dtype == np.uint8
    np.testing.assert_allclose(data.x_train, x_train / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(data.y_test, y_test)


def test_read_npz_and_read_idx_round_trip(tmp_path):
    splits = random_splits()
    for loaded, expected in zip(read_npz(write_npz(tmp_path / "a.npz", splits)), splits):
        np.testing.assert_array_equal(loaded, expected)
    folder = write_idx_folder(tmp_path / "idx", splits, gz=True)
    np.testing.assert_array_equal(read_idx(folder / "t10k-images-idx3-ubyte.gz"), splits[2])
    with pytest.raises(RunError, match="expected 0x00000801 for an IDX labels file"):
        read_idx(folder / "t10k-images-idx3-ubyte.gz", "labels")


# --- describe_images --------------------------------------------------------

def test_describe_found_npz(tmp_path):
    path = write_npz(tmp_path / "keras-home" / "datasets" / "mnist.npz", random_splits(train=30, test=12))
    assert describe_images("mnist") == {"name": "mnist", "found": str(path), "looked_in": [str(path)],
                                        "train": 30, "test": 12, "problem": None}


def test_describe_reads_idx_headers_only(tmp_path):
    folder = write_idx_folder(tmp_path / "idx", random_splits(), gz=True)
    # A body cut short shows the header alone was read: load would refuse this file.
    path = folder / "train-images-idx3-ubyte.gz"
    write_file(path, idx_bytes(np.zeros((50, 28, 28), np.uint8))[:100], gz=True)
    info = describe_images("fashion-mnist", data_path=str(folder))
    assert (info["found"], info["train"], info["test"], info["problem"]) == (str(folder), 50, 20, None)


def test_describe_not_found_lists_places():
    info = describe_images("fashion-mnist")
    assert info["found"] is None and info["train"] is None and info["test"] is None
    assert info["looked_in"] == [str(place) for place in search_places("fashion-mnist")]


def test_describe_reports_a_broken_file_as_a_problem(tmp_path):
    path = write_file(tmp_path / "keras-home" / "datasets" / "mnist.npz", b"not a zip")
    info = describe_images("mnist")
    assert info["found"] == str(path) and info["train"] is None
    assert info["problem"] == f"{path}: is not a .npz file (not a zip archive)"


@pytest.mark.parametrize("name", NAMES)
def test_describe_and_load_agree(tmp_path, name):
    folder = write_idx_folder(tmp_path / "idx", random_splits(train=33, test=11))
    info = describe_images(name, data_path=str(folder))
    data = load_images(name, data_path=str(folder))
    assert (info["train"], info["test"]) == (len(data.x_train), len(data.x_test)) == (33, 11)


def test_importing_the_modules_does_not_import_keras():
    # The download imports Keras inside the function, so `beanstrain data` stays instant.
    check = ("import sys, beanstrain.data.locate, beanstrain.data.formats, beanstrain.data.digits; "
             "print(sorted({'keras', 'tensorflow', 'matplotlib'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

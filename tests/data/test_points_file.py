"""A CSV of points read and checked (`data/points_file.py`): each refusal is one line naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from beanstrain.data import memory, points_file
from beanstrain.errors import UsageError
from beanstrain.tasks import BINARY, MULTICLASS, REGRESSION


def write(tmp_path, text: str | bytes, name: str = "points.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def test_the_task_follows_y(tmp_path):
    regression = points_file.read_points(write(tmp_path, "x,y\n0,0.5\n1,1.5\n2,2.5\n3,3.5\n"))
    assert regression.task == REGRESSION and regression.x.shape == (4, 1)
    np.testing.assert_array_equal(regression.y, [0.5, 1.5, 2.5, 3.5])
    named = points_file.read_points(write(tmp_path, "x2,y,x1\n1,dog,0\n2,cat,0\n3,dog,1\n4,cat,1\n"))
    assert named.task == BINARY and named.class_names == ("cat", "dog") and named.columns == ("x1", "x2")
    np.testing.assert_array_equal(named.x[:, 0], [0, 0, 1, 1])  # x1 first, whatever the file's order
    np.testing.assert_array_equal(named.y, [1, 0, 1, 0])
    three = points_file.read_points(write(tmp_path, "x0,x1,y\n0,0,a\n0,1,b\n1,0,c\n1,1,a\n"))
    assert three.task == MULTICLASS and three.y.shape == (4, 3) and three.num_classes == 3


@pytest.mark.parametrize(("text", "says"), [
    ("x1,x2\n0,0\n1,1\n0,1\n1,0\n", "no column y"),
    ("x1,x3,y\n0,0,0\n1,1,1\n0,1,0\n1,0,1\n", "missing column x2"),
    ("x,z,y\n0,0,0\n1,1,1\n0,1,0\n1,0,1\n", "unknown column 'z'"),
    ("x,y\n0,0\nten,1\n0,1\n1,0\n", "line 3, column x: 'ten' is not a number"),
    ("x,y\n0,0\nnan,1\n0,1\n1,0\n", "nan is not a finite number"),
    ("x,y\n0,0\n1,inf\n0,1\n1,0\n", "inf is not a finite number"),
    ("x,y\n0,0\n1,1\n2,0\n", "has 3 rows of points; at least 4"),
    ("x,y\n0,1\n1,1\n2,1\n3,1\n", "one class"),
    ("x,y\n0,cat\n1,cat\n2,cat\n3,cat\n", "one class"),
    ("x;y\n0;0\n1;1\n2;0\n3;1\n", "separate the columns with commas"),
    ("0,0\n1,1\n2,0\n3,1\n4,0\n", "has no header"),
    (b"\x89PNG\r\n\x1a\n\0\0\0IHDR", "is not a CSV file"),
    ("", "is empty"),
    ("x,y\n0,0.5\n1,cat\n2,0.7\n3,0.1\n", "all class names"),
    ("x,y\n0,0\n1,1,7\n2,0\n3,1\n", "3 values, and the header names 2"),
])
def test_a_bad_file_is_one_line(tmp_path, text, says):
    with pytest.raises(UsageError, match=None) as raised:
        points_file.read_points(write(tmp_path, text))
    message = str(raised.value)
    assert says in message and "\n" not in message


def test_a_file_larger_than_memory_is_refused_before_reading(tmp_path, monkeypatch):
    path = write(tmp_path, "x,y\n" + "0.5,1\n0.25,0\n" * 50)
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(UsageError, match="needs about .* of memory to read"):
        points_file.read_points(path)


def test_the_split_follows_the_seed():
    train, test = points_file.split_rows(10, 0.3, seed=4)
    again = points_file.split_rows(10, 0.3, seed=4)
    assert len(test) == 3 and sorted([*train, *test]) == list(range(10))
    assert all(np.array_equal(one, two) for one, two in zip((train, test), again))
    assert not np.array_equal(points_file.split_rows(10, 0.3, seed=5)[1], test)
    assert [len(part) for part in points_file.split_rows(4, 0.99, seed=0)] == [1, 3]

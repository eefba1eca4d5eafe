"""The course's names for a dense network's numbers: w{i}{j}_L, b{j}_L, z{j}_L, a{j}_L.

    >>> import numpy as np
    >>> course_names([np.zeros((1, 2)), np.zeros(2), np.zeros((2, 1)), np.zeros(1)])   # the 1-2-1 net
    [['w11_1', 'w12_1'], ['b1_1', 'b2_1'], ['w11_2', 'w21_2'], ['b1_2']]
    >>> unit_name("z", 2, 1), unit_name("a", 0, 1)   # layer 2's unit 1; the first input
    ('z1_2', 'x1')

Layer L's kernel entry [i, j] is `w{i}{j}_L`: the weight from input (or unit) i of the layer below to
unit j of layer L, counted from 1, as the course writes w11_1 for the first hidden unit's weight on x1.
Its bias j is `b{j}_L`; unit j's input to its activation is `z{j}_L` and its output `a{j}_L`; layer 0's
outputs are the inputs x1, x2, ...  `beanstrain check` names the student's parameters with these and
`beanstrain step` the numbers of a worked step.
"""

from __future__ import annotations


def course_names(weights) -> list[list[str]]:
    """Each number's name, array by array (kernel, bias, kernel, ...: Keras's `get_weights()` order)."""
    names, layer = [], 0
    for array in weights:
        shape = getattr(array, "shape", array)
        if len(shape) == 2:
            layer += 1
            names.append([f"w{i + 1}{j + 1}_{layer}" for i in range(shape[0]) for j in range(shape[1])])
        else:
            names.append([f"b{j + 1}_{layer}" for j in range(shape[0])])
    return names


def unit_name(quantity: str, layer: int, unit: int) -> str:
    """A unit's z or a, 1-based unit, layer 0 being the inputs x1, x2, ..."""
    return f"x{unit}" if layer == 0 else f"{quantity}{unit}_{layer}"

"""The fixed-step slope lesson (beans1-sign), written right."""

import numpy as np


def forward(params, x):
    return params["w11_1"] * x


def gradients(params, x, y):
    w = params["w11_1"]
    return {"w11_1": np.mean(2 * x**2 * w - 2 * x * y)}


def update(params, grads, rate):
    return {"w11_1": params["w11_1"] - rate * np.sign(grads["w11_1"])}

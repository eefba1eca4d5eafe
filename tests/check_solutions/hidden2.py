"""The 1-2-1 network's seven gradients by the chain rule (beans3-backprop), written right."""

import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def layers(params, x):
    a1_1 = sigmoid(params["w11_1"] * x + params["b1_1"])
    a2_1 = sigmoid(params["w12_1"] * x + params["b2_1"])
    a1_2 = sigmoid(params["w11_2"] * a1_1 + params["w21_2"] * a2_1 + params["b1_2"])
    return a1_1, a2_1, a1_2


def forward(params, x):
    return layers(params, x)[2]


def gradients(params, x, y):
    a1_1, a2_1, a1_2 = layers(params, x)
    dz1_2 = -2 * (y - a1_2) * a1_2 * (1 - a1_2)
    dz1_1 = dz1_2 * params["w11_2"] * a1_1 * (1 - a1_1)
    dz2_1 = dz1_2 * params["w21_2"] * a2_1 * (1 - a2_1)
    return {"w11_2": np.mean(dz1_2 * a1_1), "w21_2": np.mean(dz1_2 * a2_1), "b1_2": np.mean(dz1_2),
            "w11_1": np.mean(dz1_1 * x), "b1_1": np.mean(dz1_1),
            "w12_1": np.mean(dz2_1 * x), "b2_1": np.mean(dz2_1)}


def update(params, grads, rate):
    return {name: params[name] - rate * grads[name] for name in params}

"""The sigmoid neuron in matrix form (beans7-matrix), written right."""

import numpy as np


def forward(params, x):
    return 1 / (1 + np.exp(-(x.dot(params["W"].T) + params["b"])))


def gradients(params, x, y):
    a = forward(params, x)
    dz = -2 * (y - a) * a * (1 - a) / len(x)
    return {"W": dz.T.dot(x), "b": dz.sum(axis=0)}


def update(params, grads, rate):
    return {"W": params["W"] - rate * grads["W"], "b": params["b"] - rate * grads["b"]}

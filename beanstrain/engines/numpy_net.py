"""A dense network by hand: forward pass, loss and the chain rule backward, vectorised over a batch.

    >>> import numpy as np
    >>> net = Network([Layer(kernel=0, bias=None, activation="linear")], loss="mse")   # slope: y = w * x
    >>> w = np.array([[0.5]], "float32")
    >>> x, y = np.array([[1.0], [2.0]], "float32"), np.array([[1.0], [2.0]], "float32")
    >>> [gradient.item() for gradient in net.gradients([w], x, y)]   # d/dw mean((w x - y)^2)
    [-2.5]

`Network` holds no weights: they are the list Keras's `model.get_weights()`
returns (kernel, bias, kernel, bias, ...), so the same arrays go back into
the Keras network for saving.  Every array is float32, as Keras keeps them.

The losses are Keras's, reduced to the batch mean: mean squared and absolute
error, binary and categorical cross-entropy.  Keras computes cross-entropy
on a sigmoid or softmax output from the unit's input (its logits), so this
does too, and its gradient there is `(y_pred - y) / batch`; on any other
output the prediction is clipped to [1e-7, 1 - 1e-7] first, as Keras clips it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from beanstrain.errors import UsageError

EPSILON = np.float32(1e-7)  # Keras's backend epsilon, the clip of cross-entropy
# Keras loss class -> the name used here.
KERAS_LOSSES = {"MeanSquaredError": "mse", "MeanAbsoluteError": "mae", "BinaryCrossentropy": "binary_crossentropy",
                "CategoricalCrossentropy": "categorical_crossentropy",
                "SparseCategoricalCrossentropy": "sparse_categorical_crossentropy"}
# Loss -> the output activation whose logits it is computed from.
FROM_LOGITS = {"binary_crossentropy": "sigmoid", "categorical_crossentropy": "softmax",
               "sparse_categorical_crossentropy": "softmax"}


@dataclass(frozen=True)
class Layer:
    """One dense layer: where its kernel and bias sit in the weight list, its activation, the L1 and L2
    penalty rates on its kernel (Keras's `L1L2` regularizer) and the dropout rate after it."""

    kernel: int
    bias: int | None
    activation: str
    l1: float = 0.0
    l2: float = 0.0
    dropout: float = 0.0


def _sigmoid(z):
    """1 / (1 + exp(-z)), the same bits, computed in one new array: the step loop's largest cost."""
    out = np.negative(z)
    np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _softmax(z):
    shifted = np.exp(z - z.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


# Each activation, and dLoss/dz from dLoss/da written with its output a = activation(z).
FORWARD = {"linear": lambda z: z, "sigmoid": _sigmoid, "relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
           "softmax": _softmax}
BACKWARD = {
    "linear": lambda a, grad_a: grad_a,
    "sigmoid": lambda a, grad_a: grad_a * a * (1 - a),
    "relu": lambda a, grad_a: grad_a * (a > 0),
    "tanh": lambda a, grad_a: grad_a * (1 - a * a),
    "softmax": lambda a, grad_a: a * (grad_a - (grad_a * a).sum(axis=-1, keepdims=True)),
}
ACTIVATIONS = tuple(FORWARD)


def one_hot(y: np.ndarray, classes: int) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[y.reshape(-1).astype(np.int64)]


class Network:
    """The layers of a dense network and its loss: `predict`, `sample_losses`, `gradients`."""

    def __init__(self, layers: list[Layer], loss: str, perceptron_error: bool = False):
        self.layers, self.loss, self.perceptron_error = layers, loss, perceptron_error
        self.from_logits = FROM_LOGITS.get(loss) == layers[-1].activation
        # Looked up once: the step loop runs these tens of thousands of times a second.
        self._output_backward = BACKWARD[layers[-1].activation]
        self._mse_scales: dict[int, np.float32] = {}  # 2 / (outputs in a batch): d mean(e^2) / de = e * this
        self._forward = [(layer.kernel, layer.bias, FORWARD[layer.activation]) for layer in layers]
        self._backward = [(layer.kernel, layer.bias, BACKWARD[below.activation] if below else None)
                          for below, layer in zip([None, *layers[:-1]], layers)]
        # The kernels Keras penalises: (index, l1, l2), the rates as float32 as Keras keeps them.
        self.penalised = [(layer.kernel, np.float32(layer.l1), np.float32(layer.l2)) for layer in layers
                          if layer.l1 or layer.l2]
        self.dropouts = [layer.dropout for layer in layers]
        self.has_dropout = any(self.dropouts)

    def penalty(self, weights) -> float:
        """The regularizers' loss, added to the batch's: l1 * sum|W| + l2 * sum W^2 over each penalised kernel."""
        return float(sum(l1 * np.abs(weights[kernel]).sum() + l2 * np.square(weights[kernel]).sum()
                         for kernel, l1, l2 in self.penalised))

    def dropout_masks(self, generator: np.random.Generator, batch: int, weights) -> list:
        """Keras's dropout for one training step: each hidden output kept with probability 1 - rate and scaled by
        1 / (1 - rate); None for a layer without dropout (and for the output layer)."""
        masks = []
        for layer, rate in zip(self.layers[:-1], self.dropouts[:-1]):
            if rate:
                units = weights[layer.kernel].shape[1]
                kept = generator.random((batch, units), dtype=np.float32) >= np.float32(rate)
                masks.append(kept.astype(np.float32) / np.float32(1 - rate))
            else:
                masks.append(None)
        return masks + [None]

    def forward(self, weights, x, masks=None):
        """Every layer's output, the input first, and the last layer's input to its activation.

        With dropout `masks` (training), each hidden output is multiplied by its mask; the output before the mask
        is kept in `self.activated`, for the backward pass."""
        outputs, z = [x], x
        if masks is not None:
            self.activated = [x]
        for depth, (kernel, bias, activation) in enumerate(self._forward):
            z = outputs[-1] @ weights[kernel]
            if bias is not None:
                z += weights[bias]
            output = activation(z)
            if masks is not None:
                self.activated.append(output)
                if masks[depth] is not None:
                    output = output * masks[depth]
            outputs.append(output)
        return outputs, z

    def activate_output(self, z: np.ndarray) -> np.ndarray:
        return FORWARD[self.layers[-1].activation](z)

    def predict(self, weights, x) -> np.ndarray:
        return self.forward(weights, x)[0][-1]

    def targets(self, y: np.ndarray, width: int) -> np.ndarray:
        """Targets in the output's shape: class numbers become one-hot for the sparse loss."""
        return one_hot(y, width) if self.loss == "sparse_categorical_crossentropy" else y

    def sample_losses(self, y, y_pred, logits) -> np.ndarray:
        """Each sample's loss, as Keras computes it before the batch mean."""
        y = self.targets(y, y_pred.shape[-1])
        if self.loss == "mse":
            return ((y_pred - y) ** 2).mean(axis=-1)
        if self.loss == "mae":
            return np.abs(y_pred - y).mean(axis=-1)
        if self.loss == "binary_crossentropy":
            if self.from_logits:
                return (np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))).mean(axis=-1)
            p = np.clip(y_pred, EPSILON, 1 - EPSILON)
            return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)
        if self.from_logits:
            shifted = logits - logits.max(axis=-1, keepdims=True)
            log_softmax = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
            return -(y * log_softmax).sum(axis=-1)
        p = np.clip(y_pred / y_pred.sum(axis=-1, keepdims=True), EPSILON, 1 - EPSILON)
        return -(y * np.log(p)).sum(axis=-1)

    def output_error(self, y, y_pred) -> np.ndarray:
        """dLoss/dz at the output layer, z being its input to the activation, for the batch-mean loss."""
        if self.loss == "mse" and not self.perceptron_error:  # the course's loss, so the quickest path
            scale = self._mse_scales.get(y_pred.size)
            if scale is None:
                scale = self._mse_scales[y_pred.size] = 2 / np.float32(y_pred.size)
            return self._output_backward(y_pred, (y_pred - y) * scale)
        y = self.targets(y, y_pred.shape[-1])
        count = np.float32(y_pred.shape[0])
        if self.perceptron_error:
            return (y_pred - y) / count
        if self.from_logits:
            if self.loss == "binary_crossentropy":
                return (y_pred - y) / np.float32(y_pred.size)
            return (y_pred * y.sum(axis=-1, keepdims=True) - y) / count
        size = np.float32(y_pred.size)
        if self.loss == "mse":
            grad = 2 * (y_pred - y) / size
        elif self.loss == "mae":
            grad = np.sign(y_pred - y) / size
        elif self.loss == "binary_crossentropy":
            inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)  # the clip passes no gradient outside
            p = np.clip(y_pred, EPSILON, 1 - EPSILON)
            grad = (-y / p + (1 - y) / (1 - p)) / size * inside
        else:
            raise UsageError(f"the numpy engine computes {self.loss} only on a softmax output")
        return BACKWARD[self.layers[-1].activation](y_pred, grad)

    def backward(self, weights, outputs, error, masks=None) -> list[np.ndarray]:
        """The chain rule, last layer first: each weight's gradient, in the weight list's order.

        With dropout `masks` (the ones `forward` used), the error passes back through each mask, and each
        activation's slope is taken at its output before the mask.  A penalised kernel's gradient gets the
        regularizers' too: l1 * sign(W) + 2 * l2 * W."""
        gradients: list = [None] * len(weights)
        for depth in range(len(self._backward) - 1, -1, -1):
            kernel, bias, below_backward = self._backward[depth]
            gradients[kernel] = outputs[depth].T @ error
            if bias is not None:
                gradients[bias] = error.sum(axis=0)
            if depth:
                error = error @ weights[kernel].T
                if masks is None:
                    error = below_backward(outputs[depth], error)
                else:
                    if masks[depth - 1] is not None:
                        error = error * masks[depth - 1]
                    error = below_backward(self.activated[depth], error)
        for kernel, l1, l2 in self.penalised:
            if l1:
                gradients[kernel] += l1 * np.sign(weights[kernel])
            if l2:
                gradients[kernel] += (2 * l2) * weights[kernel]
        return gradients

    def gradients(self, weights, x, y, masks=None) -> list[np.ndarray]:
        outputs, _ = self.forward(weights, x, masks)
        return self.backward(weights, outputs, self.output_error(y, outputs[-1]), masks)


def read_layers(model) -> list[Layer]:
    """The dense layers of a Keras network, by where their weights sit in `model.get_weights()`.

    A Dropout layer gives its rate to the layer before it; a Features layer first is the trainer's to apply
    (`features.model_features`), and a Flatten layer first means inputs given flat.  Any other layer that is
    not Dense (a convolution, pooling, a later Flatten) is refused in one line.
    """
    layers, index = [], 0
    for keras_layer in model.layers:
        kind = type(keras_layer).__name__
        if kind in ("Features", "Flatten") and not layers:  # the caller's to apply: features, or flat inputs
            continue
        if kind == "Dropout" and layers:
            layers[-1] = replace(layers[-1], dropout=float(keras_layer.rate))
            continue
        activation = getattr(getattr(keras_layer, "activation", None), "__name__", None)
        if kind != "Dense" or activation not in ACTIVATIONS:
            raise UsageError(f"the numpy engine trains dense layers only ({', '.join(ACTIVATIONS)}); "
                             f"{model.name} has a {kind} layer")
        bias = index + 1 if keras_layer.use_bias else None
        penalty = keras_layer.kernel_regularizer.get_config() if keras_layer.kernel_regularizer else {}
        layers.append(Layer(index, bias, activation, float(penalty.get("l1", 0.0)), float(penalty.get("l2", 0.0))))
        index += 2 if keras_layer.use_bias else 1
    return layers

"""The course's update rules, written by hand: what `--optimizer` names under `--engine numpy`.

    >>> import numpy as np
    >>> weight = np.array([[0.5]], "float32")
    >>> rule = make_rule("sign", learning_rate=0.01)      # the course's fixed step
    >>> rule.update([weight], [np.array([[-3.0]], "float32")])
    >>> weight
    array([[0.51]], dtype=float32)
    >>> sorted(RULES)
    ['rosenblatt', 'sgd', 'sign']

A rule gets each weight and its gradient (`numpy_net.Network.gradients`) and
changes the weight in place.  Rosenblatt's rule `w += alpha * (y - y_pred) * x`
is the same step as gradient descent, taken on a different error: the
network's backward pass starts from `y_pred - y` at the output unit
(`Rule.perceptron_error`) instead of the loss's own derivative.  For a linear
unit on squared error it is gradient descent on half the error,
d/dw (y - w x)^2 / 2 = -(y - w x) x: `sgd` at half the rate.  NumPy is imported where a rule runs, so the command
line lists the rules without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from beanstrain.errors import lookup

# Without --learning-rate a rule takes Keras SGD's default rate, as the course's `optimizer="sgd"` does.
DEFAULT_RATE = 0.01


def descend(weight, gradient, rate) -> None:
    """Gradient descent, Keras SGD's step without momentum: `w -= rate * gradient`.

    The gradient is the rule's to use up: scaling it in place saves an array a step."""
    gradient *= rate
    weight -= gradient


def fixed_step(weight, gradient, rate) -> None:
    """The course's 固定步长 (fixed step): `w -= step * sign(gradient)`, however steep the cost is."""
    weight -= rate * np.sign(gradient)


@dataclass(frozen=True)
class RuleEntry:
    step: Callable  # (weight, gradient, rate) -> None, in place
    summary: str  # one line for --help and docs/engines.md
    # True: the backward pass starts from the error y_pred - y at the output unit, whatever the loss.
    perceptron_error: bool = False


RULES: dict[str, RuleEntry] = {
    "sgd": RuleEntry(descend, "gradient descent, w -= rate * dLoss/dw (Keras SGD's step)"),
    # Rosenblatt's rule w += alpha * (y - y_pred) * x.  For a linear unit on squared error it is
    # gradient descent on half the error: d/dw (y - w x)^2 / 2 = -(y - w x) x, so it equals `sgd`
    # at half the rate there.  On a sigmoid unit it leaves out the sigmoid's slope, as the
    # perceptron does; hidden layers get the error back through the chain rule.
    "rosenblatt": RuleEntry(descend, "Rosenblatt's perceptron rule, w += rate * (y - y_pred) * x",
                            perceptron_error=True),
    "sign": RuleEntry(fixed_step, "fixed step, w -= rate * sign(dLoss/dw) (the rate is the step)"),
}


def get_rule(name: str) -> RuleEntry:
    return lookup("update rule", name, RULES)


@dataclass
class Rule:
    """A rule bound to its rate: `update(weights, gradients)` changes the weights in place."""

    name: str
    learning_rate: float
    entry: RuleEntry

    @property
    def perceptron_error(self) -> bool:
        return self.entry.perceptron_error

    def update(self, weights, gradients) -> None:
        rate, step = self._rate, self.entry.step
        for weight, gradient in zip(weights, gradients):
            step(weight, gradient, rate)

    def __post_init__(self):
        self._rate = np.float32(self.learning_rate)  # a float32 step, as Keras's variables hold it


def make_rule(name: str, learning_rate: float | None = None) -> Rule:
    return Rule(name, DEFAULT_RATE if learning_rate is None else float(learning_rate), get_rule(name))

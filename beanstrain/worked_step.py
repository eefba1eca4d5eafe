"""`beanstrain step`: one optimizer step of a small network, every number of it, as the course works it.

    beanstrain step beans3-backprop                  # step 1 of the 1-2-1 net's run
    beanstrain step beans3-backprop --at 250 --markdown step250.md
    beanstrain step runs/beans1-sgd-20261205-101500 --json

The run is the numpy engine's (`engines.numpy_engine`): the same initial weights, batch order
(`engines.order`), network (`engines.numpy_net`) and update rule (`engines.rules`), stepped batch by
batch in float32 as the engine steps them, so step K's "new weights" are the engine's weights after
K steps.  Step K is then written out: the batch, each unit's z and a forward, the loss, each partial
derivative of the chain backward (dL/da, da/dz, dz/dw) and each weight's gradient as their product
summed over the batch, and the rule applied to each weight.  Names are the course's
(`weight_names`: w11_1 is layer 1's weight from x1 to unit 1).

    >>> worked = work_step("beans3-backprop", at=1)
    >>> worked.names
    ['w11_1', 'w12_1', 'b1_1', 'b2_1', 'w11_2', 'w21_2', 'b1_2']
    >>> [line.name for line in worked.lines if line.section == "forward"][:3]
    ['z1_1', 'a1_1', 'z2_1']
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from beanstrain import files, runs
from beanstrain.data.registry import is_image_dataset
from beanstrain.engines.rules import RULES
from beanstrain.errors import RunError, UsageError
from beanstrain.weight_names import course_names, unit_name

MAX_WEIGHTS = 30  # more numbers than a page of hand arithmetic: one layer at a time then
SHOWN_SAMPLES = 4  # a batch larger than this shows its sums only (--json has every sample)

RULE_TEXT = {  # the rule applied to one weight {w} ({tex}: its name in LaTeX)
    "sgd": ("{w} - rate * dL/d{w}", r"{tex} - \eta \, \frac{{\partial L}}{{\partial {tex}}}"),
    "rosenblatt": ("{w} - rate * dL/d{w}", r"{tex} - \eta \, \frac{{\partial L}}{{\partial {tex}}}"),
    "sign": ("{w} - rate * sign(dL/d{w})",
             r"{tex} - \eta \, \mathrm{{sign}}\left(\frac{{\partial L}}{{\partial {tex}}}\right)"),
}
DERIVATIVE_TEXT = {
    "linear": ("1", "1"), "sigmoid": ("a*(1 - a)", "a(1 - a)"), "tanh": ("1 - a^2", "1 - a^2"),
    "relu": ("1 if z > 0 else 0", r"[z > 0]"),
}


@dataclass
class Line:
    """One quantity of the step: its name, how it is computed (text and LaTeX), and its value per sample."""

    section: str  # batch, forward, loss, backward, update
    name: str
    formula: str
    latex: str
    values: list[float]
    substituted: str = ""  # the formula with the numbers in, where the batch is one sample


@dataclass
class WorkedStep:
    recipe: str
    seed: int
    step: int
    epoch: int  # 1-based
    batch_number: int  # 1-based, within the epoch
    batches_per_epoch: int
    batch_size: int
    rule: str
    rate: float
    loss: str
    layers: list[str]  # "1 input", "2 sigmoid", ...
    names: list[str]
    before: dict[str, float]
    gradients: dict[str, float]
    after: dict[str, float]
    lines: list[Line] = field(default_factory=list)

    def as_json(self) -> dict:
        return {"recipe": self.recipe, "seed": self.seed, "step": self.step, "epoch": self.epoch,
                "batch": self.batch_number, "batches_per_epoch": self.batches_per_epoch,
                "batch_size": self.batch_size, "rule": self.rule, "learning_rate": self.rate, "loss": self.loss,
                "layers": self.layers, "weights_before": self.before, "gradients": self.gradients,
                "weights_after": self.after,
                "lines": [{"section": line.section, "name": line.name, "formula": line.formula,
                           "values": line.values} for line in self.lines]}


def _recipe_of(target: str, overrides: dict):
    """The recipe of a run folder (as config.json recorded it) or of a recipe name, with the flags' overrides."""
    from dataclasses import replace

    from beanstrain.recipes import Recipe, check_recipe, resolve_recipe

    path = Path(target)
    if (path / runs.CONFIG).is_file():
        try:
            recipe = Recipe(**files.read_json(path / runs.CONFIG)["recipe"])
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(f"{path / runs.CONFIG} is damaged: {error}") from None
        recipe = replace(recipe, **overrides)
        check_recipe(recipe)
        return recipe
    if path.is_dir():
        raise UsageError(f"{target}: not a run folder (it has no {runs.CONFIG})")
    return resolve_recipe(target, overrides)


def work_step(target: str, at: int = 1, batch_size: int | None = None, layer: int | None = None,
              optimizer: str | None = None, learning_rate: float | None = None, seed: int | None = None) -> WorkedStep:
    """Step `at` (1-based) of the target's run on the numpy engine, written out number by number."""
    from beanstrain.preparation import prepare

    overrides = {key: value for key, value in (("batch_size", batch_size), ("optimizer", optimizer),
                                               ("learning_rate", learning_rate), ("seed", seed)) if value is not None}
    recipe = _recipe_of(target, overrides)
    if recipe.optimizer not in RULES:
        raise UsageError(f"{recipe.name} trains with {recipe.optimizer}; step works the course's update rules "
                         f"({', '.join(sorted(RULES))}) as the numpy engine takes them: add --optimizer sgd")
    if recipe.dropout or recipe.l1 or recipe.l2:
        raise UsageError(f"{recipe.name} trains with dropout or an L1/L2 penalty; step works networks without "
                         "them: add --dropout 0 --l1 0 --l2 0 to fit, or pick a lesson recipe")
    if is_image_dataset(recipe.dataset):
        raise UsageError(f"{recipe.name} trains on images; step works the small feature-vector networks "
                         "(beans, spiral): try beanstrain step beans3-backprop")
    prepared = prepare(recipe, "cpu", None, io.StringIO(), engine="numpy")
    trainer = prepared.make_trainer()
    network, weights, rule = trainer.network, trainer.weights, trainer.rule
    count = sum(weight.size for weight in weights)
    depth = len(network.layers)
    if layer is not None and not 1 <= layer <= depth:
        raise UsageError(f"--layer must be between 1 and {depth} for {recipe.name}, got {layer}")
    if count > MAX_WEIGHTS and layer is None:
        raise UsageError(f"{recipe.name}'s network has {count} weights, more than step writes out at once "
                         f"({MAX_WEIGHTS}); show one layer of it with --layer 1 to --layer {depth}")
    size = trainer.batch_size
    per_epoch = -(-trainer.samples // size)
    total = recipe.epochs * per_epoch
    if not 1 <= at <= total:
        raise UsageError(f"--at must be between 1 and {total}, the steps of {recipe.name}'s {recipe.epochs} "
                         f"epochs of {per_epoch} batches, got {at}")
    from beanstrain.engines.order import epoch_permutation

    order, order_epoch = None, None
    for step in range(at):
        epoch, batch = divmod(step, per_epoch)
        if epoch != order_epoch:
            order, order_epoch = epoch_permutation(recipe.seed, epoch, trainer.samples), epoch
        chosen = order[batch * size:(batch + 1) * size]
        x_batch, y_batch = trainer.x[chosen], trainer.y[chosen]
        outputs, _ = network.forward(weights, x_batch)
        error = network.output_error(y_batch, outputs[-1])
        gradients = network.backward(weights, outputs, error)
        if step == at - 1:
            before = [weight.copy() for weight in weights]
            kept = [gradient.copy() for gradient in gradients]  # the rule scales its gradients in place
        rule.update(weights, gradients)
    names = course_names(before)
    flat = lambda arrays: {name: float(value) for array, array_names in zip(arrays, names)  # noqa: E731
                           for name, value in zip(array_names, np.asarray(array).reshape(-1))}
    widths = [before[layer_.kernel].shape[1] for layer_ in network.layers]
    worked = WorkedStep(
        recipe=recipe.name, seed=recipe.seed, step=at, epoch=epoch + 1, batch_number=batch + 1,
        batches_per_epoch=per_epoch, batch_size=len(x_batch), rule=recipe.optimizer, rate=float(rule.learning_rate),
        loss=network.loss, names=[name for array_names in names for name in array_names],
        layers=[f"{before[network.layers[0].kernel].shape[0]} input"] +
               [f"{width} {layer_.activation}" for width, layer_ in zip(widths, network.layers)],
        before=flat(before), gradients=flat(kept), after=flat(weights))
    shown = range(1, depth + 1) if layer is None else [layer]
    zs = []  # each layer's input to its activation, as numpy_net.Network.forward computes it
    for layer_, below in zip(network.layers, outputs):
        z = below @ before[layer_.kernel]
        if layer_.bias is not None:
            z += before[layer_.bias]
        zs.append(z)
    _batch_lines(worked, x_batch, y_batch)
    _forward_lines(worked, network, zs, outputs, shown)
    losses = network.sample_losses(y_batch, outputs[-1], zs[-1])
    text, latex = LOSS_TEXT.get(network.loss, ("mean of -sum(y log a)", r"-\frac{1}{n} \sum y \log a"))
    worked.lines.append(Line("loss", "L", text, latex, [float(np.mean(losses, dtype=np.float64))]))
    _backward_lines(worked, network, before, outputs, y_batch, shown)
    _update_lines(worked, network, shown)
    return worked


def _values(array) -> list[float]:
    return [float(value) for value in np.asarray(array, np.float64).reshape(-1)]


def _batch_lines(worked: WorkedStep, x_batch, y_batch) -> None:
    for index in range(x_batch.shape[1]):
        name = unit_name("a", 0, index + 1)
        worked.lines.append(Line("batch", name, "input", name, _values(x_batch[:, index])))
    for index in range(y_batch.shape[1]):
        name = "y" if y_batch.shape[1] == 1 else f"y{index + 1}"
        worked.lines.append(Line("batch", name, "target", name, _values(y_batch[:, index])))


def _latex(name: str) -> str:
    """w11_1 -> w^{(1)}_{11}: the course's names as a formula writes them."""
    if "_" not in name:
        return f"{name[0]}_{{{name[1:]}}}" if len(name) > 1 else name
    head, layer = name.split("_")
    return f"{head[0]}^{{({layer})}}_{{{head[1:]}}}"


def _forward_lines(worked, network, zs, outputs, shown) -> None:
    for depth, (layer, z) in enumerate(zip(network.layers, zs), start=1):
        if depth not in shown:
            continue
        inputs, units = outputs[depth - 1].shape[1], z.shape[1]
        for unit in range(1, units + 1):
            terms = [(f"w{i}{unit}_{depth}", unit_name("a", depth - 1, i)) for i in range(1, inputs + 1)]
            bias = [f"b{unit}_{depth}"] if layer.bias is not None else []
            text = " + ".join([f"{w}*{a}" for w, a in terms] + bias)
            latex = " + ".join([f"{_latex(w)} {_latex(a)}" for w, a in terms] + [_latex(b) for b in bias])
            z_name, a_name = unit_name("z", depth, unit), unit_name("a", depth, unit)
            line = Line("forward", z_name, text, latex, _values(z[:, unit - 1]))
            if len(z) == 1:
                parts = [f"{_number(worked.before[w])}*{_number(outputs[depth - 1][0, i - 1])}"
                         for i, (w, _) in enumerate(terms, start=1)] + [_number(worked.before[b]) for b in bias]
                line.substituted = " + ".join(parts)
            worked.lines.append(line)
            if layer.activation == "softmax":
                text, latex = f"softmax(z_{depth})[{unit}]", rf"\mathrm{{softmax}}(z^{{({depth})}})_{unit}"
            else:
                text, latex = f"{layer.activation}({z_name})", rf"\mathrm{{{layer.activation}}}({_latex(z_name)})"
            worked.lines.append(Line("forward", a_name, text, latex, _values(outputs[depth][:, unit - 1])))


LOSS_TEXT = {
    "mse": ("mean over the batch of (a - y)^2", r"\frac{1}{n} \sum (a - y)^2"),
    "mae": ("mean over the batch of |a - y|", r"\frac{1}{n} \sum |a - y|"),
    "binary_crossentropy": ("mean of -(y log a + (1 - y) log(1 - a))",
                            r"-\frac{1}{n} \sum \left(y \log a + (1 - y) \log(1 - a)\right)"),
}


def _backward_lines(worked, network, weights, outputs, y_batch, shown) -> None:
    """Last layer first: each unit's dL/da, da/dz and dL/dz, then each weight's dz/dw and gradient."""
    from beanstrain.engines.numpy_net import BACKWARD

    depth_count = len(network.layers)
    output = outputs[-1]
    error = network.output_error(y_batch, output)  # dL/dz at the output, exactly as the engine starts
    grad_a, how = None, None
    if network.loss == "mse" and not network.perceptron_error:
        grad_a = (output - network.targets(y_batch, output.shape[-1])) * (2 / np.float32(output.size))
        how = (f"2*(a - y)/{output.size}", rf"\frac{{2}}{{{output.size}}}(a - y)")
    elif network.loss == "mae":
        grad_a = np.sign(output - y_batch) / np.float32(output.size)
        how = (f"sign(a - y)/{output.size}", rf"\frac{{\mathrm{{sign}}(a - y)}}{{{output.size}}}")
    targets = network.targets(y_batch, output.shape[-1])
    above = None  # the layer above's dL/dz and kernel, which make a hidden unit's dL/da
    for depth in range(depth_count, 0, -1):
        layer = network.layers[depth - 1]
        kernel = weights[layer.kernel]
        if depth in shown:
            _unit_chain(worked, depth, layer.activation, outputs[depth], grad_a, error, how, network, targets, above)
            _weight_gradients(worked, depth, layer, outputs[depth - 1], error)
        if depth > 1:
            grad_a = error @ kernel.T  # dL/da of the layer below: each unit's error through its weights
            how, above = None, (error, kernel)
            error = BACKWARD[network.layers[depth - 2].activation](outputs[depth - 1], grad_a)


def _unit_chain(worked, depth, activation, activated, grad_a, error, how, network, targets, above) -> None:
    from beanstrain.engines.numpy_net import BACKWARD

    slope = BACKWARD[activation](activated, np.ones_like(activated)) if activation != "softmax" else None
    for unit in range(1, activated.shape[1] + 1):
        a_name, z_name = unit_name("a", depth, unit), unit_name("z", depth, unit)
        column = unit - 1
        if grad_a is not None and slope is not None:
            if how is not None:
                text, latex = how
            else:
                width = above[1].shape[1]  # the units of the layer above, from its kernel
                text = " + ".join(f"dL/dz{k}_{depth + 1}*w{unit}{k}_{depth + 1}" for k in range(1, width + 1))
                latex = r"\sum_k \frac{\partial L}{\partial z^{(" + str(depth + 1) + r")}_k} w^{(" + \
                    str(depth + 1) + r")}_{" + str(unit) + "k}"
            line = Line("backward", f"dL/d{a_name}", text, latex, _values(grad_a[:, column]))
            if len(grad_a) == 1 and above is None and network.loss == "mse":
                line.substituted = f"2*({number(activated[0, column])} - {number(targets[0, column])})/{error.size}"
            elif len(grad_a) == 1 and above is not None:
                line.substituted = " + ".join(f"{_number(value)}*{_number(weight)}"
                                              for value, weight in zip(above[0][0], above[1][column]))
            worked.lines.append(line)
            derivative = DERIVATIVE_TEXT[activation]
            worked.lines.append(Line("backward", f"d{a_name}/d{z_name}", derivative[0].replace("a", a_name),
                                     derivative[1], _values(slope[:, column])))
            text = f"dL/d{a_name} * d{a_name}/d{z_name}"
            product = f"{_number(grad_a[0, column])}*{_number(slope[0, column])}" if len(grad_a) == 1 else ""
            latex = rf"\frac{{\partial L}}{{\partial {_latex(a_name)}}} \frac{{\partial {_latex(a_name)}}}" \
                    rf"{{\partial {_latex(z_name)}}}"
        elif above is None:
            product = ""
            text = f"(a - y)/{error.size}" + (" (Rosenblatt's error)" if network.perceptron_error else
                                              f" ({network.loss} on the {activation}'s z)")
            latex = rf"\frac{{1}}{{{error.size}}}(a - y)"
            product = ""
        else:
            text = latex = "softmax's chain"
            product = ""
        worked.lines.append(Line("backward", f"dL/d{z_name}", text, latex, _values(error[:, column]), product))


def _weight_gradients(worked, depth, layer, below, error) -> None:
    inputs, units = below.shape[1], error.shape[1]
    summed, sum_tex = ("sum over the batch of ", r"\sum_s ") if len(below) > 1 else ("", "")
    for unit in range(1, units + 1):
        z_name = unit_name("z", depth, unit)
        for i in range(1, inputs + 1):
            w_name, a_name = f"w{i}{unit}_{depth}", unit_name("a", depth - 1, i)
            worked.lines.append(Line("backward", f"d{z_name}/d{w_name}", a_name, _latex(a_name),
                                     _values(below[:, i - 1])))
            worked.lines.append(Line(
                "backward", f"dL/d{w_name}", f"{summed}dL/d{z_name} * d{z_name}/d{w_name}",
                rf"{sum_tex}\frac{{\partial L}}{{\partial {_latex(z_name)}}} {_latex(a_name)}",
                [worked.gradients[w_name]],
                f"{_number(error[0, unit - 1])}*{_number(below[0, i - 1])}" if len(below) == 1 else ""))
        if layer.bias is not None:
            b_name = f"b{unit}_{depth}"
            worked.lines.append(Line("backward", f"dL/d{b_name}", f"{summed}dL/d{z_name} * 1",
                                     rf"{sum_tex}\frac{{\partial L}}{{\partial {_latex(z_name)}}}",
                                     [worked.gradients[b_name]]))


def _update_lines(worked, network, shown) -> None:
    text, latex = RULE_TEXT[worked.rule]
    for name in worked.names:
        if int(name.split("_")[1]) in shown:
            worked.lines.append(Line("update", name, text.format(w=name), latex.format(tex=_latex(name)),
                                     [worked.after[name]]))


# Printing ------------------------------------------------------------------------------------------------------

def _number(value) -> str:
    """A number inside a formula: negative ones in brackets, so `0.1*(-0.79)` reads as it should."""
    text = number(float(value))
    return f"({text})" if text.startswith("-") else text


def number(value: float) -> str:
    """A value as a student's calculator shows it: 6 significant digits."""
    return f"{value:.6g}" if math.isfinite(value) else str(value)


def _shown(values: list[float]) -> str:
    if len(values) == 1:
        return number(values[0])
    if len(values) <= SHOWN_SAMPLES:
        return "[" + ", ".join(number(value) for value in values) + "]"
    return "[" + ", ".join(number(value) for value in values[:SHOWN_SAMPLES - 1]) + f", ... {len(values)} samples]"


SECTIONS = {"batch": "The batch", "forward": "Forward: each unit's z and a", "loss": "The loss",
            "backward": "Backward: the chain rule, from the output down; each weight's gradient",
            "update": "The update"}


def heading(worked: WorkedStep) -> list[str]:
    return [f"{worked.recipe}: step {worked.step} (epoch {worked.epoch}, batch {worked.batch_number} of "
            f"{worked.batches_per_epoch}), {worked.batch_size} sample{'s' if worked.batch_size > 1 else ''}, "
            f"{worked.rule} at rate {worked.rate:g}, seed {worked.seed}",
            f"network: {' -> '.join(worked.layers)}; loss {worked.loss}; {len(worked.names)} weights"]


def as_text(worked: WorkedStep) -> str:
    """The step as aligned lines: name = how = value, a section at a time."""
    out = heading(worked)
    if worked.batch_size > 1:
        out.append("a quantity of each sample is a list, one value per sample in batch order")
    width = max(len(line.name) for line in worked.lines)
    formula_width = min(max(len(line.formula) for line in worked.lines), 60)
    section = None
    for line in worked.lines:
        if line.section != section:
            section = line.section
            out += ["", SECTIONS[section]]
        if line.section == "update":
            old, gradient = worked.before[line.name], worked.gradients[line.name]
            sign = "sign" if worked.rule == "sign" else ""
            value = f"{number(old)} - {worked.rate:g}*{sign}({number(gradient)}) = {number(line.values[0])}" \
                if sign else f"{number(old)} - {worked.rate:g}*{_number(gradient)} = {number(line.values[0])}"
            out.append(f"  {line.name:<{width}} = {line.formula:<{formula_width}} = {value}")
        else:
            substituted = f"{line.substituted} = " if line.substituted else ""
            out.append(f"  {line.name:<{width}} = {line.formula:<{formula_width}} = {substituted}"
                       f"{_shown(line.values)}")
    return "\n".join(out) + "\n"


def as_markdown(worked: WorkedStep) -> str:
    """The step as a page: each quantity's formula in LaTeX with its numbers substituted."""
    first, second = heading(worked)
    out = [f"# {first}", "", second, ""]
    section = None
    for line in worked.lines:
        if line.section != section:
            section = line.section
            out += ["", f"## {SECTIONS[section]}", ""]
        name = line.name
        if name.startswith("dL/d"):
            symbol = rf"\frac{{\partial L}}{{\partial {_latex(name[4:])}}}"
        elif name.startswith("d") and "/d" in name:
            top, bottom = name[1:].split("/d")
            symbol = rf"\frac{{\partial {_latex(top)}}}{{\partial {_latex(bottom)}}}"
        else:
            symbol = _latex(name)
        if line.section == "update":
            substituted = rf"{number(worked.before[name])} - {worked.rate:g} \times " + (
                rf"\mathrm{{sign}}({number(worked.gradients[name])})" if worked.rule == "sign"
                else f"({number(worked.gradients[name])})")
            out.append(rf"- ${symbol} \leftarrow {line.latex} = {substituted} = "
                       rf"{number(line.values[0])}$")
        elif line.section == "batch":
            out.append(f"- ${symbol} = {_shown(line.values)}$ ({line.formula})")
        else:
            substituted = line.substituted.replace("*", r" \times ") + " = " if line.substituted else ""
            out.append(f"- ${symbol} = {line.latex} = {substituted}{_shown(line.values)}$")
    return "\n".join(out) + "\n"

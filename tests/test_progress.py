"""What `fit` shows while it trains: the device line, and the live progress line on a terminal."""

from __future__ import annotations

import io
import json
import os
import platform
import pty
import re
import threading
import tty
from pathlib import Path

from beanstrain.devices import load_tensorflow
from beanstrain.progress import Progress


def expected_device(choice: str) -> tuple[str, str]:
    """(kind, name) as TensorFlow and /proc/cpuinfo tell them, for --device auto or cpu."""
    tf = load_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus and choice == "auto":
        return "gpu", tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    return "cpu", f"{model} ({os.cpu_count()} cores)"


def test_the_device_line_names_the_device_the_engine_and_the_run_folder(invoke, tmp_path, no_pictures):
    """With --device cpu; the pseudo-terminal test below checks the line of --device auto."""
    result = invoke("fit", "beans7-neuron", "--epochs", 2, "--device", "cpu", "--out", tmp_path)
    run_dir = Path(result.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
    config = json.loads((run_dir / "config.json").read_text())
    kind, name = expected_device("cpu")
    assert f"device: {kind} ({name}); engine: fit; run: {run_dir}" in result.stderr.splitlines()
    assert (config["device"]["kind"], config["device"]["name"]) == (kind, name)
    assert "trained in " in result.stdout and f" on {name} (fit engine)" in result.stdout


def read_all(descriptor: int, into: list) -> threading.Thread:
    def read():
        while True:
            try:
                data = os.read(descriptor, 4096)
            except OSError:  # the other end was closed
                return
            if not data:
                return
            into.append(data)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


PROGRESS = re.compile(r"epoch +(\d+)/5  loss \S+  accuracy \S+  test_loss \S+  test_accuracy \S+  \S+s.*")


def test_on_a_terminal_the_progress_is_one_line_rewritten_in_place(tmp_path, no_pictures):
    """`fit` writing to a pseudo-terminal: the header and device lines, then carriage returns only, each
    redraw padded over the last, and one newline when training ends."""
    from beanstrain.recipes import resolve_recipe
    from beanstrain.training import fit_run

    controller, terminal_end = pty.openpty()
    tty.setraw(terminal_end)  # the bytes as written, without the terminal's newline translation
    received = []
    reader = read_all(controller, received)
    with os.fdopen(terminal_end, "w", encoding="utf-8") as terminal:
        assert terminal.isatty()
        summary = fit_run(resolve_recipe("beans7-neuron", {"epochs": 5}), out=tmp_path, stream=terminal)
    reader.join(timeout=10)
    os.close(controller)
    header, device, progress = b"".join(received).decode().split("\n", 2)
    assert header.startswith("beans7-neuron: neuron on beans7, 5 epochs")
    kind, name = expected_device("auto")
    assert device == f"device: {kind} ({name}); engine: {summary['engine']}; run: {summary['run_dir']}"

    assert progress.startswith("\r") and progress.endswith("\n") and progress.count("\n") == 1
    redraws = progress[1:-1].split("\r")
    epochs = [int(PROGRESS.fullmatch(redraw.rstrip()).group(1)) for redraw in redraws]
    assert len(redraws) >= 2 and epochs[0] == 1 and epochs[-1] == 5 and epochs == sorted(set(epochs))
    for before, after in zip(redraws, redraws[1:]):
        assert len(after) >= len(before.rstrip())


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_shorter_redraw_covers_the_longer_line_before_it():
    terminal = Terminal()
    progress = Progress(10, stream=terminal)
    progress.update(1, {"loss": 123456.789, "accuracy": 0.5})
    progress.update(10, {"loss": 0.5})  # the last epoch is always drawn
    progress.close()
    first, second = terminal.getvalue().removeprefix("\r").removesuffix("\n").split("\r")
    assert first.startswith("epoch  1/10  loss 1.235e+05  accuracy 0.500  ")
    assert second.startswith("epoch 10/10  loss 0.5  ") and len(second) == len(first)
    assert second.rstrip() != second

"""Every engine in the registry: the trainer protocol, the same weights, state and snapshots."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from beanstrain.data import generate
from beanstrain.engines import (
    COMPILED_MIN_STEPS,
    ENGINE_CHOICES,
    ENGINES,
    EngineState,
    TrainData,
    Trainer,
    choose_engine,
)
from beanstrain.engines.build import make_trainer
from beanstrain.errors import RunError
from beanstrain.models import NETWORKS
from beanstrain.objectives import encode_targets, make_accuracy_metric, make_loss, make_optimizer

ENGINES_DOC = Path(__file__).resolve().parents[2] / "docs" / "engines.md"


def spiral_trainer(engine, model, snapshot_epochs=(), optimizer=None):
    """Adam under the Keras engines; the hand-written `sgd` under an engine of update rules."""
    optimizer = optimizer or ("sgd" if ENGINES[engine].optimizers == "rules" else "adam")
    x, y = generate("spiral", 60, 0.0, seed=2)
    xt, yt = generate("spiral", 60, 0.0, seed=2, stream=1)
    encode = lambda targets: encode_targets(targets, "binary", "binary_crossentropy", 2)  # noqa: E731
    return make_trainer(engine, model, make_loss("binary_crossentropy"), make_optimizer(optimizer, 0.01, engine),
                        TrainData(x, encode(y), xt, encode(yt)), 7, 3, "binary",
                        make_accuracy_metric("binary", "binary_crossentropy"), snapshot_epochs=snapshot_epochs)


def test_fit_engine_takes_the_compiled_loops_batches(twins):
    """Both engines visit each epoch in epoch_permutation order, so they reach the same weights."""
    compiled_model, fit_model = twins("deep8", (2,), "binary", 2)
    histories = [spiral_trainer(engine, model).run(0, 5)
                 for engine, model in (("compiled", compiled_model), ("fit", fit_model))]
    for compiled_weight, fit_weight in zip(compiled_model.get_weights(), fit_model.get_weights()):
        np.testing.assert_allclose(compiled_weight, fit_weight, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(histories[0].column("loss"), histories[1].column("loss"), rtol=1e-4)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_every_engine_offers_the_trainer_protocol(twins, engine):
    trainer = spiral_trainer(engine, twins("deep8", (2,), "binary", 2)[0])
    assert isinstance(trainer, Trainer)
    assert trainer.columns == ["loss", "accuracy", "test_loss", "test_accuracy"]
    history = trainer.run(0, 3)
    assert history.columns == trainer.columns and history.epochs_done == 3


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_snapshot_at_epoch_k_equals_a_run_stopped_at_epoch_k(twins, engine):
    models = twins("deep8", (2,), "binary", 2)
    asked = (0, 2, 5, 9)  # 9 is never reached in 6 epochs
    traced = spiral_trainer(engine, models[0], snapshot_epochs=asked)
    traced.run(0, 6)
    assert sorted(traced.snapshots) == [0, 2, 5]
    for epoch in (0, 2, 5):
        shorter = spiral_trainer(engine, twins("deep8", (2,), "binary", 2)[0])
        shorter.run(0, epoch)
        for snapshot, weights in zip(traced.snapshots[epoch], shorter.get_state().weights, strict=True):
            np.testing.assert_array_equal(snapshot, weights)
    # Asking for snapshots changes nothing in the run itself.
    plain = spiral_trainer(engine, models[1])
    plain.run(0, 6)
    for traced_weights, plain_weights in zip(traced.get_state().weights, plain.get_state().weights, strict=True):
        np.testing.assert_array_equal(traced_weights, plain_weights)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_state_put_back_continues_the_run_exactly(twins, engine):
    """A trainer given another's state after 3 epochs ends where a straight run of 6 ends."""
    straight_model, resumed_model = twins("deep8", (2,), "binary", 2)
    straight = spiral_trainer(engine, straight_model)
    straight.run(0, 3)
    saved = straight.get_state()
    straight.run(3, 6)
    resumed = spiral_trainer(engine, resumed_model)
    resumed.set_state(saved)
    resumed.run(3, 6)
    for name in ("weights", "optimizer_variables"):
        for mine, theirs in zip(getattr(resumed.get_state(), name), getattr(straight.get_state(), name), strict=True):
            np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_a_state_that_does_not_fit_is_refused(twins, engine):
    trainer = spiral_trainer(engine, twins("deep8", (2,), "binary", 2)[0])
    state = trainer.get_state()
    with pytest.raises(RunError, match="do not fit the network"):
        trainer.set_state(EngineState(state.weights[:-1], state.optimizer_variables))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_engine_rule_follows_the_registry(name):
    network_engine = NETWORKS[name].engine
    assert network_engine is None or network_engine in ENGINES
    assert choose_engine("auto", network_engine, steps=COMPILED_MIN_STEPS - 1) == "fit"
    assert choose_engine("auto", network_engine, steps=5000 * 10) == (network_engine or "compiled")
    for requested in ENGINES:
        assert choose_engine(requested, network_engine, steps=1) == requested


def test_choices_are_auto_and_every_engine():
    assert ("auto", *ENGINES) == ENGINE_CHOICES


def test_the_docs_table_of_engines_is_the_registry():
    table = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", ENGINES_DOC.read_text(), flags=re.MULTILINE))
    assert {name: table.get(name) for name in ENGINES} == {name: engine.summary for name, engine in ENGINES.items()}

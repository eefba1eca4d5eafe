"""Making the trainer a run asks for: an engine's trainer, wrapped on levels when the recipe has them.

    >>> from beanstrain.engines.registry import get_engine
    >>> get_engine("numpy").trainer
    'NumpyTrainer'
"""

from __future__ import annotations

from beanstrain.backends import active_backend
from beanstrain.engines.levels import LevelsTrainer
from beanstrain.engines.protocol import TrainData, Trainer
from beanstrain.engines.registry import get_engine


def make_trainer(engine: str, model, loss_fn, optimizer, data: TrainData, batch_size: int, seed: int,
                 accuracy: str | None, metric=None, snapshot_epochs=(), levels=None) -> Trainer:
    """A trainer for `engine`; the model is compiled with the same objects either way,
    so the saved file carries the optimizer and its state.

    With `levels` (`engines.levels.LevelSettings`), the engine's trainer is
    wrapped so that every weight stays on its levels (`engines.levels.LevelsTrainer`).  The engine's twin for
    the backend Keras runs on is taken where it has one (`Engine.twins`).
    """
    trainer_class = get_engine(engine).load(active_backend())
    if levels is None:
        return trainer_class(model, loss_fn, optimizer, data, batch_size, seed, accuracy, metric,
                             snapshot_epochs=snapshot_epochs)
    inner = trainer_class(model, loss_fn, optimizer, LevelsTrainer.inner_data(data), batch_size, seed, accuracy,
                          metric)
    return LevelsTrainer(inner, levels, loss_fn, accuracy, data, snapshot_epochs=snapshot_epochs)

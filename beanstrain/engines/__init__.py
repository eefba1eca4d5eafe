"""The ways a network is trained: the engine registry, the trainer protocol, and making a trainer.

    registry.py      ENGINES, get_engine, choose_engine: which engines exist and which a run takes
    protocol.py      Trainer, TrainData, History, EngineState: what every engine's trainer offers
    build.py         make_trainer: the trainer for a run, wrapped on levels when it has them
    compiled.py, keras_fit.py, numpy_engine.py    the engines themselves, imported when a run uses them

This package only re-exports the registry and the protocol, which import no engine; `make_trainer`
is imported from `beanstrain.engines.build`, which needs the levels wrapper and so the objectives.
"""

from beanstrain.engines.protocol import EngineState, History, TrainData, Trainer, history_columns
from beanstrain.engines.registry import (
    COMPILED_MIN_STEPS,
    ENGINE_CHOICES,
    ENGINES,
    Engine,
    choose_engine,
    get_engine,
)

__all__ = ["COMPILED_MIN_STEPS", "ENGINE_CHOICES", "ENGINES", "Engine", "EngineState", "History", "TrainData",
           "Trainer", "choose_engine", "get_engine", "history_columns"]

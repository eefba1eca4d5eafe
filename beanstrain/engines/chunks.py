"""What the compiled loops share: the run cut into chunks of epochs, each one call of a compiled function.

    >>> snapshot_slots([5, 1, 3])
    [-1, 1, -1, 2, -1, 0, -1]

A chunk is sized so that it takes about CHUNK_SECONDS: progress moves and an interrupt is honoured between
chunks, while the per-call overhead stays negligible.  The first call compiles and says nothing about the
pace, so the second trains one epoch too, and chunks are sized from then on: a run of slow epochs still
reports every epoch.  The TensorFlow loop (`compiled.py`) and its JAX twin (`jax_compiled.py`) each give
`run_chunks` one function that trains a chunk.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from beanstrain.engines.protocol import History

# A chunk of epochs should take about this long.
CHUNK_SECONDS = 0.5
# The most epochs one call's table of rows holds.
MOST_ROWS = 100_000


def snapshot_slots(buffered: list[int]) -> list[int]:
    """For each epoch up to the last buffered one (and one past it), its row in the snapshot buffer, or -1."""
    rows = [-1] * ((max(buffered) + 2) if buffered else 1)
    for slot, epoch in enumerate(buffered):
        rows[epoch] = slot
    return rows


def run_chunks(train_chunk: Callable[[int, int, int], tuple[int, list]], start_epoch: int, epochs: int,
               history: History, on_chunk: Callable | None, should_stop: Callable[[], bool] | None,
               after_chunk: Callable[[int, int], None], most: int | None = None) -> History:
    """Train from `start_epoch` up to `epochs` in chunks: `train_chunk(epoch, count, capacity)` trains up to
    `count` epochs and returns how many it did and their rows; `after_chunk(first, last)` runs before the
    listeners hear of the chunk (the weights written back, the snapshots copied).  `most` caps a chunk's epochs
    (one, while early stopping judges every epoch)."""
    capacity = max(1, min(epochs - start_epoch, MOST_ROWS, most or MOST_ROWS))
    chunk, epoch, calls = 1, start_epoch, 0
    while epoch < epochs:
        count = min(chunk, epochs - epoch)
        started = time.perf_counter()
        done, rows = train_chunk(epoch, count, capacity)
        elapsed = time.perf_counter() - started
        history.rows.extend(rows[:done])
        after_chunk(epoch, epoch + done)
        epoch += done
        calls += 1
        if on_chunk:
            on_chunk(epoch, history)
        if done < count or history.diverged_at() or (should_stop and should_stop()):
            break
        if calls > 1:
            per_epoch = max(elapsed / done, 1e-6)
            chunk = int(min(max(1, CHUNK_SECONDS / per_epoch), chunk * 10, capacity))
    return history

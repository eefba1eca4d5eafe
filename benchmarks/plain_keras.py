"""The course's LeNet-5 in plain Keras, the baseline the speed benchmarks time beanstrain against.

    python benchmarks/plain_keras.py fashion.npz EPOCHS      # prints one JSON line

The same network and settings as the course's script (SGD 0.05, batch 1024, `model.fit` with its own
shuffle), each epoch timed; the benchmarks run it as a script in a process of its own, on the backend
KERAS_BACKEND names, so it imports nothing of beanstrain.
"""

import json
import sys
import time

import keras
import numpy as np


def main() -> None:
    data = np.load(sys.argv[1])
    epochs = int(sys.argv[2])
    x = (data["x_train"].astype("float32") / 255.0)[..., None]
    y = np.eye(10, dtype="float32")[data["y_train"]]
    x_test = (data["x_test"].astype("float32") / 255.0)[..., None]
    y_test = np.eye(10, dtype="float32")[data["y_test"]]
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(filters=6, kernel_size=5, activation="relu"), layers.AveragePooling2D(pool_size=2),
        layers.Conv2D(filters=16, kernel_size=5, activation="relu"), layers.AveragePooling2D(pool_size=2),
        layers.Flatten(), layers.Dense(units=120, activation="relu"), layers.Dense(units=84, activation="relu"),
        layers.Dense(units=10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.05), loss="categorical_crossentropy",
                  metrics=["accuracy"])
    seconds = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    started = time.perf_counter()
    model.fit(x, y, batch_size=1024, epochs=epochs, shuffle=True, verbose=0, callbacks=[Clock()])
    total = time.perf_counter() - started
    _, accuracy = model.evaluate(x_test, y_test, batch_size=1024, verbose=0)
    later = seconds[1:]
    print(json.dumps({"seconds": total, "epoch_seconds": seconds, "test_accuracy": float(accuracy),
                      "later_epoch_seconds": sum(later) / len(later) if later else None}))


if __name__ == "__main__":
    main()

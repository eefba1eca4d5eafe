"""The hooks of tests/hooked_beanstrain.py in every Python process a test's command starts, Ray's workers included.

A test puts this folder first on PYTHONPATH; Python imports `sitecustomize` as it starts, so a sweep's trial,
trained in a worker process that Ray started, waits at the epoch given until the sweep's Ctrl-C reaches it.
Without BEANSTRAIN_TEST_WAIT_AT it does nothing.
"""

import os
import sys
from pathlib import Path

if "BEANSTRAIN_TEST_WAIT_AT" in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from hooked_beanstrain import wait_for_a_stop_signal

    wait_for_a_stop_signal(int(os.environ["BEANSTRAIN_TEST_WAIT_AT"]), Path(os.environ["BEANSTRAIN_TEST_READY"]))

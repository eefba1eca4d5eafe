"""The Ray driver: `beanstrain sweep` runs its trials as Ray tasks, on this machine or across a cluster.

    beanstrain sweep beans4-hidden2 --set seed=0..3 --parallel 2

Each trial is one Ray task that calls `training.fit_run` (or `resume_run`)
into its own run folder.  Ray keeps its worker processes between tasks, so
a worker imports TensorFlow once and trains trial after trial; each trial's
TensorFlow uses its share of the CPUs:

    >>> trial_share(cpus=2, parallel=2), trial_share(cpus=2, parallel=1), trial_share(cpus=2, parallel=4)
    ((1.0, 1), (2.0, 2), (0.5, 1))

Ray tasks rather than Ray Tune: the same four beans4-hidden2 trials took 17 s
as tasks and 19 s as Tune function trainables on 2 cores, and Tune writes an
experiment folder of its own beside ours and prints its tables.  Ray's own
files and logs stay in Ray's temporary folder (/tmp/ray), never in --out.

Ctrl-C (or SIGTERM) asks Ray to interrupt the running tasks: each trial's own
handler stops it after the epoch (or chunk) it is in and saves a checkpoint,
as `fit` does; trials not yet handed out stay pending.  A second signal stops
at once.
"""

from __future__ import annotations

import io
import logging
import os
import socket
import sys
import time
from pathlib import Path

from beanstrain import runs
from beanstrain.backends import DEFAULT_BACKEND, use_backend
from beanstrain.board import write_sweep_hparams
from beanstrain.checkpoints import has_checkpoint
from beanstrain.devices import load_keras, load_tensorflow
from beanstrain.errors import RunError, UsageError, first_line
from beanstrain.interrupts import StopRequest
from beanstrain.recipes import Recipe, as_dict, fit_words, load_recipe
from beanstrain.sweep import (
    MAX_TRIALS,
    PENDING,
    check_gate,
    combinations,
    create_sweep,
    describe,
    draw,
    echo,
    gate,
    load_sweep,
    node_text,
    parse_grid,
    record_outcome,
    save,
    sweep_state,
    trial_recipe,
)
from beanstrain.training import fit_run, resume_run

RAY_MISSING = ("beanstrain sweep needs Ray, which is not installed: pip install \"beanstrain[sweep]\" "
               "(or pip install ray)")
INTERRUPTED = runs.INTERRUPTED
# How often the loop looks up from waiting for a trial, to see a Ctrl-C.
POLL_SECONDS = 0.5


def import_ray():
    """Ray, or the one line that says how to get it."""
    try:
        import ray
    except ImportError:
        raise RunError(RAY_MISSING) from None
    return ray


def trial_share(cpus: float, parallel: int) -> tuple[float, int]:
    """The CPUs Ray reserves for a trial and the TensorFlow threads it may use, with `parallel` trials at once."""
    share = cpus / parallel
    return (float(int(share)) if share >= 1 else round(share, 4)), max(1, int(share))


def start_ray(address: str | None):
    """Connect to a cluster, or start Ray inside this command; quietly, with no dashboard."""
    ray = import_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # the workers inherit it, as `fit` sets it for itself
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at {address}" if address else "Ray on this machine"
        hint = (" (is its head node running, and does this machine hold the cluster's token: RAY_AUTH_MODE=token "
                "and RAY_AUTH_TOKEN_PATH, as docs/sweeps-and-pages.md shows?)") if address else ""
        raise RunError(f"cannot start or reach {where}: {first_line(error)}{hint}") from None
    return ray


def cluster_cpus(ray) -> tuple[float, float]:
    """All the CPUs Ray offers, and the most on any one machine (a trial cannot span two)."""
    per_node = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]
    return float(sum(per_node)) or 1.0, float(max(per_node, default=1.0)) or 1.0


def run_trial(recipe: dict, out: str, run_dir: str, resume: bool, threads: int, command: list[str],
              data_path: str | None = None, backend: str = DEFAULT_BACKEND) -> dict:
    """In a Ray worker: one trial as `beanstrain fit` would train it; what went wrong comes back as text."""
    worker = f"{socket.gethostname()}:{os.getpid()}"  # the process that trained it; it keeps Keras loaded
    node = trial_node()
    try:
        use_backend(backend)
    except UsageError as error:
        return {"error": first_line(error, limit=None), "warnings": None, "worker": worker, "node": node}
    limit_threads(backend, threads)
    saved_argv, sys.argv = sys.argv, command  # config.json records the command that trained the run
    try:
        if resume:
            summary = resume_run(Path(run_dir), device="cpu", quiet=True, stream=io.StringIO())
        else:
            summary = fit_run(Recipe(**recipe), out=Path(out), device="cpu", quiet=True, stream=io.StringIO(),
                              run_dir=Path(run_dir), data_path=data_path)
        return {"error": None, "warnings": summary["warnings"], "worker": worker, "node": node}
    except KeyboardInterrupt:
        return {"error": INTERRUPTED, "warnings": None, "worker": worker, "node": node}
    except (RunError, UsageError) as error:  # beanstrain's own one-line reason, whole
        return {"error": first_line(error, limit=None), "warnings": None, "worker": worker, "node": node}
    except Exception as error:  # the trial's failure is recorded; the sweep goes on
        return {"error": first_line(error), "warnings": None, "worker": worker, "node": node}
    finally:
        sys.argv = saved_argv


def trial_node() -> dict:
    """In a Ray worker: the Ray node it runs on, as Ray names it (its id) and knows its machine (the IP address
    Ray started the worker process with)."""
    import ray

    try:
        address = ray._private.worker.global_worker.node_ip_address
    except (AttributeError, ray.exceptions.RaySystemError):
        address = ray.util.get_node_ip_address()
    return {"id": ray.get_runtime_context().get_node_id(), "ip": address}


def limit_threads(backend: str, threads: int) -> None:
    """A trial's share of the CPUs: the framework's thread pools, where the backend lets them be set."""
    if backend == "tensorflow":
        tf = load_tensorflow()
        try:  # only before TensorFlow first runs anything in this worker; later trials keep the same count
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:
            pass
    elif backend == "torch":
        load_keras()
        import torch

        torch.set_num_threads(threads)


def fit_command(recipe: dict, out: str, run_dir: str, data_path: str | None = None,
                backend: str = DEFAULT_BACKEND) -> list[str]:
    """The `beanstrain fit` command line that trains the same run on its own (`recipes.fit_words`)."""
    return fit_words(Recipe(**recipe), Path(run_dir), data_path, backend=backend) + ["--out", out, "--device", "cpu"]


def next_run(trial: dict, out: Path) -> tuple[Path, bool]:
    """Where a trial trains and whether it resumes: its own interrupted run from the checkpoint, else a fresh
    run (in its folder if that is still empty, else in a new one)."""
    run_dir = Path(trial["run_dir"]) if trial.get("run_dir") else None
    if run_dir is not None and run_dir.is_dir():
        if (run_dir / runs.CONFIG).is_file():
            if trial["state"] in (runs.INTERRUPTED, runs.FAILED, runs.RUNNING) and has_checkpoint(run_dir):
                return run_dir, True
        elif not any(run_dir.iterdir()):
            return run_dir, False
    return runs.create_run_dir(out, trial["recipe"]["name"]), False


def run_trials(sweep_dir: Path, sweep: dict, parallel: int | None, address: str | None, quiet: bool = False) -> dict:
    """Run every trial not done yet, at most `parallel` at once; sweep.json follows each change."""
    todo = [trial for trial in sweep["trials"] if trial["state"] not in (runs.FINISHED, runs.DIVERGED)]
    backend = sweep.get("backend", DEFAULT_BACKEND)
    started = time.monotonic()
    ray = start_ray(address)
    try:
        cpus, node_cpus = cluster_cpus(ray)
        parallel = parallel or max(1, int(cpus))
        reserve, threads = trial_share(min(cpus, node_cpus * parallel), parallel)
        remote = ray.remote(run_trial).options(num_cpus=min(reserve, node_cpus), max_retries=0)
        where = f"the Ray cluster at {address}" if address else "Ray on this machine"
        say = (lambda message: None) if quiet else echo
        say(f"sweep {sweep['recipe']}: {len(todo)} of {len(sweep['trials'])} trials to run, up to {parallel} at "
            f"once on {where} ({cpus:g} CPUs, {threads} {backend} thread{'s' * (threads > 1)} each); "
            f"started in {time.monotonic() - started:.1f}s")
        say(f"sweep folder: {sweep_dir}")
        total = len(sweep["trials"])
        done = total - len(todo)
        running: dict = {}
        out = Path(sweep["out"])
        with StopRequest(message="stopping the sweep: each running trial is stopping after its epoch") as stop:
            cancelled = False
            try:
                while todo or running:
                    if stop.requested() and not cancelled:
                        for reference in running:
                            ray.cancel(reference, force=False)
                        cancelled = True
                    while todo and not stop.requested() and len(running) < parallel:
                        trial = todo.pop(0)
                        run_dir, resume = next_run(trial, out)
                        trial.update(run_dir=str(run_dir), state=runs.RUNNING)
                        save(sweep_dir, sweep)
                        command = fit_command(trial["recipe"], str(out), str(run_dir), sweep.get("data"), backend)
                        running[remote.remote(trial["recipe"], str(out), str(run_dir), resume, threads,
                                              command, sweep.get("data"), backend)] = trial
                        say(f"trial {trial['trial']}/{total} {'resumed' if resume else 'started'}: "
                            f"{describe(trial['settings'])}")
                    if stop.requested() and not running:
                        break
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_SECONDS)
                    for reference in ready:
                        trial = running.pop(reference)
                        outcome = _result(ray, reference)
                        record_outcome(trial, outcome["error"], outcome["warnings"])
                        trial.update(worker=outcome.get("worker"), node=outcome.get("node"))
                        if outcome["error"] == INTERRUPTED:
                            _interrupted(trial)
                        elif trial["state"] == runs.FAILED and _remove_if_empty(trial["run_dir"]):
                            trial["run_dir"] = None  # it failed before its run began: no folder is left behind
                        save(sweep_dir, sweep)
                        done += trial["state"] in (runs.FINISHED, runs.FAILED, runs.DIVERGED)
                        node = f" on {node_text(trial['node'])}" if address and trial["node"] else ""
                        say(f"trial {trial['trial']}/{total} {trial['state']}{node}: {describe(trial['settings'])}"
                            f"{_metrics_text(trial)}  [{done} of {total} done]")
            except KeyboardInterrupt:  # the second signal: leave at once, with what the run folders say
                for reference in running:
                    ray.cancel(reference, force=True)
                for trial in running.values():
                    _interrupted(record_outcome(trial, INTERRUPTED))
                save(sweep_dir, sweep)
        return sweep
    finally:
        ray.shutdown()


def _result(ray, reference) -> dict:
    """A finished task's answer; a task Ray lost (its worker or machine died) or cancelled before it began."""
    try:
        return ray.get(reference)
    except ray.exceptions.TaskCancelledError:
        return {"error": INTERRUPTED, "warnings": None}
    except ray.exceptions.RayError as error:
        return {"error": f"the trial's process ended: {first_line(error)}", "warnings": None}


def _interrupted(trial: dict) -> None:
    """A trial a Ctrl-C reached: interrupted (resumable from its checkpoint), or still pending when it
    was stopped before its run began (its empty run folder goes)."""
    if trial["state"] in (runs.FINISHED, runs.DIVERGED):  # it ended on its own just before
        return
    if _remove_if_empty(trial["run_dir"]):
        trial.update(run_dir=None, state=PENDING, error=None)
        return
    trial.update(state=runs.INTERRUPTED, error=INTERRUPTED)


def _remove_if_empty(run_dir: str | None) -> bool:
    """Remove a trial's run folder that its run never wrote to; whether it is gone."""
    path = Path(run_dir) if run_dir else None
    if path is None or not path.is_dir() or any(path.iterdir()):
        return False
    try:
        path.rmdir()
    except OSError:
        return False
    return True


def _metrics_text(trial: dict) -> str:
    test = trial.get("test") or {}
    if "accuracy" in test:
        text = f"  test accuracy {test['accuracy']:.4f}"
    elif "loss" in test:
        text = f"  test loss {test['loss']:.4g}"
    else:
        text = f"  ({trial['error']})" if trial.get("error") else ""
    return text + (f" in {trial['train_seconds']:.1f}s" if trial.get("train_seconds") is not None else "")


def run_sweep(recipe_name: str, settings: list[str], out: Path, address: str | None = None,
              parallel: int | None = None, min_accuracy: float | None = None, min_fraction: float | None = None,
              quiet: bool = False, data_path: str | None = None, backend: str | None = None,
              max_trials: int = MAX_TRIALS) -> dict:
    """`beanstrain sweep RECIPE --set ...`: check everything, make the sweep folder, run the trials, draw, judge.

    `data_path` (--data) is the MNIST-format data every trial of an image recipe trains on; `backend`
    (--backend, else KERAS_BACKEND, else tensorflow) the Keras backend every trial trains on."""
    backend = use_backend(backend)
    if address and not Path(out).is_absolute():
        raise UsageError(f"--out {out}: with --address, give an absolute path to storage every node of the "
                         "cluster sees")
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {parallel}")
    base = load_recipe(recipe_name)
    grid = parse_grid(settings, max_trials)  # counted first: a grid too large is refused before it is built
    recipes = [as_dict(trial_recipe(base, point)) for point in combinations(grid)]
    check_gate(min_accuracy, min_fraction, recipes)
    import_ray()
    source = str(Path(recipe_name).absolute()) if recipe_name.endswith(".toml") else recipe_name
    if data_path is not None:  # the trials' processes need not share this one's working folder
        if not Path(data_path).exists():
            raise UsageError(f"--data {data_path} does not exist")
        data_path = str(Path(data_path).absolute()) if address is None else data_path
    sweep_dir, sweep = create_sweep(base, source, grid, Path(out).absolute() if address is None else Path(out), address,
                                    parallel, list(sys.argv), data_path)
    sweep["backend"] = backend
    return _run(sweep_dir, sweep, parallel, address, min_accuracy, min_fraction, quiet)


def resume_sweep(sweep_dir: Path, parallel: int | None = None, min_accuracy: float | None = None,
                 min_fraction: float | None = None, quiet: bool = False, backend: str | None = None) -> dict:
    """`beanstrain sweep --resume SWEEP_DIR`: run only the trials that did not finish, where they stopped, on the
    backend the sweep recorded."""
    sweep = load_sweep(sweep_dir)
    recorded = sweep.get("backend", DEFAULT_BACKEND)
    if backend is not None and backend != recorded:
        raise UsageError(f"--resume {sweep_dir}: the sweep trains on the {recorded} backend; its trials resume "
                         f"there only, so drop --backend {backend}")
    use_backend(recorded)
    check_gate(min_accuracy, min_fraction, [trial["recipe"] for trial in sweep["trials"]])
    import_ray()
    if parallel is not None and parallel < 1:
        raise UsageError(f"--parallel must be at least 1, got {parallel}")
    sweep.setdefault("resumed", []).append({"command": list(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
    return _run(Path(sweep_dir), sweep, parallel or sweep.get("parallel"), sweep.get("address"), min_accuracy,
                min_fraction, quiet)


def _run(sweep_dir: Path, sweep: dict, parallel, address, min_accuracy, min_fraction, quiet) -> dict:
    with runs.holding(sweep_dir):
        if sweep_state(sweep) != runs.FINISHED or any(trial["state"] == runs.FAILED for trial in sweep["trials"]):
            sweep["state"] = runs.RUNNING
            run_trials(sweep_dir, sweep, parallel, address, quiet)
        sweep["state"] = sweep_state(sweep)
        sweep["ended"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        save(sweep_dir, sweep)
        finished = any(trial["state"] == runs.FINISHED for trial in sweep["trials"])
        picture = draw(sweep_dir, sweep) if finished else None
        if finished:
            write_sweep_hparams(sweep_dir, sweep)
    passed, verdict = (None, None)
    if min_accuracy is not None and sweep["state"] == runs.FINISHED:
        passed, verdict = gate(sweep, min_accuracy, 1.0 if min_fraction is None else min_fraction)
    return {"sweep_dir": str(sweep_dir), "state": sweep["state"], "picture": picture, "passed": passed,
            "gate": verdict, "trials": sweep["trials"]}

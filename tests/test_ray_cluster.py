"""`beanstrain sweep --address` against a real two-node Ray cluster started on this machine.

A head node and a second node, one CPU each, with Ray's token authentication as Ray documents it
(RAY_AUTH_MODE=token and the shared token in a file named by RAY_AUTH_TOKEN_PATH, on every node and
for the driver); their own ports and temporary folder, so nobody else's Ray is touched.  The sweep's
trials must run on both nodes and give the figures a sweep on this machine gives.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
SWEEP = ["sweep", "beans1-sgd", "--set", "seed=0..3", "--set", "epochs=2"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_node(arguments: list[str], env: dict, log: Path) -> subprocess.Popen:
    """`ray start ... --block` in its own process group, so that stopping it ends only what it started."""
    with open(log, "w") as stream:
        return subprocess.Popen([RAY, "start", *arguments, "--block"], env=env, stdout=stream,
                                stderr=subprocess.STDOUT, start_new_session=True)


def alive_nodes(env: dict, address: str) -> int:
    probe = ("import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR', log_to_driver=False); "
             "print(sum(node['Alive'] for node in ray.nodes()))")
    result = subprocess.run([sys.executable, "-c", probe, address], env=env, capture_output=True, text=True,
                            timeout=60)
    return int(result.stdout.split()[-1]) if result.returncode == 0 and result.stdout.split() else 0


@pytest.fixture
def cluster(tmp_path_factory):
    if not Path(RAY).is_file():
        pytest.skip("the ray command is not installed (pip install \"beanstrain[sweep]\")")
    home = tmp_path_factory.mktemp("ray-cluster")
    token = home / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    # Short, so that Ray's socket paths stay under the system's limit.
    temp = Path(f"/tmp/bsr{os.getpid()}")
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_ADDRESS", None)
    port = free_port()
    address = f"127.0.0.1:{port}"

    def own_ports() -> list[str]:  # every port a node opens, free ones, so that two nodes and others' Ray coexist
        names = ["--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port"]
        return [word for name in names for word in (name, str(free_port()))] + [
            "--num-cpus", "1", "--num-gpus", "0", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]

    nodes = []
    try:
        nodes.append(start_node(["--head", "--port", str(port), "--include-dashboard", "false", "--temp-dir",
                                 str(temp), "--ray-client-server-port", str(free_port()), *own_ports()], env,
                                home / "head.log"))
        deadline = time.monotonic() + 60
        while alive_nodes(env, address) < 1:
            assert time.monotonic() < deadline, (home / "head.log").read_text()
            time.sleep(1)
        nodes.append(start_node(["--address", address, *own_ports()], env, home / "worker.log"))
        while alive_nodes(env, address) < 2:
            assert time.monotonic() < deadline, (home / "worker.log").read_text()
            time.sleep(1)
        yield address, env
    finally:
        for node in reversed(nodes):  # the worker node first, then the head
            stop(node)
        shutil.rmtree(temp, ignore_errors=True)


def stop(node: subprocess.Popen) -> None:
    """End a node's whole process group (its raylet, its workers, the head's GCS), gently, then at once."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(node.pid, sent)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=3)
        except subprocess.TimeoutExpired:
            continue
        if sent == signal.SIGTERM:
            time.sleep(1)  # let the group's other processes go


def beanstrain(*arguments: str, env: dict) -> str:
    result = subprocess.run([sys.executable, "-m", "beanstrain", *arguments], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_a_sweep_spreads_over_a_two_node_cluster_and_matches_a_local_sweep(cluster, tmp_path):
    address, env = cluster
    printed = beanstrain(*SWEEP, "--address", address, "--parallel", "2", "--out", str(tmp_path / "cluster"), env=env)
    (sweep_dir,) = (tmp_path / "cluster" / "sweeps").iterdir()
    spread = json.loads((sweep_dir / "sweep.json").read_text())
    assert spread["state"] == "finished"
    nodes = {trial["node"]["id"] for trial in spread["trials"]}
    assert len(nodes) == 2, spread["trials"]  # one CPU a node, two trials at once: both nodes trained
    assert all(trial["node"]["ip"] for trial in spread["trials"])
    for trial in spread["trials"]:  # each trial's line names its node: IP address and the start of Ray's id
        line = next(line for line in printed.splitlines() if line.startswith(f"trial {trial['trial']} "))
        assert line.endswith(f" on {trial['node']['ip']}/{trial['node']['id'][:8]}"), line
    with open(sweep_dir / "results.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["node"] for row in rows] == [f"{t['node']['ip']}/{t['node']['id'][:8]}" for t in spread["trials"]]

    local_env = {key: value for key, value in env.items() if not key.startswith("RAY_AUTH")}
    here = json.loads(beanstrain(*SWEEP, "--json", "--parallel", "1", "--out", str(tmp_path / "local"), env=local_env))
    assert [trial["settings"] for trial in here["trials"]] == [trial["settings"] for trial in spread["trials"]]
    assert [trial["test"] for trial in here["trials"]] == [trial["test"] for trial in spread["trials"]]
    assert len({trial["node"]["id"] for trial in here["trials"]}) == 1

"""`vaekit train --distributed`: two processes on this machine (CPU devices, gloo), end to end.

Few launches: one uninterrupted two-process run, one killed mid-run and resumed, one
whose process 0 fails before training, one that never finds its coordinator.
"""

import json
import os
import socket
import subprocess
import sys
import time

import equinox as eqx
import jax
import numpy as np
import pytest

import vaekit as vk
from vaekit.cli import main

TINY = ["--data", "digits", "--limit", "300", "--hidden", "16", "--batch-size", "20", "--checkpoint-every", "1", "-q"]
EPOCHS = 4
TIMEOUT = 30  # --distributed-timeout of the runs here (bounds a lost process; a killed one is seen at once)


def _port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def _start(args: list[str], cwd, n: int = 2, flags: bool = True) -> list[subprocess.Popen]:
    """``n`` processes of ``vaekit train ARGS``; ``flags=False``: the TOML file in ``args`` joins them."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=1".strip()
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags}  # keeps the session's flags
    dist = ["--distributed", f"127.0.0.1:{_port()}", "--num-processes", str(n), "--distributed-timeout", str(TIMEOUT)]
    dist = dist if flags else []
    return [
        subprocess.Popen(
            [sys.executable, "-m", "vaekit.cli", "train", *args, *dist, "--process-id", str(i)],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str]]:
    """``(exit code, stderr)`` of every process."""
    res = []
    for p in procs:
        _, err = p.communicate(timeout=600)
        res.append((p.returncode, err))
    return res


def _vaekit_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("vaekit train:")]


def _metrics(run) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _leaves(run) -> list[np.ndarray]:
    model, _ = vk.load(run)
    return [np.asarray(a) for a in jax.tree.leaves(eqx.filter(model, eqx.is_array))]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two-process runs: ``whole`` (uninterrupted), ``killed`` (process 1 killed after its
    first epoch, then resumed with two processes), and the outcomes of each step."""
    root = tmp_path_factory.mktemp("dist")
    whole = _start([*TINY, "--epochs", str(EPOCHS), "--out", "whole"], root)
    killed = _start([*TINY, "--epochs", "5000", "--out", "killed"], root)
    metrics = root / "killed" / "metrics.jsonl"
    deadline = time.monotonic() + 600
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        assert killed[0].poll() is None, killed[0].communicate()[1][-3000:]
        time.sleep(0.02)
    killed[1].kill()  # SIGKILL: no chance to say goodbye
    killed_res = _finish(killed)
    kill_status = json.loads((root / "killed" / "vaekit.json").read_text())
    done = len(_metrics(root / "killed"))
    whole_res = _finish(whole)
    # resume the killed run with two processes; meanwhile process 0 of a run into an
    # existing folder fails before training: process 1 must end with its error and code
    resumed = _start(["--resume", "killed", "--epochs", str(EPOCHS), "-q"], root)
    (root / "dist.toml").write_text(
        f'epochs = 1\n[distributed]\ncoordinator = "127.0.0.1:{_port()}"\nnum_processes = 2\ntimeout = {TIMEOUT}\n'
    )
    refused = _start([*TINY, "--config", "dist.toml", "--out", "whole"], root, flags=False)
    return dict(
        root=root,
        whole=whole_res,
        killed=killed_res,
        kill_status=kill_status,
        done=done,
        resumed=_finish(resumed),
        refused=_finish(refused),
    )


def test_two_processes_write_one_run_equal_to_one_process(runs, monkeypatch):
    root = runs["root"]
    for code, err in runs["whole"]:
        assert code == 0, err[-3000:]
    assert [m["epoch"] for m in _metrics(root / "whole")] == list(range(1, EPOCHS + 1))  # once per epoch
    cfg = json.loads((root / "whole" / "config.json").read_text())
    assert cfg["devices"] == "all" and len(cfg["environment"]["devices"]) == 2
    assert json.loads((root / "whole" / "vaekit.json").read_text())["status"] == "finished"
    # the same run in this one process, one device
    monkeypatch.chdir(root)
    assert main(["train", *TINY, "--epochs", str(EPOCHS), "--out", "single"]) == 0
    two, one = _leaves(root / "whole"), _leaves(root / "single")
    assert len(two) == len(one)
    for a, b in zip(two, one):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=2e-5)
    m1, m2 = _metrics(root / "single"), _metrics(root / "whole")
    assert m2[-1]["train_loss"] < m2[0]["train_loss"]  # it trained
    np.testing.assert_allclose([m["val_loss"] for m in m2], [m["val_loss"] for m in m1], rtol=1e-4)


def test_killed_process_stops_the_other_and_resume_ends_equal(runs):
    (code0, err0), (code1, _) = runs["killed"]
    assert code1 < 0  # killed
    assert code0 == 2, err0[-3000:]
    lines = _vaekit_lines(err0)
    assert len(lines) == 1 and "Traceback" not in err0, err0[-3000:]
    assert "lost contact" in lines[0] and "--resume killed" in lines[0] and "checkpoint" in lines[0]
    assert runs["kill_status"]["status"] == "failed"
    assert 1 <= runs["done"] < EPOCHS, "the run was killed too late to test resuming"
    for code, err in runs["resumed"]:
        assert code == 0, err[-3000:]
    root = runs["root"]
    assert [m["epoch"] for m in _metrics(root / "killed")] == list(range(1, EPOCHS + 1))
    for a, b in zip(_leaves(root / "killed"), _leaves(root / "whole"), strict=True):
        np.testing.assert_array_equal(a, b)  # resumed == uninterrupted, bit for bit


def test_failure_of_process_0_ends_the_others_with_its_error(runs):
    (code0, err0), (code1, err1) = runs["refused"]
    assert code0 == code1 == 2
    (line0,), (line1,) = _vaekit_lines(err0), _vaekit_lines(err1)
    assert "already holds a run" in line0 and "process 0 of 2" in line0
    assert "stopped because process 0 failed" in line1 and "already holds a run" in line1
    assert json.loads((runs["root"] / "whole" / "vaekit.json").read_text())["status"] == "finished"


def test_unreachable_coordinator_and_bad_options_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    cmd = [
        sys.executable,
        "-m",
        "vaekit.cli",
        "train",
        *TINY,
        "--out",
        "r",
        "--distributed",
        f"127.0.0.1:{_port()}",
        "--num-processes",
        "2",
        "--process-id",
        "1",
        "--distributed-timeout",
        "2",
    ]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "could not join the other processes" in r.stderr, r.stderr[-3000:]
    assert len(_vaekit_lines(r.stderr)) == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "r").exists()
    bad = [
        (["--distributed", "nohost", "--out", "r"], "HOST:PORT"),
        (["--distributed", "127.0.0.1:1234", "--out", "r"], "--num-processes"),
        (["--num-processes", "2", "--out", "r"], "only with --distributed"),
        (["--distributed", "auto"], "--out"),
    ]
    for args, what in bad:
        assert main(["train", *TINY, *args]) == 2
        err = capsys.readouterr().err
        assert what in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "c.toml").write_text('epochs = 1\n[distributed]\ncoordinator = "auto"\nnodes = 2\n')
    assert main(["train", "--config", "c.toml", "--out", "r"]) == 2
    assert "unknown key(s) 'nodes' in [distributed]" in capsys.readouterr().err

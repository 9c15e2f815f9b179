"""`vaekit train --devices`: data-parallel training from the command line."""

import json
import os
import subprocess
import sys

import pytest

from vaekit.cli import main

TINY = ["--data", "digits", "--limit", "160", "--epochs", "2", "--batch-size", "40", "--hidden", "16", "-q"]


def test_devices_flag_recorded_and_validated(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", *TINY, "--devices", "1", "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["devices"] == "1"
    assert main(["train", *TINY, "--devices", "64", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "64" in err and "device" in err
    assert not (tmp_path / "bad" / "config.json").exists()


def test_train_on_four_forced_cpu_devices(tmp_path):
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=4".strip()
    env = {**os.environ, "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"}  # keeps the session's flags
    out = tmp_path / "run4"
    cmd = [sys.executable, "-m", "vaekit.cli", "train", *TINY, "--devices", "all", "--out", str(out)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    cfg = json.loads((out / "config.json").read_text())
    assert len(cfg["environment"]["devices"]) == 4
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 and all(m["train_loss"] > 0 for m in metrics)
    # batch 40 is not divisible by 3 devices: a clear error, not a traceback
    r = subprocess.run(
        cmd[:-4] + ["--devices", "3", "--out", str(tmp_path / "r3")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 2 and "not divisible by the 3 devices" in r.stderr and "Traceback" not in r.stderr


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

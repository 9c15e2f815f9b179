"""Run folders that never destroy or lose work (issue 11), through the command line: each
test reproduces a fault (signals, kill -9, lock contention, a full disk, read-only folders,
corrupt files, changed data) and checks the exit code, the one-line message, and that
nothing was lost (bit-identical resume where it applies)."""

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import vaekit as vk
from vaekit.cli import main
from vaekit.runs import _train as vrun
from vaekit.training import _loop as training
from vaekit.training import checkpoints as vio

TINY = ["--data", "digits", "--limit", "300", "--hidden", "16", "--batch-size", "50", "--quiet"]
ENV = dict(os.environ, JAX_PLATFORMS="cpu")


def _train(out, *extra):
    return main(["train", *TINY, "--out", str(out), *extra])


def _err(capsys) -> str:
    """stderr of the last command, which must be exactly one line."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _status(run: Path) -> dict:
    return json.loads((run / "vaekit.json").read_text())


def _strict(text: str):
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))


def _tmp_files(run: Path) -> list[str]:
    return [str(p) for p in run.rglob("*.tmp")]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A finished 3-epoch run with a checkpoint after every epoch."""
    out = tmp_path_factory.mktemp("safety") / "base"
    assert _train(out, "--epochs", "3", "--checkpoint-every", "1") == 0
    return out


def _copy(base: Path, dst: Path) -> Path:
    shutil.copytree(base, dst)
    return dst


def _as_killed_after(run: Path, epoch: int) -> Path:
    """``run`` as a process killed (kill -9) during epoch ``epoch + 1`` would leave it."""
    for p in vrun.checkpoints(run):
        if int(p.stem.split("-")[1]) > epoch:
            p.unlink()
    (run / vio.MODEL_FILE).unlink()
    meta = _status(run)
    vio.write_json(
        run / "vaekit.json",
        {"kind": "run", "format": 1, "status": "running"} if "format" in meta else {"kind": "run", "status": "running"},
    )
    return run


# ---- item 1 -------------------------------------------------------------------------------


def test_overwrite_replaces_only_vaekit_runs_and_only_their_files(base, tmp_path, capsys, getkey):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "config.json").write_text('{"mine": true}')
    (notes / "thesis.tex").write_text("precious")
    assert _train(notes, "--epochs", "1", "--overwrite") == 2
    assert "is a non-empty folder that is not a vaekit run" in _err(capsys)
    assert (notes / "thesis.tex").read_text() == "precious" and (notes / "config.json").read_text() == '{"mine": true}'
    # a saved model is not a run either
    vk.save(tmp_path / "model", vio.build_model(vio.model_spec("vae", 64, latent_dim=2, hidden=[16]), getkey()))
    assert _train(tmp_path / "model", "--epochs", "1", "--overwrite") == 2
    assert "not a vaekit run" in _err(capsys) and (tmp_path / "model" / "model.eqx").is_file()
    # a run: only what vaekit wrote is replaced; the user's files stay
    run = _copy(base, tmp_path / "run")
    (run / "eval.json").write_text("{}")
    (run / "notes.txt").write_text("keep me")
    (run / "plots").mkdir()
    (run / "plots" / "loss.png").write_bytes(b"png")
    (run / "plots" / "mine.svg").write_text("svg")
    assert _train(run, "--epochs", "1", "--overwrite") == 0
    assert "kept 2 file(s)" in capsys.readouterr().err
    assert (run / "notes.txt").read_text() == "keep me" and (run / "plots" / "mine.svg").is_file()
    assert not (run / "eval.json").exists() and not (run / "plots" / "loss.png").exists()
    assert [p.name for p in vrun.checkpoints(run)] == ["epoch-0001.ckpt"]
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 1 and _status(run)["status"] == "finished"


# ---- items 2, 3, 4 -------------------------------------------------------------------------


def test_a_training_run_is_locked_and_sigterm_saves_a_checkpoint(tmp_path, capsys):
    """A real run: a second writer and the readers are refused while it trains; then a
    real SIGTERM (as SLURM or Kubernetes send) at an arbitrary moment stops it with a
    checkpoint, and the resumed run ends bit-identical to an uninterrupted one."""
    run = tmp_path / "run"
    p = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vaekit.cli",
            "train",
            *TINY,
            "--epochs",
            "100000",
            "--checkpoint-every",
            "1000",
            "--out",
            str(run),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        t0 = time.time()
        while not ((run / "metrics.jsonl").is_file() and (run / "metrics.jsonl").read_text().count("\n") >= 2):
            assert p.poll() is None and time.time() - t0 < 120, p.communicate()
            time.sleep(0.05)
        config = (run / "config.json").read_bytes()
        assert vio.lock_holder(run) == p.pid
        assert _train(run, "--epochs", "1", "--overwrite") == 2
        assert f"run {run} is in use by process {p.pid}" in _err(capsys)
        assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet"]) == 2
        assert f"is in use by process {p.pid}" in _err(capsys)
        # readers refuse the model of a run that is training (a model.eqx would not be final)
        assert main(["evaluate", str(run), "--iw-samples", "4", "--limit", "10", "--quiet"]) == 2
        assert f"run {run} is training (process {p.pid})" in _err(capsys)
        with pytest.raises(vio.FolderInUseError):
            vk.load(run)
        assert (run / "config.json").read_bytes() == config
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode == 128 + signal.SIGTERM, err
    lines = err.strip().splitlines()
    assert (
        len(lines) == 1
        and "interrupted (SIGTERM) after epoch" in lines[0]
        and f"vaekit train --resume {run}" in lines[0]
    )
    meta = _status(run)
    assert meta["status"] == "interrupted" and meta["signal"] == "SIGTERM"
    k = meta["epoch"]
    assert [c.name for c in vrun.checkpoints(run)] == [f"epoch-{k:04d}.ckpt"]  # saved on SIGTERM
    assert vio.lock_holder(run) is None
    assert main(["train", "--resume", str(run), "--epochs", str(k + 2), "--quiet"]) == 0
    full = tmp_path / "full"
    assert _train(full, "--epochs", str(k + 2)) == 0
    assert (run / "model.eqx").read_bytes() == (full / "model.eqx").read_bytes()
    rows = lambda r: [{a: b for a, b in row.items() if a != "time"} for row in vrun.read_metrics(r)]  # noqa: E731
    assert rows(run) == rows(full) and len(rows(full)) == k + 2


# a process holding a run's lock the way vaekit does (flock on RUN/.vaekit.lock, its PID inside)
HOLD = """import fcntl, os, sys, time
fd = os.open(os.path.join(sys.argv[1], ".vaekit.lock"), os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, b"%d\\n" % os.getpid())
print("locked", flush=True)
time.sleep(120)
"""


def test_the_lock_of_a_killed_process_is_released(base, tmp_path, capsys):
    run = _copy(base, tmp_path / "run")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet"]) == 2
        assert f"is in use by process {holder.pid}" in _err(capsys)
    finally:
        holder.kill()  # kill -9: the kernel releases the lock
        holder.wait()
        holder.stdout.close()
    assert vio.lock_holder(run) is None
    vk.load(run)


def test_sighup_mid_epoch_keeps_the_last_complete_epoch(base, tmp_path, capsys, monkeypatch):
    """SIGHUP arriving in the middle of epoch 3 (between two compiled parts of it)."""
    parts = []
    real = training.Trainer.train_epoch_part

    def hup_in_epoch_3(self, *a):
        out = real(self, *a)
        parts.append(1)
        if len(parts) == 2 * 5 + 2:  # 5 one-step parts per epoch: the 2nd part of epoch 3
            os.kill(os.getpid(), signal.SIGHUP)
        return out

    monkeypatch.setattr(training._EpochParts, "_size", lambda self, remaining: 1)
    monkeypatch.setattr(training.Trainer, "train_epoch_part", hup_in_epoch_3)
    run = tmp_path / "run"
    assert _train(run, "--epochs", "3", "--checkpoint-every", "1") == 128 + signal.SIGHUP
    assert len(parts) == 12  # stopped at once, not at the end of the epoch
    monkeypatch.undo()
    line = _err(capsys)
    assert "interrupted (SIGHUP) after epoch 2; checkpoint saved (checkpoints/epoch-0002.ckpt)" in line
    assert _status(run)["status"] == "interrupted" and not (run / "model.eqx").exists()
    assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGHUP))
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "model.eqx").read_bytes() == (base / "model.eqx").read_bytes()


# ---- item 5 -------------------------------------------------------------------------------


def test_a_diverged_run_is_marked_and_exits_non_zero(tmp_path, capsys):
    run = tmp_path / "run"
    assert _train(run, "--epochs", "3", "--lr", "1e30") == 1
    line = _err(capsys)
    assert f"run {run} diverged in epoch 1:" in line and "lower --lr (now 1e+30)" in line
    meta = _strict((run / "vaekit.json").read_text())
    assert meta["status"] == "diverged" and meta["epoch"] == 1 and not (run / "model.eqx").exists()
    rows = [_strict(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["diverged"] is True and rows[-1]["skipped_steps"] >= 1
    assert vio.lock_holder(run) is None


def test_skipped_steps_are_reported_per_epoch(base):
    rows = vrun.read_metrics(base)
    assert [r["skipped_steps"] for r in rows] == [0, 0, 0] and _status(base)["skipped_steps"] == 0


# ---- items 8, 10 (stale temporary files), 12 ------------------------------------------------


def test_resume_skips_a_corrupt_checkpoint_and_removes_stale_temporary_files(base, tmp_path, capsys):
    run = _as_killed_after(_copy(base, tmp_path / "run"), 3)
    ck = run / "checkpoints" / "epoch-0003.ckpt"
    raw = bytearray(ck.read_bytes())
    raw[-2000:-1600] = b"\x00" * 400
    ck.write_bytes(bytes(raw))
    (run / ".config.json.k2j3.tmp").write_text("half")
    (run / "checkpoints" / ".epoch-0004.ckpt.x8a.tmp").write_bytes(b"half")
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "skipped checkpoint epoch-0003.ckpt (epoch-0003.ckpt is corrupt: the checksum" in err
    assert "resuming from epoch-0002.ckpt (epoch 2)" in err
    assert (run / "checkpoints" / "epoch-0003.ckpt.corrupt").is_file() and not _tmp_files(run)
    assert (run / "model.eqx").read_bytes() == (base / "model.eqx").read_bytes()


def test_a_start_killed_before_its_first_checkpoint_can_be_restarted_in_place(base, tmp_path, capsys):
    run = _as_killed_after(_copy(base, tmp_path / "run"), 0)
    assert _train(run, "--epochs", "3", "--checkpoint-every", "1") == 2
    line = _err(capsys)
    assert "stopped before its first checkpoint (status running)" in line
    assert f"--resume {run} to restart it in place" in line and "--overwrite" in line
    assert main(["train", "--resume", str(run), "--quiet"]) == 0  # the advice works
    assert "restarting it from epoch 0" in capsys.readouterr().err
    assert (run / "model.eqx").read_bytes() == (base / "model.eqx").read_bytes()
    # but a finished run whose checkpoints were deleted is never retrained over its model
    for c in vrun.checkpoints(run):
        c.unlink()
    model = (run / "model.eqx").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet"]) == 2
    assert "has a final model.eqx but no checkpoint to continue from" in _err(capsys)
    assert (run / "model.eqx").read_bytes() == model


# ---- item 9 -------------------------------------------------------------------------------


def test_resume_refuses_changed_data_unless_allowed(tmp_path, capsys, digits_binary):
    csv = tmp_path / "d.csv"
    np.savetxt(
        csv, digits_binary[:375], delimiter=",", header=",".join(f"p{i}" for i in range(64)), comments="", fmt="%g"
    )
    run = tmp_path / "run"
    args = ["--data", str(csv), "--hidden", "16", "--batch-size", "50", "--quiet"]
    assert main(["train", *args, "--epochs", "2", "--checkpoint-every", "1", "--out", str(run)]) == 0
    fp = json.loads((run / "config.json").read_text())["data_fingerprint"]
    assert fp["n"] == 300 and fp["rows_hashed"] == "all"  # the train split (80%)
    pre = (run / "preprocessing.json").read_bytes()
    lines = csv.read_text().splitlines()
    lines[7] = ",".join("1" for _ in range(64))
    csv.write_text("\n".join(lines) + "\n")
    config = (run / "config.json").read_bytes()
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet"]) == 2
    line = _err(capsys)
    assert "the training data changed since the run started" in line and "--allow-data-change" in line
    assert (run / "config.json").read_bytes() == config and len(vrun.read_metrics(run)) == 2
    assert main(["train", "--resume", str(run), "--epochs", "3", "--quiet", "--allow-data-change"]) == 0
    assert "continuing on the new data" in capsys.readouterr().err
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data_changes"][0]["before"] == fp and cfg["data_fingerprint"] != fp
    assert (run / "preprocessing.json").read_bytes() == pre and len(vrun.read_metrics(run)) == 3


# ---- item 10 ------------------------------------------------------------------------------


class _FileSizeLimit:
    """RLIMIT_FSIZE for this process: the kernel refuses to grow a file past ``n`` bytes
    (EFBIG, as a full disk refuses with ENOSPC; Python ignores SIGXFSZ). Pipes and the
    terminal are not files, so pytest is unaffected."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        self.old = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.n, self.old[1]))

    def __exit__(self, *exc):
        resource.setrlimit(resource.RLIMIT_FSIZE, self.old)


def test_full_disk_while_checkpointing(base, tmp_path, capsys):
    """Writing epoch 4's checkpoint fails like on a full disk."""
    run = _copy(base, tmp_path / "run")
    size = (run / "checkpoints" / "epoch-0003.ckpt").stat().st_size
    with _FileSizeLimit(size // 2):
        rc = main(["train", "--resume", str(run), "--epochs", "5", "--quiet"])
    assert rc == 2
    line = _err(capsys)
    assert f"{run}/checkpoints/epoch-0004.ckpt: File too large" in line
    assert "its last good checkpoint is checkpoints/epoch-0003.ckpt" in line and f"--resume {run}" in line
    assert not _tmp_files(run) and _status(run)["status"] == "failed"
    assert [c.name for c in vrun.checkpoints(run)] == ["epoch-0001.ckpt", "epoch-0002.ckpt", "epoch-0003.ckpt"]
    assert [r["epoch"] for r in vrun.read_metrics(run)] == [1, 2, 3, 4]  # no partial line
    # once there is space again the run continues, ending as an uninterrupted run does
    assert main(["train", "--resume", str(run), "--epochs", "5", "--quiet"]) == 0
    full = _copy(base, tmp_path / "full")
    assert main(["train", "--resume", str(full), "--epochs", "5", "--quiet"]) == 0
    assert (run / "model.eqx").read_bytes() == (full / "model.eqx").read_bytes()
    # a metrics line that does not fit is cut back, not left half-written
    small = (run / "metrics.jsonl").stat().st_size
    with _FileSizeLimit(small + 10), pytest.raises(OSError, match="File too large"):
        vrun._append_metrics(run, {"epoch": 6, "train_loss": 1.0, "note": "x" * 100})
    assert (run / "metrics.jsonl").stat().st_size == small


class _ReadOnly:
    """Make a folder read-only for this process: ``chmod`` (ignored by root, so as root
    ``chattr +i``, when the file system supports it)."""

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self):
        if os.geteuid() != 0:
            self.mode = self.path.stat().st_mode
            os.chmod(self.path, 0o555)
            self.undo = lambda: os.chmod(self.path, self.mode)
        else:
            r = subprocess.run(["chattr", "+i", str(self.path)], capture_output=True)
            if r.returncode != 0:
                pytest.skip("cannot make a folder read-only as root here (no chattr +i)")
            self.undo = lambda: subprocess.run(["chattr", "-i", str(self.path)], check=True)
        return self

    def __exit__(self, *exc):
        self.undo()


def test_read_only_folders(base, tmp_path, capsys):
    run = _copy(base, tmp_path / "run")
    with _ReadOnly(run):
        assert main(["evaluate", str(run), "--iw-samples", "64", "--limit", "100", "--quiet"]) == 2
        out, err = capsys.readouterr()
        assert "log-likelihood" in out  # printed before the write failed: not lost
        assert len(err.strip().splitlines()) == 1 and f"{run}/eval.json: " in err and "Traceback" not in err
        assert not (run / "eval.json").exists() and not _tmp_files(run)
    parent = tmp_path / "ro"
    parent.mkdir()
    with _ReadOnly(parent):
        assert _train(parent / "run", "--epochs", "1") == 2
        line = _err(capsys)
        assert f"{parent}/run: " in line and ("Permission denied" in line or "Operation not permitted" in line)
    assert list(parent.iterdir()) == []


def test_detect_save_on_a_full_disk(tmp_path, capsys, monkeypatch):
    pytest.importorskip("sklearn")
    from vaekit.anomaly.detector import VAEDetector

    fit = VAEDetector.fit
    monkeypatch.setattr(
        VAEDetector,
        "fit",
        lambda self, x, y=None: fit(self.set_params(n_models=1, hidden=(8,), max_steps=30, n_samples=4), x),
    )
    real = vio.atomic_write

    def full_disk(path, write):
        if str(path).endswith(".eqx"):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, write)

    monkeypatch.setattr(vio, "atomic_write", full_disk)
    rng = np.random.default_rng(0)
    np.savetxt(tmp_path / "normal.csv", rng.normal(size=(200, 4)), delimiter=",")
    np.savetxt(tmp_path / "new.csv", rng.normal(size=(10, 4)), delimiter=",")
    rc = main(
        [
            "detect",
            "--train",
            str(tmp_path / "normal.csv"),
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(tmp_path / "flagged.csv"),
            "--save",
            str(tmp_path / "det"),
        ]
    )
    out, err = capsys.readouterr()
    assert rc == 2 and "flagged" in out and (tmp_path / "flagged.csv").is_file(), err  # the results are kept
    assert (
        len(err.strip().splitlines()) == 1
        and f"{tmp_path}/det/model_0.eqx: No space left on device. The disk is full" in err
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flagged.csv", "new.csv", "normal.csv"]  # no partial detector


# ---- items 13, 14 -------------------------------------------------------------------------


def test_too_little_data_and_bad_files_are_one_line_errors(base, tmp_path, capsys):
    (tmp_path / "one.csv").write_text("a,b\n1,2\n")
    assert (
        main(["train", "--data", str(tmp_path / "one.csv"), "--likelihood", "gaussian", "--out", str(tmp_path / "r1")])
        == 2
    )
    assert "has 1 training example(s): holding out val_fraction=0.1 for validation leaves none" in _err(capsys)
    assert not (tmp_path / "r1").exists()  # a failed start leaves no folder behind
    (tmp_path / "big.csv").write_text("a,b\n1,2\n3,1e300\n4,5\n")
    assert (
        main(["train", "--data", str(tmp_path / "big.csv"), "--likelihood", "gaussian", "--out", str(tmp_path / "r2")])
        == 2
    )
    assert "big.csv: 1 value(s) too large for float32" in _err(capsys)
    (tmp_path / "bin.csv").write_bytes(bytes(range(256)) * 4)
    assert main(["score", str(base), "--input", str(tmp_path / "bin.csv"), "--output", str(tmp_path / "s.csv")]) == 2
    assert f"{tmp_path}/bin.csv is not a text CSV file" in _err(capsys)


def test_a_torn_last_metrics_line_is_tolerated(base, tmp_path):
    from vaekit.viz.report import _history

    run = _copy(base, tmp_path / "run")
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "train_lo')  # what a crash mid-write leaves
    assert [r["epoch"] for r in vrun.read_metrics(run)] == [1, 2, 3]
    assert len(_history(run)["train_loss"]) == 3
    lines = (run / "metrics.jsonl").read_text().splitlines()
    lines[1] = lines[1][:10]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"metrics\.jsonl: line 2 is not valid JSON"):
        vrun.read_metrics(run)


# ---- items 15, 16 -------------------------------------------------------------------------


def test_toml_activation_and_umask_permissions(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'data = "digits"\nlimit = 300\nhidden = [16]\nbatch_size = 50\nepochs = 1\n[model_options]\nactivation = "tanh"\n'
    )
    run = tmp_path / "run"
    old = os.umask(0o027)
    try:
        assert main(["train", "--config", str(cfg), "--out", str(run), "--quiet"]) == 0
    finally:
        os.umask(old)
    assert json.loads((run / "config.json").read_text())["model_options"] == {"activation": "tanh"}
    model, _ = vk.load(run)
    assert model.encoder.net.activation is vk.presets.ACTIVATIONS["tanh"]
    modes = {str(p.relative_to(run)): p.stat().st_mode & 0o777 for p in run.rglob("*")}
    assert modes == {name: 0o750 if (run / name).is_dir() else 0o640 for name in modes}, modes
    assert {"model.eqx", "config.json", "checkpoints/epoch-0001.ckpt", ".vaekit.lock"} <= set(modes)

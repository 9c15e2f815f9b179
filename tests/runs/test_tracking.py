"""Experiment trackers (issue 18), offline: one ``vaekit train --logger tensorboard --logger
mlflow --logger wandb`` run, resumed after a lost checkpoint, evaluated and given images;
each tracker's files are read back with the tracker's own reader (TensorBoard's
EventAccumulator, MLflow's client on a ``file:`` store, W&B's protobuf records)."""

import glob
import json
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import vaekit as vk
from vaekit.cli import main
from vaekit.runs.tracking import TRACKERS_FILE

pytest.importorskip("tensorboardX")
pytest.importorskip("tensorboard")
pytest.importorskip("mlflow")
pytest.importorskip("wandb")

COMMON = [
    "--data",
    "digits",
    "--limit",
    "300",
    "--hidden",
    "16",
    "--batch-size",
    "50",
    "--quiet",
]


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    """A run of 3 epochs whose epoch-3 checkpoint is then lost (as after a crash between
    logging and checkpointing), resumed to 4 epochs, evaluated and reported."""
    d = tmp_path_factory.mktemp("tracked")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_URI", (d / "mlruns").as_uri())
        mp.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for an opt-in to the file store
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        run = d / "run"
        loggers = ["--logger", "tensorboard", "--logger", "mlflow", "--logger", "wandb"]
        assert (
            main(
                [
                    "train",
                    *COMMON,
                    "--epochs",
                    "3",
                    "--checkpoint-every",
                    "2",
                    *loggers,
                    "--out",
                    str(run),
                ]
            )
            == 0
        )
        (run / "checkpoints" / "epoch-0003.ckpt").unlink()  # epoch 3 is logged but its checkpoint lost
        ids = json.loads((run / TRACKERS_FILE).read_text())
        assert main(["train", "--resume", str(run), "--epochs", "4", "--quiet"]) == 0  # epochs 3 and 4 run again
        assert (
            main(
                [
                    "evaluate",
                    str(run),
                    "--iw-samples",
                    "5",
                    "--elbo-samples",
                    "2",
                    "--limit",
                    "50",
                    "--quiet",
                ]
            )
            == 0
        )
        assert main(["report", str(run), "--lattice-size", "4"]) == 0  # its 6 plots become artifacts
        yield run, ids, d


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_event_files(tracked):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run, ids, _ = tracked
    assert ids["tensorboard"]["log_dir"] == str(run / "tensorboard")
    ea = EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    ea.Reload()
    rows = _metrics(run)
    loss = ea.Scalars("train/loss")
    assert [s.step for s in loss] == [
        1,
        2,
        3,
        4,
    ]  # the re-run epoch 3 replaced, not duplicated
    np.testing.assert_allclose([s.value for s in loss], [r["train_loss"] for r in rows], rtol=1e-6)
    np.testing.assert_allclose(
        [s.value for s in ea.Scalars("val/loss")],
        [r["val_loss"] for r in rows],
        rtol=1e-6,
    )
    assert [s.value for s in ea.Scalars("train/lr")] == pytest.approx([1e-3] * 4)
    assert [s.value for s in ea.Scalars("train/skipped_steps")] == [0, 0, 0, 0]
    assert all(s.value > 0 for s in ea.Scalars("train/epoch_time"))
    kl, rec = ea.Scalars("terms/kl"), ea.Scalars("terms/reconstruction")
    assert [s.step for s in kl] == [1, 2, 3, 4] and all(s.value >= 0 for s in kl)
    # the negative ELBO is reconstruction + KL: close to the validation loss (other draws)
    assert rec[-1].value + kl[-1].value == pytest.approx(rows[-1]["val_loss"], rel=0.15)
    ev = json.loads((run / "eval.json").read_text())
    assert [(s.step, s.value) for s in ea.Scalars("eval/test_elbo")] == [(4, pytest.approx(ev["elbo"]))]
    assert ea.Scalars("eval/test_log_likelihood")[0].value == pytest.approx(ev["log_likelihood"])
    plots = {p.stem: p for p in (run / "plots").glob("*.png")}
    assert len(plots) == 6 and sorted(t[len("report/") :] for t in ea.Tags()["images"]) == sorted(plots)
    img = ea.Images("report/samples")
    with Image.open(plots["samples"]) as im:
        assert len(img) == 1 and img[0].step == 4 and (img[0].width, img[0].height) == im.size
    assert "_hparams_/experiment" in ea.PluginTagToContent("hparams")
    assert "lr = 0.001" in ea.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()


def test_mlflow_file_store(tracked):
    from mlflow.tracking import MlflowClient

    run, ids, d = tracked
    client = MlflowClient((d / "mlruns").as_uri())
    exp = client.get_experiment_by_name("vaekit")
    runs = client.search_runs([exp.experiment_id])
    assert [r.info.run_id for r in runs] == [ids["mlflow"]["run_id"]]  # resume continued the same run
    r = runs[0]
    assert r.info.status == "FINISHED" and r.info.run_name == "run"
    hist = client.get_metric_history(r.info.run_id, "train/loss")
    assert sorted(m.step for m in hist) == [
        1,
        2,
        3,
        4,
    ]  # epoch 3 (run twice) logged once
    np.testing.assert_allclose(
        [m.value for m in sorted(hist, key=lambda m: m.step)],
        [x["train_loss"] for x in _metrics(run)],
        rtol=1e-6,
    )
    assert r.data.params["lr"] == "0.001" and r.data.params["data"] == "digits" and r.data.params["epochs"] == "3"
    assert {
        "val/loss",
        "train/lr",
        "terms/kl",
        "terms/reconstruction",
        "train/epoch_time",
        "train/skipped_steps",
    } <= set(r.data.metrics)
    assert r.data.metrics["eval/test_elbo"] == pytest.approx(json.loads((run / "eval.json").read_text())["elbo"])
    arts = client.list_artifacts(r.info.run_id, "report")
    assert sorted(a.path for a in arts) == sorted(f"report/{p.name}" for p in (run / "plots").glob("*.png"))
    assert all(a.file_size == (run / "plots" / Path(a.path).name).stat().st_size for a in arts)


def _wandb_records(path):
    """The records of a ``.wandb`` file: W&B's block log (7-byte header, 32 KiB blocks of
    ``crc32 u32, length u16, type u8`` chunks) of ``wandb_internal_pb2.Record`` messages."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf, out = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if kind == 0 and length == 0:
            break
        buf += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            rec = pb.Record()
            rec.ParseFromString(buf)
            out.append(rec)
            buf = b""
    return out


def test_wandb_offline_files(tracked):
    run, ids, _ = tracked
    wid = ids["wandb"]["run_id"]
    files = sorted(glob.glob(str(run / "wandb" / "offline-run-*" / "run-*.wandb")))
    assert len(files) == 4  # train, resume, evaluate, images: each continues the same run
    assert all(Path(f).name == f"run-{wid}.wandb" for f in files)
    epochs, loss, config, artifacts = [], {}, {}, []
    for f in files:
        for rec in _wandb_records(f):
            kind = rec.WhichOneof("record_type")
            if kind == "run":
                assert rec.run.run_id == wid and rec.run.project == "vaekit"
            elif kind == "history":
                item = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
                if "train/loss" in item:
                    epochs.append(item["epoch"])
                    loss[item["epoch"]] = item["train/loss"]
                if "eval/test_elbo" in item:
                    assert item["epoch"] == 4
            elif kind == "config":
                config.update({i.key: json.loads(i.value_json) for i in rec.config.update})
            elif kind == "artifact":
                artifacts.append(
                    (
                        rec.artifact.type,
                        sorted(Path(m.path).name for m in rec.artifact.manifest.contents),
                    )
                )
    assert epochs == [1, 2, 3, 4]  # the re-run epoch 3 was not sent again
    np.testing.assert_allclose(
        [loss[e] for e in (1, 2, 3, 4)],
        [x["train_loss"] for x in _metrics(run)],
        rtol=1e-6,
    )
    assert config["lr"] == 0.001 and config["data"] == "digits"
    assert artifacts == [("report", sorted(p.name for p in (run / "plots").glob("*.png")))]


def test_failing_tracker_warns_once_and_training_goes_on(digits_binary):
    import jax

    class Flaky(vk.loggers.Logger):
        name = "Flaky"

        def __init__(self):
            super().__init__()
            self.sent = []

        def _open(self, first_epoch):
            pass

        def _scalars(self, values, step):
            if step >= 2:
                raise OSError(28, "No space left on device")
            self.sent.append(step)

        def _hparams(self, params):
            pass

    x = digits_binary[:200]
    k1, k2 = jax.random.split(jax.random.key(0))
    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(64, 4, hidden=(8,), key=k1)),
        decoder=vk.Bernoulli(vk.MLP(2, 64, hidden=(8,), key=k2)),
    )
    plain = vk.fit(model, x, key=1, epochs=3, batch_size=50)[1]
    flaky, stops = Flaky(), []
    with pytest.warns(RuntimeWarning, match="Flaky logging failed .*No space left.*switched off") as rec:
        _, h = vk.fit(
            model,
            x,
            key=1,
            epochs=3,
            batch_size=50,
            callback=[flaky, lambda s: stops.append(s.epoch)],
        )
    assert len([w for w in rec if "Flaky" in str(w.message)]) == 1  # warned once, not per epoch
    assert flaky.sent == [1] and flaky.failed and stops == [1, 2, 3]
    assert h["train_loss"] == plain["train_loss"]  # training itself is unchanged


def test_missing_tracker_package_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'vaekit\[tensorboard\]'"):
        vk.loggers.TensorBoard(tmp_path / "tb")
    monkeypatch.setattr(
        "importlib.util.find_spec",
        lambda name, *a: None if name == "tensorboardX" else object(),
    )
    assert (
        main(
            [
                "train",
                *COMMON,
                "--epochs",
                "1",
                "--logger",
                "tensorboard",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        != 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("needs the optional package tensorboardX: pip install 'vaekit[tensorboard]'")
    assert not (tmp_path / "r").exists()  # failed before anything was written


def test_mlflow_without_a_tracking_uri_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(
        "importlib.util.find_spec",
        lambda name, *a: None if name == "sqlalchemy" else object(),
    )
    assert (
        main(
            [
                "train",
                *COMMON,
                "--epochs",
                "1",
                "--logger",
                "mlflow",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        != 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert "set MLFLOW_TRACKING_URI" in err[-1] and not (tmp_path / "r").exists()


def test_loggers_in_toml_and_bad_names(tmp_path):
    from vaekit.runs import read_config, resolve_config

    (tmp_path / "c.toml").write_text('loggers = ["mlflow", "tensorboard"]\n')
    assert resolve_config(read_config(tmp_path / "c.toml"))["loggers"] == [
        "mlflow",
        "tensorboard",
    ]
    with pytest.raises(
        ValueError,
        match="Unknown logger='neptune'. Valid values: tensorboard, mlflow, wandb",
    ):
        resolve_config({"loggers": ["neptune"]})

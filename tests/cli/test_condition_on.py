"""``vaekit train --condition-on label``: a conditional model trained on the data's labels (issue 16)."""

import json

import jax
import jax.numpy as jnp
import numpy as np

import vaekit as vk
from vaekit.cli import main

TINY = ["--data", "digits", "--limit", "300", "--hidden", "16", "--batch-size", "50", "--quiet", "--epochs", "2"]


def test_train_cvae_on_labels(tmp_path, capsys):
    out = tmp_path / "cvae"
    assert main(["train", *TINY, "--model", "cvae", "--condition-on", "label", "--out", str(out)]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["condition_on"] == "label" and cfg["model_options"]["num_classes"] == 10
    model = vk.load(out).model
    assert isinstance(model, vk.ConditionalVAE)
    s = vk.sample(model, jax.random.key(0), 10, y=jnp.arange(10))  # one per class
    assert s.x.shape == (10, 64) and np.isfinite(np.asarray(s.mean)).all()
    # vaekit sample: the classes in turn
    assert main(["sample", str(out), "-n", "20", "--output", str(tmp_path / "s.npy")]) == 0
    assert "class i % 10" in capsys.readouterr().out
    assert np.load(tmp_path / "s.npy").shape[0] == 20
    # vaekit report: samples drawn per class, every plot made with labels
    assert main(["report", str(out)]) == 0
    manifest = json.loads((out / "plots" / "plots.json").read_text())
    assert manifest["sample_labels"] == list(range(10))
    assert any(c.startswith("Prior samples per class") for c in manifest["captions"])
    assert (out / "report.html").stat().st_size > 0


def test_condition_on_needs_a_conditional_model(tmp_path, capsys):
    assert main(["train", *TINY, "--condition-on", "label", "--out", str(tmp_path / "v")]) == 2
    err = capsys.readouterr().err
    assert "--model cvae or m2" in err and "Traceback" not in err
    assert main(["train", *TINY, "--condition-on", "labels", "--out", str(tmp_path / "w")]) == 2
    assert "condition_on" in capsys.readouterr().err

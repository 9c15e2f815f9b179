"""End to end through the ``vaekit`` command line: train, evaluate, sample, reconstruct,
report, resume, and the bad inputs."""

import json
import shutil

import equinox as eqx
import numpy as np
import pytest

import vaekit as vk
from vaekit.cli import main
from vaekit.runs import _train as vrun

TINY = ["--data", "digits", "--limit", "300", "--hidden", "16", "--batch-size", "50", "--quiet"]


def _train(out, *extra):
    return main(["train", *TINY, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "tiny"
    assert _train(out, "--epochs", "3", "--checkpoint-every", "1", "--keep-checkpoints", "2") == 0
    return out


def test_train_writes_a_complete_run_folder(run_dir):
    names = {p.name for p in run_dir.iterdir()}
    assert {"config.json", "metrics.jsonl", "model.eqx", "preprocessing.json", "vaekit.json", "checkpoints"} <= names
    cfg = json.loads((run_dir / "config.json").read_text())
    assert cfg["hidden"] == [16] and cfg["limit"] == 300 and cfg["preprocessing"] == "binarize"
    env = cfg["environment"]
    assert env["seed"] == 0 and env["jax_version"] and env["devices"] and "git_commit" in env
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3] and all(np.isfinite(r["val_loss"]) for r in rows)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "epoch-0002.ckpt",
        "epoch-0003.ckpt",
    ]  # newest 2
    meta = json.loads((run_dir / "vaekit.json").read_text())
    assert meta["kind"] == "run" and meta["status"] == "finished" and meta["epochs"] == 3
    model, pre = vk.load(run_dir)
    assert model.latent_shape == (2,) and model.data_shape == (64,) and pre.kind == "binarize"


def test_evaluate_sample_reconstruct_report(run_dir, tmp_path, capsys):
    assert main(["evaluate", str(run_dir), "--iw-samples", "64", "--limit", "100"]) == 0
    ev = json.loads((run_dir / "eval.json").read_text())
    assert ev["n"] == 100 and ev["split"] == "test" and ev["iw_samples"] == 64
    # the importance-sampled estimate is a tighter bound than the ELBO
    assert ev["elbo"] <= ev["log_likelihood"] + 0.05 < 0
    captured = capsys.readouterr()
    assert "log-likelihood" in captured.out
    # a progress bar with an ETA on stderr (issue 12): "100/100 [00:01<00:00, ...]"
    assert (
        "log-likelihood, 64 importance samples (test)" in captured.err
        and "100/100" in captured.err
        and "<00:00" in captured.err
    )
    assert main(["sample", str(run_dir), "-n", "9", "--output", str(tmp_path / "s.png")]) == 0
    assert main(["sample", str(run_dir), "-n", "9", "--output", str(tmp_path / "s.npy"), "--kind", "sample"]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (9, 64) and set(np.unique(s)) <= {0.0, 1.0}
    assert main(["reconstruct", str(run_dir), "-n", "5", "--output", str(tmp_path / "r.npy")]) == 0
    r = np.load(tmp_path / "r.npy")
    assert r.shape == (5, 64) and ((0 <= r) & (r <= 1)).all()
    assert main(["reconstruct", str(run_dir), "-n", "5", "--output", str(tmp_path / "r.png")]) == 0
    from PIL import Image

    with Image.open(tmp_path / "s.png") as a, Image.open(tmp_path / "r.png") as b:
        assert a.size[0] > 3 * 8 and b.size[0] > 5 * 8
    assert main(["report", str(run_dir)]) == 0
    html = (run_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "log_likelihood" in html  # with the interpolation strip
    with Image.open(run_dir / "plots" / "lattice.png") as lattice:
        assert lattice.size == (50 * 24, 50 * 24)  # 50 x 50 tiles of 8 x 8 pixels scaled by 3
    assert main(["sample", str(run_dir), "--output", str(tmp_path / "s.txt")]) == 2
    assert "must end in .png or .npy" in capsys.readouterr().err


def test_resume_after_ctrl_c_is_bit_identical(tmp_path, monkeypatch, capsys):
    full = tmp_path / "full"
    assert _train(full, "--epochs", "4", "--checkpoint-every", "2") == 0
    part = tmp_path / "part"
    real = vrun._append_metrics

    def ctrl_c_at_epoch_3(run, row):
        if row["epoch"] == 3:
            raise KeyboardInterrupt
        real(run, row)

    monkeypatch.setattr(vrun, "_append_metrics", ctrl_c_at_epoch_3)
    assert _train(part, "--epochs", "4", "--checkpoint-every", "2") == 130
    monkeypatch.undo()
    assert "checkpoint saved" in capsys.readouterr().err
    assert json.loads((part / "vaekit.json").read_text())["status"] == "interrupted"
    assert not (part / "model.eqx").exists()
    assert (part / "checkpoints" / "epoch-0003.ckpt").is_file()  # saved on Ctrl-C
    with pytest.raises(FileNotFoundError, match="did not finish"):
        vk.load(part)
    # incompatible configuration is refused and changes nothing
    assert main(["train", "--resume", str(part), "--latent-dim", "3", "--quiet"]) == 2
    assert "configuration differs in latent_dim" in capsys.readouterr().err
    assert main(["train", "--resume", str(part), "--quiet"]) == 0
    assert (part / "model.eqx").read_bytes() == (full / "model.eqx").read_bytes()
    m1, _ = vk.load(full)
    m2, _ = vk.load(part)
    assert eqx.tree_equal(m1, m2)
    strip = lambda p: [
        {k: v for k, v in json.loads(x).items() if k != "time"} for x in (p / "metrics.jsonl").read_text().splitlines()
    ]
    assert strip(part) == strip(full) and len(strip(full)) == 4
    # resuming a finished run needs more epochs
    assert main(["train", "--resume", str(part), "--quiet"]) == 2
    assert "larger --epochs" in capsys.readouterr().err


def test_existing_out_is_never_lost(run_dir, tmp_path, capsys):
    before = (run_dir / "model.eqx").read_bytes()
    assert _train(run_dir, "--epochs", "1") == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err and "--overwrite" in err
    assert (run_dir / "model.eqx").read_bytes() == before
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("precious")
    assert _train(other, "--epochs", "1", "--overwrite") == 2
    assert "not a vaekit run" in capsys.readouterr().err
    assert (other / "thesis.tex").read_text() == "precious"
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    assert _train(copy, "--epochs", "2", "--overwrite") == 0
    assert len((copy / "metrics.jsonl").read_text().splitlines()) == 2
    assert not (copy / "eval.json").exists() and not (copy / "checkpoints" / "epoch-0003.ckpt").exists()


def test_config_file_and_flags(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'data = "iris"\nlikelihood = "gaussian"\nhidden = [8]\nepochs = 2\nbatch_size = 20\nlatent_dim = 1\n[model_options]\nvariance = "scalar"\n'
    )
    out = tmp_path / "iris"
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--epochs",
                "3",
                "--out",
                str(out),
                "--patience",
                "5",
                "--lr-schedule",
                "cosine",
            ]
        )
        == 0
    )
    bar = capsys.readouterr().err
    assert "3/3" in bar and "epoch" in bar and "val_loss=" in bar  # the progress bar (not --quiet)
    saved = json.loads((out / "config.json").read_text())
    assert saved["epochs"] == 3 and saved["data"] == "iris" and saved["preprocessing"] == "standardize"
    assert saved["model_spec"]["options"]["variance"] == "scalar"
    model, pre = vk.load(out)
    assert model.latent_shape == (1,) and pre.kind == "standardize"


def test_early_stopping_stops():
    h = {"train_loss": [5, 4, 3, 3.5, 3.6], "val_loss": [5, 4, 3, 3.1, 3.2]}
    assert vrun._should_stop(h, 2) and not vrun._should_stop(h, 3)


def test_kl_warmup_schedule():
    cfg = vrun.resolve_config({"kl_warmup_epochs": 2, "beta": 0.5})
    b = vrun.beta_schedule(cfg, steps_per_epoch=10)
    assert float(b(0)) == 0.0 and float(b(10)) == pytest.approx(0.25) and float(b(100)) == pytest.approx(0.5)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "/no/such/data.csv"], "does not exist"),
        (["--data", "mnsit"], "Known names: digits, iris, mnist, fashion-mnist, binarized-mnist"),
        (["--data", "digits", "--lr-schedule", "warm"], "Valid values: constant, cosine, exponential"),
        (["--data", "digits", "--hidden", "a,b"], "hidden must be layer widths"),
        (["--data", "digits", "--preprocessing", "zscore"], "Unknown preprocessing 'zscore'"),
        (["--data", "digits", "--likelihood", "poisson"], "Unknown likelihood='poisson'"),
        (["--data", "digits", "--epochs", "-1"], "epochs must be a non-negative int"),
    ],
)
def test_bad_train_input(args, message, tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["train", *args, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_config_key_lists_valid_keys(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text("epoch = 3\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown config key(s) 'epoch'" in err and "Valid keys: data, limit" in err and "epochs" in err
    (tmp_path / "bad.toml").write_text("epochs = \n")
    assert main(["train", "--config", str(tmp_path / "bad.toml"), "--out", str(tmp_path / "r")]) == 2
    assert "not valid TOML" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_bad_data_files_through_the_cli(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("a,b,kind\n1,2,x\n3,4,y\n")
    assert main(["train", "--data", str(tmp_path / "d.csv"), "--out", str(tmp_path / "r1"), "--quiet"]) == 2
    assert "column 'kind' is not numeric" in capsys.readouterr().err
    np.savez(tmp_path / "x.npz", X=np.ones((10, 3)), y=np.zeros(10))
    raw = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "x.npz").write_bytes(raw[: len(raw) - 40])
    assert main(["train", "--data", str(tmp_path / "x.npz"), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_help_shows_examples(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "examples:" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "vaekit evaluate" in capsys.readouterr().out


def test_model_and_fit_options_pass_through(monkeypatch):
    cfg = vrun.resolve_config({"model_options": {"variance": "scalar"}})
    spec = vrun.model_spec(cfg, 64)
    assert "latent" not in spec["options"] and "prior" not in spec["options"]  # omitted unless given
    assert spec["options"]["variance"] == "scalar"
    cfg2 = vrun.resolve_config({}, {"latent": "bernoulli", "prior": "vamp"})
    assert {"latent": "bernoulli", "prior": "vamp"}.items() <= vrun.model_spec(cfg2, (28, 28))["options"].items()
    seen = {}

    def fake_fit_options(name, **options):
        seen.update(name=name, **options)
        return {"objective": "iwae", "n_samples": 5}

    monkeypatch.setattr(vrun.presets, "fit_options", fake_fit_options, raising=False)
    assert vrun.fit_options(cfg2) == {"objective": "iwae", "n_samples": 5}
    assert seen == {"name": "vae", "latent": "bernoulli", "prior": "vamp"}


def test_lattice_of_28x28_images_is_1400_pixels(tmp_path, getkey):
    from PIL import Image

    from vaekit.training import checkpoints as vio
    from vaekit.viz import plots

    m = vio.build_model(vio.model_spec("vae", 784, latent_dim=2, hidden=[8]), getkey())
    plots.lattice(m, tmp_path / "l.png", image_shape=(28, 28))
    with Image.open(tmp_path / "l.png") as im:
        assert im.size == (1400, 1400)
    m3 = vio.build_model(vio.model_spec("vae", 784, latent_dim=3, hidden=[8]), getkey())
    with pytest.raises(ValueError, match="needs a 2-D latent"):
        plots.lattice(m3, tmp_path / "l3.png", image_shape=(28, 28))
    x = (np.random.default_rng(0).random((30, 784)) > 0.5).astype(np.float32)
    plots.latent_scatter(m3, x, np.arange(30) % 3, tmp_path / "s.png")  # PCA of 3-D means
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_vamp_runs_start_the_decoder_at_the_data_marginal(tmp_path, monkeypatch):
    """``vaekit train --model vamp_vae`` applies ``init_output_bias`` (without it a
    VampPrior VAE can collapse; see tests/test_zoo_vamp_training.py)."""
    seen = []
    real = vrun.init_output_bias

    def spy(model, x):
        seen.append(np.asarray(x).shape)
        return real(model, x)

    monkeypatch.setattr(vrun, "init_output_bias", spy)
    assert _train(tmp_path / "vamp", "--model", "vamp_vae", "--epochs", "1") == 0
    assert len(seen) == 1 and seen[0][1] == 64
    assert _train(tmp_path / "plain", "--epochs", "1") == 0
    assert len(seen) == 1  # only VampPrior models


def test_sample_with_gmm_sampler(run_dir, tmp_path, capsys):
    """``vaekit sample RUN --sampler gmm`` (issue 16): announced in one line; --grid refuses it."""
    assert (
        main(
            [
                "sample",
                str(run_dir),
                "-n",
                "6",
                "--output",
                str(tmp_path / "g.npy"),
                "--sampler",
                "gmm",
                "--components",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "3-component Gaussian mixture fitted to the posterior means of 300 training examples" in out
    g = np.load(tmp_path / "g.npy")
    assert g.shape == (6, 64) and ((0 <= g) & (g <= 1)).all()
    assert main(["sample", str(run_dir), "--grid", "2x2", "--sampler", "gmm"]) != 0
    assert "--grid draws from the prior" in capsys.readouterr().err

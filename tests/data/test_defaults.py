"""Data-aware defaults: the likelihood and preprocessing chosen from the data, announced in
one line and recorded in config.json (vaekit.defaults; issue 12)."""

import json

import numpy as np
import pytest

from vaekit.cli import main
from vaekit.data import Preprocessor, defaults
from vaekit.runs import _train as vrun


def _image_folder(root, n=24):
    from PIL import Image

    rng = np.random.default_rng(1)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n // 2):
            Image.fromarray((rng.random((6, 6)) * 255).astype(np.uint8)).save(root / c / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory, make_wav_folder):
    from sklearn.datasets import load_digits

    d = tmp_path_factory.mktemp("defaults-data")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 3)) * [1.0, 10.0, 100.0] + [0.0, 5.0, -20.0]
    (d / "real.csv").write_text("a,b,c\n" + "\n".join(",".join(f"{v:.4f}" for v in r) for r in x) + "\n")
    dig = load_digits()
    np.savez(d / "binary.npz", X=(dig.data[:200] / 16 > 0.5).astype(np.float32), y=dig.target[:200])
    return {
        "csv": d / "real.csv",
        "binary": d / "binary.npz",
        "images": _image_folder(d / "images"),
        "wav": make_wav_folder(d / "wav"),
    }


CASES = {
    # data -> (likelihood, preprocessing, words the notice must contain)
    "iris": ("gaussian", "standardize", ["real-valued", "standardize", "learned per-feature scale"]),
    "csv": ("gaussian", "standardize", ["64×3 real-valued", "standardize"]),
    "binary": ("bernoulli", "none", ["binary {0, 1}", "no preprocessing"]),
    "images": (
        "bernoulli",
        "binarize",
        ["grey-scale images (6×6) in [0, 1]", "binarize at 0.5", "discards the grey levels", "continuous-bernoulli"],
    ),
    "wav": ("gaussian", "none", ["audio frames in [-1, 1], 8000 Hz", "no preprocessing"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_default_choice_is_announced_and_recorded(name, data, tmp_path, capsys):
    source = "iris" if name == "iris" else str(data[name])
    out = tmp_path / name
    args = [
        "train",
        "--data",
        source,
        "--epochs",
        "0",
        "--hidden",
        "8",
        "--batch-size",
        "4",
        "--quiet",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    first = capsys.readouterr().out.splitlines()[0]
    likelihood, pre, words = CASES[name]
    assert first.startswith("data: ") and "set --likelihood/--preprocessing to change" in first
    for w in words:
        assert w in first, (w, first)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["likelihood"] == likelihood and cfg["preprocessing"] == pre
    chosen = cfg["defaults_chosen"]
    assert chosen["notice"] == first and {"likelihood", "preprocessing"} <= set(chosen["from_data"])
    assert (
        cfg["data_summary"]["kind"]
        == {"iris": "real", "csv": "real", "binary": "binary", "images": "image", "wav": "audio"}[name]
    )
    assert json.loads((out / "preprocessing.json").read_text())["kind"] == pre
    assert cfg["model_spec"]["options"]["likelihood"] == likelihood
    # real-valued tables: a Gaussian decoder with a learned per-feature (shared) scale
    assert (cfg["model_options"].get("variance") == "shared") == (name in ("iris", "csv"))


def test_resume_keeps_the_choice(data, tmp_path, capsys):
    """A run whose likelihood, preprocessing and decoder scale were chosen from the data
    resumes: config.json stores them resolved, so the configurations match. (Resuming to
    the bit is checked on digits, where binarization is chosen from the data, in
    test_cli_workflow.py::test_resume_after_ctrl_c_is_bit_identical.)"""
    out = tmp_path / "tab"
    assert (
        main(
            [
                "train",
                "--data",
                str(data["csv"]),
                "--hidden",
                "8",
                "--batch-size",
                "16",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    notice = capsys.readouterr().out.splitlines()[0]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["likelihood"] == "gaussian" and cfg["model_options"] == {"variance": "shared"}
    # the configurations match and the notice is said again
    assert main(["train", "--resume", str(out), "--epochs", "2", "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == notice
    assert "configuration differs" not in captured.err
    assert json.loads((out / "vaekit.json").read_text())["epochs"] == 2
    assert json.loads((out / "config.json").read_text()) == cfg  # nothing rewritten


def _summary(x, **meta):
    return defaults.summarize(np.asarray(x, np.float32), meta)


def test_rule_for_other_data():
    grey255 = _summary(np.arange(2 * 16).reshape(2, 4, 4) * 8 % 256)
    assert grey255.kind == "image" and grey255.byte
    c = defaults.choose(grey255)
    assert (c.likelihood, c.preprocessing, c.preprocessing_options) == ("bernoulli", "binarize", {"threshold": 127.5})
    colour = _summary(np.random.default_rng(0).random((3, 4, 4, 3)))
    c = defaults.choose(colour)
    assert (c.likelihood, c.preprocessing, c.discards) == ("continuous-bernoulli", "none", None)
    inside = np.random.default_rng(0).random((5, 8))
    assert defaults.choose(_summary(inside, image_shape=(2, 4)), "beta").preprocessing == "none"  # already in (0, 1)
    unit = _summary(np.clip(inside * 1.2 - 0.1, 0, 1), image_shape=(2, 4))  # with exact 0s and 1s
    assert defaults.choose(unit, "continuous-bernoulli").preprocessing == "none"
    beta = defaults.choose(unit, "beta")
    assert beta.preprocessing == "clip" and "discards exact 0s and 1s" in beta.notice
    assert defaults.choose(grey255, "continuous-bernoulli").preprocessing_options == {"divisor": 255.0}
    assert defaults.choose(unit, preprocessing="standardize").likelihood == "gaussian"
    assert defaults.choose(unit, preprocessing="binarize").likelihood == "bernoulli"
    both = defaults.choose(unit, "gaussian", "none")
    assert both.from_data == () and "(as set)" in both.notice
    real = _summary(np.random.default_rng(0).normal(size=(5, 3)))
    with pytest.raises(ValueError, match="--likelihood bernoulli needs binary data.*--likelihood gaussian"):
        defaults.choose(real, "bernoulli")


def test_scale_and_clip_preprocessing_round_trip():
    x = np.array([[0.0, 51.0, 255.0]], np.float32)
    s = Preprocessor.fit("scale", x)
    np.testing.assert_allclose(s.transform(x), [[0, 0.2, 1]])
    np.testing.assert_allclose(s.inverse_transform(s.transform(x)), x)
    c = Preprocessor.fit("clip", x, eps=1e-3)
    np.testing.assert_allclose(c.transform(x), [[1e-3, 0.2, 1 - 1e-3]], rtol=1e-6)
    assert Preprocessor.from_dict(c.to_dict()) == c


def test_batch_size_is_checked_against_the_training_rows(tmp_path, capsys):
    out = tmp_path / "r"
    assert (
        main(
            [
                "train",
                "--data",
                "digits",
                "--limit",
                "30",
                "--batch-size",
                "100",
                "--epochs",
                "1",
                "--quiet",
                "--out",
                str(out),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert (
        "batch_size=100 is larger than the training split, which has 27 rows after holding out 3 for validation" in err
    )
    assert "--batch-size 27 or less" in err and "Traceback" not in err


def test_optimizer_settings_from_flags_and_toml(tmp_path, capsys):
    toml = tmp_path / "dir.toml"
    toml.write_text(
        'data = "digits"\nadam_betas = [0.9, 0.99]\nclip_norm = 1.0\n[model_options]\nactivation = "tanh"\n'
    )
    out = tmp_path / "opt"
    args = [
        "train",
        "--config",
        str(toml),
        "--limit",
        "60",
        "--hidden",
        "8",
        "--epochs",
        "0",
        "--quiet",
        "--out",
        str(out),
    ]
    assert (
        main(
            [
                *args,
                "--weight-decay",
                "0.01",
                "--no-skip-nonfinite",
                "--lr-schedule",
                "linear",
                "--lr-warmup-epochs",
                "1",
            ]
        )
        == 0
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["adam_betas"] == [0.9, 0.99] and cfg["clip_norm"] == 1.0 and cfg["weight_decay"] == 0.01
    assert cfg["skip_nonfinite"] is False and cfg["lr_schedule"] == "linear" and cfg["lr_warmup_epochs"] == 1
    assert cfg["model_spec"]["options"]["activation"] == "tanh"
    assert cfg["batch_size"] == 54  # the default 100, capped at the 54 training rows
    sched = vrun.lr_schedule({**cfg, "epochs": 3}, steps_per_epoch=10)
    assert float(sched(0)) == 0.0 and float(sched(10)) == pytest.approx(1e-3) and float(sched(30)) == pytest.approx(0.0)
    assert main(["train", "--data", "digits", "--adam-betas", "0.9", "--out", str(tmp_path / "x")]) == 2
    assert "adam_betas must be two numbers in [0, 1)" in capsys.readouterr().err


def test_each_model_gets_its_own_width_and_batch_size():
    from types import SimpleNamespace

    stub = SimpleNamespace(choice=defaults.Choice("gaussian", "none"), x=np.zeros((40, 64), np.float32), xv=None)
    for model, hidden in [("conv_vae", [32, 64]), ("discrete_vae", [200]), ("vae", [500]), ("iwae", [500])]:
        cfg = vrun.resolve_from_data(vrun.resolve_config({"model": model}), stub)
        assert cfg["hidden"] == hidden and cfg["batch_size"] == 40  # 100, capped at the 40 rows
        assert vrun.model_spec(cfg, 64)["options"]["hidden"] == hidden
    assert vrun.resolve_from_data(vrun.resolve_config({"model": "conv_vae", "hidden": 8}), stub)["hidden"] == [8]

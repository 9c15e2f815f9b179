"""Reports that tell the truth: random stratified rows (not the first N), captions that say
which rows and labels, audio drawn as waveforms and written as .wav, the grid, lattice and
interpolation commands (issue 12). The evaluate progress bar is checked in
test_cli_workflow.py::test_evaluate_sample_reconstruct_report."""

import json
import wave

import jax
import numpy as np
import pytest
from PIL import Image

from vaekit.cli import main
from vaekit.data import datasets
from vaekit.viz import plots
from vaekit.viz.report import make_plots


@pytest.fixture(scope="module")
def sorted_run(tmp_path_factory):
    """A run on an image folder whose test split is sorted by class (like binarized-mnist's)."""
    from sklearn.datasets import load_digits

    d = tmp_path_factory.mktemp("sorted")
    dig = load_digits()
    for c in range(10):
        (d / "digits" / str(c)).mkdir(parents=True)
        for i in np.flatnonzero(dig.target == c)[:20]:
            Image.fromarray((dig.images[i] * 255 / 16).astype(np.uint8)).save(d / "digits" / str(c) / f"{i}.png")
    out = d / "run"
    assert (
        main(["train", "--data", str(d / "digits"), "--hidden", "16", "--epochs", "0", "--quiet", "--out", str(out)])
        == 0
    )
    return out


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory, make_wav_folder):
    d = tmp_path_factory.mktemp("audio")
    wav = make_wav_folder(d / "wav", n_files=3, seconds=1.0)
    out = d / "run"
    assert main(["train", "--data", str(wav), "--hidden", "16", "--epochs", "0", "--quiet", "--out", str(out)]) == 0
    return out


def test_rows_are_random_and_stratified():
    y = np.repeat(np.arange(5), 40)  # sorted by class
    rows = plots.choose_rows(len(y), y, 20, seed=0)
    assert len(set(rows.tolist())) == 20 and set(y[rows]) == set(range(5))
    assert sorted(y[rows[:5]].tolist()) == [0, 1, 2, 3, 4]  # the first rows cover every class
    np.testing.assert_array_equal(rows, plots.choose_rows(len(y), y, 20, seed=0))  # fixed seed
    assert not np.array_equal(np.sort(plots.choose_rows(200, None, 20, 0)), np.arange(20))


def test_report_on_a_sorted_split_shows_every_class(sorted_run, capsys):
    split = datasets.load(json.loads((sorted_run / "config.json").read_text())["data"], "test")
    assert (np.diff(split.y) >= 0).all()  # the test split is sorted: its first rows are all 0s
    make_plots(sorted_run, n_rows=30, lattice_range=3.0)
    m = json.loads((sorted_run / "plots" / "plots.json").read_text())
    assert m["labels_shown"] == list(range(10)) and len(m["rows"]) == 30
    assert set(split.y[m["rows"]]) == set(range(10)) and m["rows"] != list(range(30))
    assert len(set(split.y[m["reconstruction_rows"]])) == 4
    latent = next(c for c in m["captions"] if c.startswith("Latent space"))
    assert (
        "30 of the 40 test rows, drawn at random (seed 0), stratified by label" in latent and "(10 classes)" in latent
    )
    rec = next(c for c in m["captions"] if c.startswith("Reconstructions"))
    assert all(f"(label {v})" in rec for v in split.y[m["reconstruction_rows"]])
    assert any(c.startswith("Interpolation between test rows") for c in m["captions"])
    assert "Latent lattice: 50 x 50 decoder means, z in [-3, 3]²" in m["captions"]


def test_unlabelled_split_says_so(audio_run):
    make_plots(audio_run)
    m = json.loads((audio_run / "plots" / "plots.json").read_text())
    assert m["labels_shown"] is None
    assert any("this split has no labels" in c for c in m["captions"])


def test_audio_report_images_have_sane_sizes(audio_run):
    assert main(["report", str(audio_run), "--lattice-range", "2"]) == 0
    assert "z in [-2, 2]²" in (audio_run / "report.html").read_text()
    pngs = sorted((audio_run / "plots").glob("*.png"))
    assert {p.name for p in pngs} >= {
        "samples.png",
        "reconstructions.png",
        "interpolation.png",
        "lattice.png",
        "latent.png",
    }
    for p in pngs:
        with Image.open(p) as im:
            w, h = im.size
        assert 300 <= w <= 1500 and 200 <= h <= 1500, (p.name, im.size)  # not 40966 x 37


def _read_wav(path):
    with wave.open(str(path)) as w:
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), "<i2") / 32767.0


def test_wav_output_reads_back(audio_run, tmp_path, capsys):
    assert main(["sample", str(audio_run), "-n", "3", "--output", str(tmp_path / "s.wav")]) == 0
    assert main(["sample", str(audio_run), "-n", "3", "--output", str(tmp_path / "s.npy")]) == 0
    rate, sig = _read_wav(tmp_path / "s.wav")
    gap = int(round(0.05 * 8000))
    assert rate == 8000 and sig.shape == (3 * (1024 + gap),)
    frames = sig.reshape(3, 1024 + gap)
    np.testing.assert_allclose(frames[:, :1024], np.clip(np.load(tmp_path / "s.npy"), -1, 1), atol=1 / 32767)
    assert not frames[:, 1024:].any()  # silence between frames
    # vaekit reads its own output back as an audio folder
    (tmp_path / "back").mkdir()
    (tmp_path / "s.wav").rename(tmp_path / "back" / "s.wav")
    back = datasets.load(tmp_path / "back", "all", frame_length=1024, hop=1024 + gap)
    assert back.x.shape == (3, 1024) and back.meta["sample_rate"] == 8000
    np.testing.assert_allclose(np.asarray(back.x), frames[:, :1024], atol=1e-4)
    assert main(["reconstruct", str(audio_run), "-n", "2", "--output", str(tmp_path / "r.wav")]) == 0
    assert _read_wav(tmp_path / "r.wav")[1].shape == (2 * (1024 + gap),)
    assert main(["reconstruct", str(audio_run), "-n", "2", "--output", str(tmp_path / "r.png")]) == 0
    with Image.open(tmp_path / "r.png") as im:
        assert im.size[0] == 1000 and im.size[1] < 400


def test_wav_needs_an_audio_run(sorted_run, tmp_path, capsys):
    assert main(["sample", str(sorted_run), "-n", "2", "--output", str(tmp_path / "s.wav")]) == 2
    assert "WAV output needs an audio run" in capsys.readouterr().err


def test_grid_lattice_and_interpolate_commands(sorted_run, tmp_path, capsys):
    assert main(["sample", str(sorted_run), "--grid", "10x4"]) == 0
    with Image.open(sorted_run / "plots" / "samples-grid-10x4.png") as im:
        assert im.size == (4 * 57 + 1, 10 * 57 + 1)  # 8x8 digits at 7x, 1 px gaps
    assert main(["lattice", str(sorted_run), "--range", "3", "--size", "50", "--output", str(tmp_path / "l3.png")]) == 0
    assert main(["lattice", str(sorted_run), "--size", "50", "--output", str(tmp_path / "lq.png")]) == 0
    with Image.open(tmp_path / "l3.png") as a, Image.open(tmp_path / "lq.png") as b:
        assert a.size == b.size == (1200, 1200) and np.asarray(a).tobytes() != np.asarray(b).tobytes()
    np.testing.assert_allclose(plots.lattice_points(50, 3.0)[[0, -1]], [-3, 3])
    assert (
        main(["interpolate", str(sorted_run), "--rows", "3", "30", "-n", "5", "--output", str(tmp_path / "i.npy")]) == 0
    )
    split = datasets.load(json.loads((sorted_run / "config.json").read_text())["data"], "test")
    assert f"labels {split.y[3]} and {split.y[30]}" in capsys.readouterr().out
    path = np.load(tmp_path / "i.npy")
    import vaekit as vk

    model, pre = vk.load(sorted_run)
    x = np.asarray(split.x[[3, 30]])
    ends = model.decoder.mean(vk.core.posterior_mean(model, pre.transform(x)))
    np.testing.assert_allclose(path[[0, -1]], np.asarray(ends), atol=1e-6)
    assert main(["interpolate", str(sorted_run), "--rows", "3", "9999"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["sample", str(sorted_run), "--grid", "10by4"]) == 2
    assert "--grid must be ROWSxCOLS" in capsys.readouterr().err


def test_dirichlet_latent_plot_shows_posterior_means_on_the_simplex(tmp_path, monkeypatch):
    import vaekit as vk
    from vaekit.viz import latent as plots_latent

    seen = {}
    real = plots_latent.plot_simplex
    monkeypatch.setattr(
        plots_latent,
        "plot_simplex",
        lambda z, labels=None, **kw: seen.setdefault("z", np.asarray(z)) is not None and real(z, labels, **kw),
    )
    model = vk.presets.build(
        "dirichlet_vae", 8, key=jax.random.key(1), latent_dim=3, hidden=16
    )  # as in test_latent_and_api
    x = (np.random.default_rng(0).random((20, 8)) > 0.5).astype(np.float32)
    plots.latent_scatter(model, x, np.arange(20) % 3, tmp_path / "s.png")
    z = seen["z"]
    assert z.shape == (20, 3) and (z >= 0).all()
    np.testing.assert_allclose(z.sum(1), 1, atol=1e-5)  # means, not the concentrations
    np.testing.assert_allclose(z, np.asarray(model.encoder.mean(x)), atol=1e-6)


def test_binarized_mnist_test_split_carries_mnist_labels(data_dir, monkeypatch):
    from pathlib import Path as P

    if not data_dir or not (P(data_dir) / "binarized-mnist").is_dir() or not (P(data_dir) / "mnist").is_dir():
        pytest.skip("shared MNIST / binarized-mnist data not available")
    monkeypatch.setenv("VAEKIT_DATA_DIR", data_dir)
    b = datasets.load("binarized-mnist", "test")
    m = datasets.load("mnist", "test")
    order = np.argsort(m.y, kind="stable")
    np.testing.assert_array_equal(b.y, m.y[order])
    # every binarized row is the thresholded MNIST image in that order, up to the sampling noise
    ham = ((m.x[order] > 0.5) != (b.x > 0.5)).sum(1)
    assert ham.max() < 60 < np.median(((m.x > 0.5) != (b.x > 0.5)).sum(1))
    assert datasets.load("binarized-mnist", "valid").y is None  # shuffled: no known alignment

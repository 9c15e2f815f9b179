"""VAEDetector (issue 15): PyOD conventions, thresholds, explanations, large inputs, CLI."""

import csv
import os

import numpy as np
import pytest

pytest.importorskip("sklearn")

from scipy.special import erf
from scipy.stats import binom

import vaekit as vk
from vaekit.anomaly import detector as detector_module
from vaekit.cli import main as cli_main

# Same settings and data shape as test_detector.py: the compiled programs are shared.
FAST = {"n_models": 2, "hidden": (8,), "max_steps": 30, "patience": 10, "n_samples": 4}


def _blobs(n=200, d=4, seed=0):
    return np.random.RandomState(seed).randn(n, d)


@pytest.fixture(scope="module")
def fitted():
    x = _blobs()
    return vk.VAEDetector(random_state=0, contamination=0.1, **FAST).fit(x), x


def test_pyod_attributes(fitted):
    det, x = fitted
    np.testing.assert_allclose(det.decision_scores_, det.anomaly_score(x), rtol=1e-6)
    assert det.threshold_ == pytest.approx(np.percentile(det.decision_scores_, 90))
    np.testing.assert_array_equal(det.labels_, (det.decision_scores_ > det.threshold_).astype(int))
    assert det.labels_.mean() == pytest.approx(0.1, abs=0.01)
    assert det.offset_ == -det.threshold_
    new = np.vstack([x[:30], 20 + x[:2]])
    np.testing.assert_array_equal(det.predict(new) == -1, det.anomaly_score(new) > det.threshold_)
    assert len(det.n_epochs_) == 2 and len(det.models_) == 2


def test_predict_proba_pyod_definitions(fitted):
    det, x = fitted
    new = np.vstack([x[:30], 20 + x[:2]])
    s, tr = det.anomaly_score(new), det.decision_scores_
    lin = det.predict_proba(new)
    assert lin.shape == (32, 2)
    np.testing.assert_allclose(lin[:, 1], np.clip((s - tr.min()) / (tr.max() - tr.min()), 0, 1))
    np.testing.assert_allclose(lin.sum(1), 1.0)
    uni = det.predict_proba(new, method="unify")
    np.testing.assert_allclose(uni[:, 1], np.clip(erf((s - tr.mean()) / (tr.std() * np.sqrt(2))), 0, 1))
    assert (uni[30:, 1] == 1).all()
    probs, conf = det.predict_proba(new, return_confidence=True)
    np.testing.assert_array_equal(probs, lin)
    np.testing.assert_allclose(conf, det.predict_confidence(new))
    with pytest.raises(ValueError, match="linear.*unify"):
        det.predict_proba(new, method="softmax")


def test_predict_confidence_is_pyods_formula(fitted):
    det, x = fitted
    new = np.vstack([x[:30], 20 + x[:2]])
    s = det.anomaly_score(new)
    # PyOD 3.6 BaseDetector.predict_confidence, written out element by element
    n, tr = len(det.decision_scores_), det.decision_scores_
    want = []
    for v in s:
        post = (1 + np.count_nonzero(tr <= v)) / (2 + n)
        c = 1 - binom.cdf(n - int(n * 0.1), n, post)
        want.append(c if v > det.threshold_ else 1 - c)
    np.testing.assert_allclose(det.predict_confidence(new), want)
    assert ((0 <= np.asarray(want)) & (np.asarray(want) <= 1)).all()


def test_false_alarm_rate_threshold():
    x = _blobs()
    det = vk.VAEDetector(random_state=0, false_alarm_rate=0.05, **FAST).fit(x)
    # split-conformal: the threshold is one of the validation rows' (training) scores
    assert det.threshold_ in det.decision_scores_
    fresh = _blobs(4000, seed=7)  # new normal rows, same distribution
    rate = np.mean(det.predict(fresh) == -1)
    assert rate < 0.12  # about 0.05 (40 validation rows: the quantile is coarse)
    with pytest.warns(UserWarning, match="too few to guarantee"):
        vk.VAEDetector(random_state=0, false_alarm_rate=0.001, **FAST).fit(x)
    with pytest.raises(ValueError, match="either false_alarm_rate"):
        vk.VAEDetector(false_alarm_rate=0.01, contamination=0.1).fit(x)
    with pytest.raises(ValueError, match="false_alarm_rate must be"):
        vk.VAEDetector(false_alarm_rate=1.5).fit(x)


def test_save_load_keeps_pyod_attributes(fitted, tmp_path):
    det, x = fitted
    det.save(tmp_path / "d")
    back = vk.VAEDetector.load(tmp_path / "d")
    np.testing.assert_array_equal(back.decision_scores_, det.decision_scores_)
    np.testing.assert_array_equal(back.labels_, det.labels_)
    assert back.threshold_ == det.threshold_
    np.testing.assert_array_equal(back.predict_proba(x[:5]), det.predict_proba(x[:5]))
    np.testing.assert_array_equal(back.explain(x[:5]).contributions, det.explain(x[:5]).contributions)
    # the extra arrays are checksummed like the models
    f = tmp_path / "d" / "train_scores.eqx"
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        vk.VAEDetector.load(tmp_path / "d")


def test_explain_closed_form_and_shape(fitted):
    det, x = fitted
    e = det.explain(x[:10], top=2)
    assert e.contributions.shape == (10, 4) and e.top_features.shape == (10, 2)
    np.testing.assert_array_equal(e.top_features, np.argsort(-e.contributions, 1, kind="stable")[:, :2])
    # per-feature terms + baseline + KL sum to the elbo score (one fused pass)
    nll = e.contributions + det.feature_baseline_
    s = det.anomaly_score(x[:10])
    assert (s - nll.sum(1) > 0).all()  # the remainder is the KL term, >= 0
    with pytest.raises(ValueError, match="top must be"):
        det.explain(x[:3], top=0)


def _odds(name):
    d = os.environ.get("VAEKIT_DATA_DIR")
    path = os.path.join(d or "", "odds", name)
    if not d or not os.path.isfile(path):
        pytest.skip("ODDS data not available (set VAEKIT_DATA_DIR)")
    if name.endswith(".npz"):
        z = np.load(path, allow_pickle=False)
        return np.asarray(z["X"], np.float64), np.asarray(z["y"]).ravel()
    from scipy.io import loadmat

    m = loadmat(path)
    return np.asarray(m["X"], np.float64), np.asarray(m["y"]).ravel()


@pytest.mark.parametrize("name", ["wbc.mat", "42_WBC.npz"])
def test_explain_finds_the_shifted_feature_on_real_data(name):
    """Shift one feature of held-out normal rows by 6 training standard deviations: it
    must rank first in at least 95% of the rows."""
    x, y = _odds(name)
    normal = x[y == 0]
    rng = np.random.RandomState(0)
    rng.shuffle(normal)
    half = len(normal) // 2
    train, test = normal[:half], normal[half:][:100]
    det = vk.VAEDetector(
        random_state=0,
        n_models=1,
        hidden=(32,),
        max_steps=300,
        patience=100,
        n_samples=8,
    )
    det.fit(train)
    sd = train.std(0)
    cols = np.flatnonzero(sd > 0)
    j = cols[np.arange(len(test)) % len(cols)]
    shifted = test.copy()
    shifted[np.arange(len(test)), j] += 6 * sd[j]
    top = det.explain(shifted, top=1).top_features[:, 0]
    assert np.mean(top == j) >= 0.95


def test_large_inputs_memmap_and_source(fitted, tmp_path, monkeypatch, capsys):
    det, x = fitted
    big = np.vstack([x] * 3)  # 600 rows
    want = det.anomaly_score(big)
    want_e = det.explain(big).contributions
    np.save(tmp_path / "big.npy", big)
    mm = np.load(tmp_path / "big.npy", mmap_mode="r")
    monkeypatch.setattr(detector_module, "_CHUNK", 128)  # force several chunks
    np.testing.assert_allclose(det.anomaly_score(mm), want, rtol=1e-6)
    np.testing.assert_allclose(det.explain(mm).contributions, want_e, rtol=1e-6, atol=1e-6)
    src = vk.ArraySource(big.astype(np.float32))
    np.testing.assert_allclose(det.anomaly_score(src), want, rtol=1e-4)
    det.anomaly_score(mm, progress=True)
    assert "score" in capsys.readouterr().err
    bad = big.copy()
    bad[300, 1] = np.nan
    np.save(tmp_path / "bad.npy", bad)
    with pytest.raises(ValueError, match="NaN"):
        det.anomaly_score(np.load(tmp_path / "bad.npy", mmap_mode="r"))


def _write(path, rows, header=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(header)
        w.writerows(rows)


def test_cli_detect_explain_and_chunked_score(tmp_path, monkeypatch):
    from vaekit.cli import score as score_cli

    x = _blobs()
    _write(tmp_path / "normal.csv", x.tolist(), ["a", "b", "c", "d"])
    new = x[:20].copy()
    new[18:, 2] += 30  # column c is far off in the last two rows
    _write(tmp_path / "new.csv", new.tolist(), ["a", "b", "c", "d"])
    out = tmp_path / "flagged.csv"
    rc = cli_main(
        [
            "detect",
            "--train",
            str(tmp_path / "normal.csv"),
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(out),
            "--explain",
            "2",
            "--save",
            str(tmp_path / "det"),
        ]
    )
    assert rc == 0
    with open(out) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[-4:] == [
        "feature_1",
        "contribution_1",
        "feature_2",
        "contribution_2",
    ]
    for r in rows:
        assert (r["feature_1"] != "") == (r["outlier"] == "1")
    assert [r["feature_1"] for r in rows[18:]] == ["c", "c"]
    # vaekit score reads a CSV chunk by chunk and writes the same scores
    monkeypatch.setattr(score_cli, "CHUNK_ROWS", 7)
    rc = cli_main(
        [
            "score",
            str(tmp_path / "det"),
            "--input",
            str(tmp_path / "new.csv"),
            "--output",
            str(tmp_path / "s.csv"),
        ]
    )
    assert rc == 0
    s = np.loadtxt(tmp_path / "s.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(s, [float(r["anomaly_score"]) for r in rows], rtol=1e-12)
    np.save(tmp_path / "new.npy", new)
    rc = cli_main(
        [
            "score",
            str(tmp_path / "det"),
            "--input",
            str(tmp_path / "new.npy"),
            "--output",
            str(tmp_path / "s2.csv"),
        ]
    )
    assert rc == 0
    np.testing.assert_allclose(np.loadtxt(tmp_path / "s2.csv", delimiter=",", skiprows=1), s, rtol=1e-12)
    _write(
        tmp_path / "bad.csv",
        new.tolist()[:10] + [["1", "2", "oops", "4"]],
        ["a", "b", "c", "d"],
    )
    assert (
        cli_main(
            [
                "score",
                str(tmp_path / "det"),
                "--input",
                str(tmp_path / "bad.csv"),
                "--output",
                str(tmp_path / "s3.csv"),
            ]
        )
        == 2
    )
    assert not os.path.exists(tmp_path / "s3.csv")

"""Files that cannot silently lose or corrupt work (issue 11): checksums, fallback to the
newest good checkpoint, strict JSON, umask permissions, consistent TrainState snapshots,
interruptible epochs, skipped-step counts and divergence, vk.fit checkpoints, validated
detector files, and clear errors for bad data."""

import errno
import json
import os
import signal
import threading
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.training import TrainState, default_optimizer
from vaekit.training import _loop as training
from vaekit.training import checkpoints as vio


def _model(key, n=64, hidden=(16,)):
    return vk.presets.build("vae", n, key=key, latent_dim=2, hidden=list(hidden))


# The shapes of `vaekit train --data digits --limit 300 --hidden 16 --batch-size 50`
# (270 training and 30 validation rows), so every fit here reuses one compiled epoch.
N, NV, BS = 270, 30, 50


def _leaves(m):
    return [np.asarray(a) for a in jax.tree.leaves(eqx.filter(m, eqx.is_array))]


def _same(a, b):
    la, lb = _leaves(a), _leaves(b)
    return len(la) == len(lb) and all(np.array_equal(x, y) for x, y in zip(la, lb))


def _corrupt(path, n=400):
    """Overwrite ``n`` bytes inside the largest array of an equinox/checkpoint file with
    valid float32 values (the .npy headers stay intact, so only a checksum can tell)."""
    b = bytearray(path.read_bytes())
    starts = [i for i in range(len(b)) if b[i : i + 6] == b"\x93NUMPY"] + [len(b)]
    size, at = max((starts[k + 1] - starts[k], starts[k]) for k in range(len(starts) - 1))
    i = at + size // 2 - n // 2
    b[i : i + n] = np.full(n // 4, 3.0e4, np.float32).tobytes()
    path.write_bytes(bytes(b))


# ---- item 7: checksums ------------------------------------------------------------------


def test_corrupted_model_file_is_refused_old_files_still_load(tmp_path, getkey):
    m = _model(getkey())
    spec = vio.model_spec("vae", 64, latent_dim=2, hidden=[16])
    vk.save(tmp_path / "m", m, spec=spec)
    meta = json.loads((tmp_path / "m" / "vaekit.json").read_text())
    assert len(meta["model_sha256"]) == 64
    _corrupt(tmp_path / "m" / "model.eqx")
    # today's bytes still deserialise: only the checksum catches it
    eqx.tree_deserialise_leaves(tmp_path / "m" / "model.eqx", m)
    with pytest.raises(ValueError, match=r"model\.eqx is corrupt: its SHA-256 checksum does not match"):
        vk.load(tmp_path / "m")
    # a folder saved before checksums existed (no model_sha256) loads unchecked
    vk.save(tmp_path / "old", m, spec=spec)
    meta = json.loads((tmp_path / "old" / "vaekit.json").read_text())
    del meta["model_sha256"]
    (tmp_path / "old" / "vaekit.json").write_text(json.dumps(meta))
    back, _ = vk.load(tmp_path / "old")
    assert _same(back, m)


def _state(key, epoch, hist=None):
    m = _model(key)
    opt = default_optimizer(1e-3)
    st = TrainState(
        m,
        opt.init(eqx.filter(m, eqx.is_array)),
        jnp.asarray(7 * epoch, jnp.int32),
        epoch,
        hist or {"train_loss": [float(i) for i in range(epoch)]},
    )
    return st, opt


def test_corrupted_checkpoint_is_refused_and_resume_falls_back(tmp_path, getkey):
    key = jax.random.key(5)
    ckpts = vio.Checkpoints(tmp_path / "ck", keep=0)
    states = {}
    for e in (1, 2, 3):
        states[e], opt = _state(jax.random.fold_in(jax.random.key(0), e), e)
        ckpts.save(states[e], key)
    head = vio.read_checkpoint_header(ckpts.path(3))
    assert len(head["sha256"]) == 64 and head["size"] > 0
    _corrupt(ckpts.path(3))
    tmpl = _model(getkey())
    like = (tmpl, opt.init(eqx.filter(tmpl, eqx.is_array)), jax.random.key(0))
    with pytest.raises(ValueError, match=r"epoch-0003\.ckpt is corrupt: the checksum"):
        vio.load_checkpoint(ckpts.path(3), *like)
    # a truncated one is named as such
    raw = ckpts.path(2).read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(raw[: len(raw) - 100])
    with pytest.raises(ValueError, match=r"cut\.ckpt is truncated"):
        vio.load_checkpoint(tmp_path / "cut.ckpt", *like)
    # the newest that verifies is used; the corrupt one is reported and set aside
    st, k, _ = ckpts.latest(*like)
    assert st.epoch == 2 and _same(st.model, states[2].model) and st.history == states[2].history
    np.testing.assert_array_equal(jax.random.key_data(k), jax.random.key_data(key))
    assert [(p.name, "checksum" in r) for p, r in ckpts.skipped] == [("epoch-0003.ckpt", True)]
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "epoch-0001.ckpt",
        "epoch-0002.ckpt",
        "epoch-0003.ckpt.corrupt",
    ]
    # all corrupt: a clear error listing them
    for p in ckpts.paths():
        _corrupt(p)
    with pytest.raises(ValueError, match=r"No checkpoint in .* could be read: epoch-0002\.ckpt: .*epoch-0001\.ckpt"):
        ckpts.latest(*like)


def test_checkpoint_without_checksum_still_loads(tmp_path, getkey, monkeypatch):
    """Checkpoints written before checksums (no "sha256"/"size" in the header) load."""
    st, opt = _state(getkey(), 2)
    real = vio.dumps
    monkeypatch.setattr(
        vio, "dumps", lambda o, **kw: real({k: v for k, v in o.items() if k not in ("sha256", "size")}, **kw)
    )
    vio.save_checkpoint(tmp_path / "old.ckpt", st, jax.random.key(1))
    monkeypatch.undo()
    assert "sha256" not in vio.read_checkpoint_header(tmp_path / "old.ckpt")
    tmpl = _model(getkey())
    back, _, _ = vio.load_checkpoint(
        tmp_path / "old.ckpt", tmpl, opt.init(eqx.filter(tmpl, eqx.is_array)), jax.random.key(0)
    )
    assert _same(back.model, st.model) and back.epoch == 2


# ---- item 5 (JSON part): strict JSON --------------------------------------------------


def test_json_files_are_strict(tmp_path):
    obj = {"a": float("nan"), "b": [1.0, float("inf"), -float("inf")], "c": np.float32("nan"), "d": np.arange(2.0)}
    vio.write_json(tmp_path / "x.json", obj)
    text = (tmp_path / "x.json").read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}")) == {
        "a": None,
        "b": [1.0, None, None],
        "c": None,
        "d": [0.0, 1.0],
    }
    st, _ = _state(jax.random.key(0), 2, {"train_loss": [float("nan"), 1.0], "val_loss": [2.0, float("inf")]})
    vio.save_checkpoint(tmp_path / "c.ckpt", st, jax.random.key(0))
    head = vio.read_checkpoint_header(tmp_path / "c.ckpt")
    assert head["history"] == {"train_loss": [None, 1.0], "val_loss": [2.0, None]}


# ---- item 16: permissions follow the umask ----------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_files_follow_the_umask(tmp_path, getkey, mask):
    old = os.umask(mask)
    try:
        assert vio.umask() == mask
        vk.save(tmp_path / "m", _model(getkey()), spec=vio.model_spec("vae", 64, latent_dim=2, hidden=[16]))
        vio.write_json(tmp_path / "x.json", {"a": 1})
    finally:
        os.umask(old)
    for p in [tmp_path / "m" / "model.eqx", tmp_path / "m" / "vaekit.json", tmp_path / "x.json"]:
        assert p.stat().st_mode & 0o777 == 0o666 & ~mask, p


# ---- item 6: TrainState is a snapshot ---------------------------------------------------


def test_train_state_history_is_a_consistent_snapshot(digits_binary, tmp_path):
    states = []
    vk.fit(
        _model(jax.random.key(0)),
        digits_binary[:N],
        key=jax.random.key(1),
        epochs=3,
        batch_size=BS,
        x_val=digits_binary[N : N + NV],
        callback=states.append,
    )
    for st in states:  # each state holds exactly its own epochs, after fit went on
        assert {k: len(v) for k, v in st.history.items()} == {
            k: st.epoch for k in ("train_loss", "val_loss", "time", "skipped_steps")
        }
    assert states[0].history["train_loss"] == states[2].history["train_loss"][:1]
    # a checkpoint written from the callback holds its own epoch's history
    vio.save_checkpoint(tmp_path / "c.ckpt", states[0], jax.random.key(1))
    assert len(vio.read_checkpoint_header(tmp_path / "c.ckpt")["history"]["train_loss"]) == 1


# ---- item 4: epochs run as interruptible parts, bit-identical ---------------------------


def test_epoch_parts_are_bit_identical_and_compile_once(digits_binary, monkeypatch, caplog):
    import logging

    x = digits_binary[:N]
    kw = dict(key=jax.random.key(2), epochs=3, batch_size=BS)
    whole, h1 = vk.fit(_model(jax.random.key(0)), x, **kw)
    sizes = []
    real = training._EpochParts._size

    def odd_sizes(self, remaining):
        k = min(remaining, [3, 1, 7, 2][len(sizes) % 4])
        sizes.append(k)
        return k

    monkeypatch.setattr(training._EpochParts, "_size", odd_sizes)
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        parts, h2 = vk.fit(_model(jax.random.key(0)), x, **kw)
    assert len(sizes) > 6 and sum(sizes) == 3 * (N // BS)
    assert _same(whole, parts) and h1["train_loss"] == h2["train_loss"]
    compiles = [
        r.getMessage() for r in caplog.records if "train_epoch" in r.getMessage() and "Compiling" in r.getMessage()
    ]
    assert len(compiles) <= 1, compiles  # one program for every part (0: cached from the first fit)
    monkeypatch.setattr(training._EpochParts, "_size", real)


class _Stop(Exception):
    pass


def test_a_signal_stops_training_between_parts_not_at_the_end_of_the_epoch(digits_binary, monkeypatch):
    """The main thread waits for each compiled part, so a signal is acted on after the
    current part. (If the parts were only dispatched, the signal would wait for the end of
    the epoch, and all parts would have run.)"""
    monkeypatch.setattr(training._EpochParts, "_size", lambda self, remaining: 1)
    done = []
    real = training.Trainer.train_epoch_part

    def counted(self, *a):
        out = real(self, *a)
        done.append(1)
        return out

    monkeypatch.setattr(training.Trainer, "train_epoch_part", counted)

    def raise_stop(signum, frame):
        raise _Stop

    old = signal.signal(signal.SIGUSR1, raise_stop)
    sender_done = threading.Event()

    def sender():
        while len(done) < 5:
            pass
        os.kill(os.getpid(), signal.SIGUSR1)
        sender_done.set()

    x = np.tile(digits_binary[:N], (20, 1))  # 108 steps, here 108 parts, in the epoch
    t = threading.Thread(target=sender, daemon=True)
    try:
        t.start()
        with pytest.raises(_Stop):
            vk.fit(_model(jax.random.key(0)), x, key=jax.random.key(0), epochs=1, batch_size=BS)
        sender_done.wait(5)
    finally:
        signal.signal(signal.SIGUSR1, old)
    assert 5 <= len(done) < 108 // 2, len(done)


# ---- item 5: skipped steps are counted; divergence stops -------------------------------


def test_skipped_steps_are_counted_and_divergence_stops(digits_binary, tmp_path):
    x, kw = digits_binary[:N], dict(key=jax.random.key(0), batch_size=BS)

    def poisoned(m, xb, k, step):  # 1 of the 5 steps of epochs 1-2 is non-finite, then all
        return jnp.where((step % 5 == 1) | (step >= 10), jnp.nan, 1.0) * -vk.elbo(m, xb, k)

    states = []
    with pytest.warns(RuntimeWarning, match=r"epoch 1: 1 of 5 steps had non-finite losses or gradients"):
        with pytest.raises(vk.TrainingDiverged, match="diverged in epoch 3: all 5 steps had a non-finite") as e:
            vk.fit(
                _model(jax.random.key(0)),
                x,
                epochs=4,
                objective=poisoned,
                callback=states.append,
                checkpoint_dir=tmp_path / "ck",
                checkpoint_every=10,
                **kw,
            )
    assert [s.history["skipped_steps"] for s in states] == [[1], [1, 1]]
    assert e.value.epoch == 3 and e.value.state.epoch == 2 and e.value.skipped == 5
    assert np.isfinite(np.concatenate([a.ravel() for a in _leaves(e.value.state.model)])).all()
    # the last good epoch was checkpointed although checkpoint_every=10
    assert [p.name for p in vio.Checkpoints(tmp_path / "ck").paths()] == ["epoch-0002.ckpt"]

    # parameters that become non-finite (here: set so by a callback) stop training too
    def break_it(st):
        if st.epoch == 1:
            return st._replace(model=jax.tree.map(lambda a: a * np.nan if eqx.is_inexact_array(a) else a, st.model))

    with pytest.raises(vk.TrainingDiverged, match="diverged in epoch 2: the model's parameters became non-finite"):
        vk.fit(_model(jax.random.key(0)), x, epochs=3, callback=break_it, **kw)


# ---- vk.fit(checkpoint_dir=...) (issue 12, section 4) -----------------------------------


def test_fit_checkpoints_continue_bit_identically(digits_binary, tmp_path):
    x = digits_binary[:N]
    kw = dict(key=jax.random.key(3), batch_size=BS, x_val=digits_binary[N : N + NV])
    full, hfull = vk.fit(_model(jax.random.key(0)), x, epochs=5, **kw)
    ck = tmp_path / "ck"
    vk.fit(_model(jax.random.key(0)), x, epochs=3, checkpoint_dir=ck, checkpoint_every=2, keep=2, **kw)
    assert [p.name for p in sorted(ck.glob("*.ckpt"))] == ["epoch-0002.ckpt", "epoch-0003.ckpt"]
    resumed, hres = vk.fit(_model(jax.random.key(0)), x, epochs=5, checkpoint_dir=ck, checkpoint_every=2, keep=2, **kw)
    assert _same(full, resumed)
    strip = lambda h: {k: v for k, v in h.items() if k != "time"}  # noqa: E731
    assert strip(hres) == strip(hfull)
    # a different run is refused, and its checkpoints stay
    with pytest.raises(ValueError, match=r"holds checkpoints of a different training run \(the key differ"):
        vk.fit(_model(jax.random.key(0)), x, epochs=6, checkpoint_dir=ck, **{**kw, "key": jax.random.key(4)})
    with pytest.raises(ValueError, match=r"the initial model, training data differ"):
        vk.fit(_model(jax.random.key(1)), x[::-1], epochs=6, checkpoint_dir=ck, **kw)
    with pytest.raises(ValueError, match=r"the initial model differ"):  # another architecture
        vk.fit(_model(jax.random.key(0), hidden=(8,)), x, epochs=6, checkpoint_dir=ck, **kw)
    assert sorted(p.name for p in ck.glob("*.ckpt*")) == ["epoch-0004.ckpt", "epoch-0005.ckpt"]
    # while a process trains there, the folder is locked
    with vio.FolderLock(ck):
        with pytest.raises(vio.FolderInUseError, match=rf"checkpoint folder {ck} is in use by process {os.getpid()}"):
            vk.fit(_model(jax.random.key(0)), x, epochs=6, checkpoint_dir=ck, **kw)
    # a corrupt newest checkpoint: continue from the one before, with a warning
    _corrupt(ck / "epoch-0005.ckpt")
    with pytest.warns(RuntimeWarning, match=r"skipped checkpoint .*epoch-0005\.ckpt.*corrupt"):
        again, _ = vk.fit(_model(jax.random.key(0)), x, epochs=5, checkpoint_dir=ck, **kw)
    assert _same(again, full)


# ---- item 11: detector files ------------------------------------------------------------


FAST = dict(n_models=1, hidden=(8,), max_steps=30, patience=10, n_samples=4)


@pytest.fixture(scope="module")
def detector():
    pytest.importorskip("sklearn")
    x = np.random.RandomState(0).randn(200, 4)
    return vk.VAEDetector(random_state=0, **FAST).fit(x), x


def test_detector_save_is_atomic(detector, tmp_path, monkeypatch):
    det, x = detector
    real = vio.atomic_write
    calls = []

    def full_disk(path, write):
        calls.append(path)
        if len(calls) == 2:  # the second file: the disk is full half-way through
            real(path, lambda f: (write(f), (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device"))))
        real(path, write)

    monkeypatch.setattr(vio, "atomic_write", full_disk)
    with pytest.raises(OSError, match="No space left") as e:
        det.save(tmp_path / "det")
    # names the file it was writing in the target folder, not a temporary file
    assert Path(e.value.filename).parent == tmp_path / "det" and Path(calls[1]).name == Path(e.value.filename).name
    assert list(tmp_path.iterdir()) == []  # no partial folder, no temporary folder
    monkeypatch.undo()
    old = os.umask(0o027)
    try:
        det.save(tmp_path / "det")
    finally:
        os.umask(old)
    assert {p.stat().st_mode & 0o777 for p in (tmp_path / "det").iterdir()} == {0o640}
    assert (tmp_path / "det").stat().st_mode & 0o777 == 0o750
    np.testing.assert_array_equal(vk.VAEDetector.load(tmp_path / "det").score_samples(x), det.score_samples(x))


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda m, p: (p / "model_0.eqx").write_bytes((p / "model_0.eqx").read_bytes()[:500]),
            r"model_0\.eqx has 500 bytes but .* describes a model of \d+ bytes",
        ),
        (lambda m, p: _corrupt(p / "model_0.eqx"), r"model_0\.eqx is corrupt: its SHA-256 checksum"),
        (lambda m, p: m.update(models=[]), "'models' lists no model files"),
        (lambda m, p: m.update(center=m["center"][:2]), r"'center' must hold 4 numbers \(n_features_in\), got 2"),
        (lambda m, p: m.update(n_features_in=10**12), r"n_features_in=1000000000000 is not an int in \[1, 10000000\]"),
        (lambda m, p: m.update(n_features_in=5), "'center' must hold 5 numbers"),
        (lambda m, p: m.update(scale=[1.0, 0.0, 1.0, 1.0]), "'scale' has values <= 0"),
        (lambda m, p: m.update(models=["../../etc/passwd"]), "is not a plain .eqx file name"),
        (lambda m, p: m.update(latent_dim=3), r"model_0\.eqx does not hold the model that .*vaekit\.json describes"),
        (lambda m, p: m["params"].update(bogus=1), r"bad 'params'"),
        (lambda m, p: m.update(offset=None), "offset=None is not a finite number"),
    ],
)
def test_detector_load_validates_every_field(detector, tmp_path, edit, message):
    det, _ = detector
    path = tmp_path / "det"
    det.save(path)
    meta = json.loads((path / "vaekit.json").read_text())
    edit(meta, path)
    (path / "vaekit.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match=message):
        vk.VAEDetector.load(path)


def test_detector_without_checksums_still_loads(detector, tmp_path):
    det, x = detector
    det.save(tmp_path / "det")
    meta = json.loads((tmp_path / "det" / "vaekit.json").read_text())
    del meta["sha256"]  # as saved by vaekit before checksums
    (tmp_path / "det" / "vaekit.json").write_text(json.dumps(meta))
    np.testing.assert_array_equal(vk.VAEDetector.load(tmp_path / "det").score_samples(x), det.score_samples(x))


# ---- items 14, 15: clear messages --------------------------------------------------------


def test_float32_overflow_and_support_messages(getkey, tmp_path):
    m = _model(getkey(), n=4, hidden=(4,))
    x = np.zeros((10, 4))
    x[3, 1] = 1e300  # finite in float64, inf in float32
    with pytest.raises(ValueError, match=r"x_train has 1 value\(s\) too large for float32.*1e\+300.*first rows: \[3\]"):
        vk.fit(m, x, key=getkey(), epochs=1, batch_size=5)
    csv = tmp_path / "big.csv"
    csv.write_text("a,b\n1,2\n3,1e300\n")
    with pytest.raises(ValueError, match=r"big\.csv: 1 value\(s\) too large for float32.*data row 2, column 'b'"):
        vk.datasets.load(csv)
    half = np.full((2, 4), 0.5, np.float32)
    with pytest.raises(
        ValueError,
        match=r"vk.elbo: x has values outside the support of the decoder Bernoulli \(values must be 0 or 1\): 8 bad value\(s\), e\.g\. 0\.5",
    ):
        vk.elbo(m, half, getkey())  # iwae_bound and log_likelihood run the same check
    ok = np.ones((2, 4), np.float32)
    assert np.isfinite(np.asarray(vk.elbo(m, ok, getkey()))).all()
    # under jit the values are not known: no check, no error
    assert jax.jit(lambda v: vk.elbo(m, v, jax.random.key(0)))(half).shape == (2,)


def test_activation_names_in_model_options(getkey):
    key = getkey()
    named = vk.presets.build("vae", 8, key=key, hidden=[4], activation="relu")
    fn = vk.presets.build("vae", 8, key=key, hidden=[4], activation=jax.nn.relu)
    assert named.encoder.net.activation is jax.nn.relu and _same(named, fn)
    with pytest.raises(ValueError, match=r"Unknown activation='tahn'. Valid values: 'tanh', 'relu'"):
        vk.presets.build("vae", 8, key=key, hidden=[4], activation="tahn")

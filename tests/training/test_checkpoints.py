"""Saving/loading models and preprocessing; atomic checkpoints."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vaekit as vk
from vaekit.data import Preprocessor
from vaekit.training import TrainState, default_optimizer
from vaekit.training import checkpoints as vio


def _model(key, n=12):
    return vio.build_model(vio.model_spec("vae", n, latent_dim=2, hidden=[8]), key)


def test_save_load_roundtrip(tmp_path, getkey):
    spec = vio.model_spec("vae", 12, latent_dim=2, hidden=[8], likelihood="gaussian")
    m = vio.build_model(spec, getkey())
    pre = Preprocessor.fit("standardize", np.random.default_rng(0).normal(3, 2, (50, 12)))
    vk.save(tmp_path / "m", m, preprocessor=pre, spec=spec)
    m2, pre2 = vk.load(tmp_path / "m")
    assert eqx.tree_equal(m, m2)
    assert pre2 == pre
    # a hand-built model: needs like=
    hand = vk.VAE(
        vk.StandardNormal(2),
        vk.Gaussian(vk.MLP(5, 4, (3,), key=getkey())),
        vk.Bernoulli(vk.MLP(2, 5, (3,), key=getkey())),
    )
    vk.save(tmp_path / "h", hand)
    with pytest.raises(ValueError, match="like=model"):
        vk.load(tmp_path / "h")
    twin = vk.VAE(
        vk.StandardNormal(2),
        vk.Gaussian(vk.MLP(5, 4, (3,), key=getkey())),
        vk.Bernoulli(vk.MLP(2, 5, (3,), key=getkey())),
    )
    loaded, none = vk.load(tmp_path / "h", like=twin)
    assert eqx.tree_equal(loaded, hand) and none is None
    assert json.loads((tmp_path / "h" / "vaekit.json").read_text())["kind"] == "model"


def test_save_refuses_to_overwrite(tmp_path, getkey):
    m = _model(getkey())
    vk.save(tmp_path / "m", m, spec=vio.model_spec("vae", 12, latent_dim=2, hidden=[8]))
    before = (tmp_path / "m" / "model.eqx").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        vk.save(tmp_path / "m", _model(getkey()))
    assert (tmp_path / "m" / "model.eqx").read_bytes() == before
    with pytest.raises(ValueError, match="not a vaekit folder"):
        vk.load(tmp_path)
    with pytest.raises(FileNotFoundError):
        vk.load(tmp_path / "nothing")


def test_wrong_structure_is_a_clear_error(tmp_path, getkey):
    vk.save(tmp_path / "m", _model(getkey()))
    with pytest.raises(ValueError, match="does not match the model structure"):
        vk.load(tmp_path / "m", like=_model(getkey(), n=13))


def test_generic_objects_save_themselves(tmp_path):
    class Thing:
        def __vaekit_save__(self, path):
            path.mkdir()
            (path / "vaekit.json").write_text(json.dumps({"kind": "thing"}))

    vk.save(tmp_path / "t", Thing())
    with pytest.raises(ValueError, match="unknown kind 'thing'"):
        vk.load(tmp_path / "t")


def test_save_dispatches_by_registered_type(tmp_path, monkeypatch):
    from vaekit.runs import serialization

    class Base:
        pass

    class Child(Base):
        pass

    monkeypatch.setattr(serialization, "_SAVERS", {})
    serialization.register_saver(Base, lambda obj, path: path.mkdir() or (path / "by").write_text(type(obj).__name__))
    for name, obj in (("b", Base()), ("c", Child())):
        assert vk.save(tmp_path / name, obj) == tmp_path / name
        assert (tmp_path / name / "by").read_text() == type(obj).__name__
    assert not (tmp_path / "b" / "vaekit.json").exists()  # not saved as a model


def _state(key, epoch=3):
    m = _model(key)
    opt = default_optimizer(1e-3)
    return TrainState(
        m, opt.init(eqx.filter(m, eqx.is_array)), jnp.asarray(7, jnp.int32), epoch, {"train_loss": [3.0, 2.0, 1.5]}
    ), opt


def test_checkpoint_roundtrip_includes_prng(tmp_path, getkey):
    st, opt = _state(getkey())
    key = jax.random.key(42)
    vio.save_checkpoint(tmp_path / "c.ckpt", st, key, {"note": "x"})
    template = _model(getkey())
    st2, key2, head = vio.load_checkpoint(
        tmp_path / "c.ckpt", template, opt.init(eqx.filter(template, eqx.is_array)), jax.random.key(0)
    )
    assert eqx.tree_equal(st2.model, st.model) and eqx.tree_equal(st2.opt_state, st.opt_state)
    assert int(st2.step) == 7 and st2.epoch == 3 and st2.history == st.history and head["note"] == "x"
    np.testing.assert_array_equal(jax.random.key_data(key2), jax.random.key_data(key))


def test_crash_during_checkpoint_keeps_last_good(tmp_path, getkey, monkeypatch):
    st, opt = _state(getkey())
    path = tmp_path / "c.ckpt"
    vio.save_checkpoint(path, st, jax.random.key(1))
    good = path.read_bytes()
    real = eqx.tree_serialise_leaves

    def crash_halfway(f, tree):
        real(f, jax.tree.map(lambda a: a, tree))  # write everything ...
        f.truncate(f.tell() // 2)  # ... keep half of it, then die
        raise OSError("disk full")

    monkeypatch.setattr(vio.eqx, "tree_serialise_leaves", crash_halfway)
    st_new = st._replace(epoch=4, history={"train_loss": [1.0]})
    with pytest.raises(OSError, match="disk full"):
        vio.save_checkpoint(path, st_new, jax.random.key(1))
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["c.ckpt"]  # no temp file left
    template = _model(getkey())
    back, _, _ = vio.load_checkpoint(path, template, opt.init(eqx.filter(template, eqx.is_array)), jax.random.key(0))
    assert back.epoch == 3 and eqx.tree_equal(back.model, st.model)
    # a truncated checkpoint file (e.g. copied half-way) is a clear error
    (tmp_path / "cut.ckpt").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="truncated"):
        vio.load_checkpoint(
            tmp_path / "cut.ckpt", template, opt.init(eqx.filter(template, eqx.is_array)), jax.random.key(0)
        )


def test_preprocessing_fitted_on_train_only_and_roundtrips():
    rng = np.random.default_rng(0)
    train, test = rng.normal(5, 3, (200, 4)), rng.normal(50, 1, (20, 4))
    for kind in ("standardize", "minmax"):
        p = Preprocessor.fit(kind, train)
        t = p.transform(train)
        if kind == "standardize":
            np.testing.assert_allclose(t.mean(0), 0, atol=1e-5)
            np.testing.assert_allclose(t.std(0), 1, atol=1e-5)
        else:
            np.testing.assert_allclose(t.min(0), 0, atol=1e-6)
            np.testing.assert_allclose(t.max(0), 1, atol=1e-6)
        assert p.transform(test).mean() > 2  # statistics of the training split only
        np.testing.assert_allclose(p.inverse_transform(p.transform(test)), test, rtol=1e-5)
        q = Preprocessor.from_dict(json.loads(json.dumps(p.to_dict())))
        np.testing.assert_array_equal(q.transform(test), p.transform(test))
    const = Preprocessor.fit("standardize", np.ones((5, 2)))
    assert np.isfinite(const.transform(np.ones((3, 2)))).all()
    b = Preprocessor.fit("binarize", train / 20)
    assert set(np.unique(b.transform(train / 20))) <= {0.0, 1.0}
    d = Preprocessor.fit("dynamic", np.full((4000, 1), 0.3))
    draws = d.transform(np.full((4000, 1), 0.3))
    assert abs(draws.mean() - 0.3) < 0.03 and np.array_equal(draws, d.transform(np.full((4000, 1), 0.3)))
    with pytest.raises(ValueError, match="Valid values: none, standardize"):
        Preprocessor.fit("zscore", train)
    with pytest.raises(ValueError, match=r"needs values in \[0, 1\]"):
        Preprocessor.fit("dynamic", train)


def test_dynamic_binarization_redraws_each_batch(getkey, digits_binary):
    from sklearn.datasets import load_digits

    gray = (load_digits().data[:200] / 16.0).astype(np.float32)
    pre = Preprocessor.fit("dynamic", gray)
    t = pre.batch_transform()
    a, b = np.asarray(t(jax.random.key(0), gray)), np.asarray(t(jax.random.key(1), gray))
    assert set(np.unique(a)) == {0.0, 1.0} and not np.array_equal(a, b)
    assert abs(a.mean() - gray.mean()) < 0.01
    assert Preprocessor.fit("standardize", gray).batch_transform() is None
    # vk.fit trains a Bernoulli decoder on the [0, 1] values through the transform
    m = vio.build_model(vio.model_spec("vae", 64, latent_dim=2, hidden=[4]), getkey())
    _, hist = vk.fit(m, gray, key=getkey(), epochs=1, batch_size=50, batch_transform=t)
    assert np.isfinite(hist["train_loss"]).all()
    with pytest.raises(ValueError, match="outside the support"):
        vk.fit(m, gray, key=getkey(), epochs=1, batch_size=50)

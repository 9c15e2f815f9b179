"""Python API pieces of issue 12: interpolate/traverse, int widths and seeds, shape errors
that name a missing batch axis, array-like streamed datasets, optimizer settings, help texts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import vaekit as vk
from vaekit.cli import main


@pytest.fixture(scope="module")
def model():
    return vk.presets.build("vae", 8, key=jax.random.key(0), latent_dim=3, hidden=16)


@pytest.fixture(scope="module")
def x():
    return (np.random.default_rng(0).random((6, 8)) > 0.5).astype(np.float32)


def test_interpolate_endpoints_are_the_decoded_posterior_means(model, x):
    ends = model.decoder.mean(vk.encode(model, x[[1, 4]])["loc"])
    for method in ("linear", "slerp"):
        path = vk.interpolate(model, x[1], x[4], n=7, method=method)
        assert path.z.shape == (7, 3) and path.mean.shape == (7, 8)
        np.testing.assert_allclose(np.asarray(path.mean)[[0, -1]], ends, atol=1e-6)
    lin = vk.interpolate(model, x[1], x[4], n=5)
    np.testing.assert_allclose(lin.z[2], (lin.z[0] + lin.z[-1]) / 2, atol=1e-6)  # the midpoint of the line
    arc = vk.interpolate(model, x[1], x[4], n=5, method="slerp")
    r = np.linalg.norm(np.asarray(arc.z), axis=1)
    assert np.all(r >= np.minimum(r[0], r[-1]) - 1e-5)  # the arc keeps the norm, the chord cuts inside
    with pytest.raises(ValueError, match=r"x_from must be one example of shape \(8,\).*got shape \(6, 8\)"):
        vk.interpolate(model, x, x[4])
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        vk.interpolate(model, x[1], x[4], n=1)


def test_traverse_sets_one_coordinate(model, x):
    t = vk.traverse(model, x[2], 1, [-2.0, 0.0, 2.0])
    mu = np.asarray(vk.encode(model, x[2:3])["loc"][0])
    np.testing.assert_allclose(t.z[:, 1], [-2, 0, 2])
    np.testing.assert_allclose(t.z[:, [0, 2]], np.tile(mu[[0, 2]], (3, 1)), atol=1e-6)
    np.testing.assert_allclose(t.mean, model.decoder.mean(t.z), atol=1e-6)
    with pytest.raises(ValueError, match=r"dim must be an int in \[0, 3\)"):
        vk.traverse(model, x[2], 3, [0.0])


def test_dirichlet_paths_stay_on_the_simplex(x, tmp_path):
    m = vk.presets.build("dirichlet_vae", 8, key=jax.random.key(1), latent_dim=3, hidden=16)
    p = vk.interpolate(m, x[0], x[3], n=6)
    np.testing.assert_allclose(np.asarray(p.z).sum(1), 1, atol=1e-5)
    assert (np.asarray(p.z) >= 0).all()
    t = vk.traverse(m, x[0], 0, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(np.asarray(t.z).sum(1), 1, atol=1e-5)
    np.testing.assert_allclose(t.z[:, 0], [0, 0.5, 1], atol=1e-6)
    with pytest.raises(ValueError, match="leaves the simplex"):
        vk.interpolate(m, x[0], x[3], method="slerp")
    vk.plot_interpolation(p, path=tmp_path / "i.png")
    vk.plot_traversal(vk.traverse(m, x[0], 0, [0.2, 0.8]), [0.2, 0.8], image_shape=(2, 4), path=tmp_path / "t.png")
    assert (tmp_path / "i.png").stat().st_size > 1000 and (tmp_path / "t.png").stat().st_size > 500


def test_int_widths_and_named_activations(getkey):
    import equinox as eqx

    shapes = eqx.filter_eval_shape  # builds the structure without running the initializers
    mlp = shapes(lambda k: vk.MLP(4, 2, hidden=5, activation="relu", key=k), getkey())
    assert [layer.weight.shape for layer in mlp.layers] == [(5, 4), (2, 5)] and mlp.activation is jax.nn.relu
    conv = shapes(lambda k: vk.presets.build("conv_vae", (8, 8), key=k, hidden=4, latent_dim=2), getkey())
    assert conv.encoder.net.convs[0].weight.shape[0] == 4  # 4 channels, not "hidden" as a sequence
    vae = shapes(lambda k: vk.presets.build("vae", 8, key=k, hidden=6, activation="gelu"), getkey())
    assert vae.decoder.net.layers[0].weight.shape == (6, 2) and vae.decoder.net.activation is jax.nn.gelu
    with pytest.raises(ValueError, match="Unknown activation='tahn'.*'tanh'"):
        vk.presets.build("vae", 8, key=getkey(), activation="tahn")
    with pytest.raises(TypeError, match="hidden must be an int or a sequence of ints"):
        vk.MLP(4, 2, hidden="wide", key=getkey())
    assert vk.presets.default_hidden("conv_vae") == (32, 64) and vk.presets.default_hidden("iwae") == (500,)


def test_fit_accepts_an_int_seed(model, x):
    from vaekit.training import as_key

    np.testing.assert_array_equal(jax.random.key_data(as_key(3)), jax.random.key_data(jax.random.key(3)))
    assert as_key(jax.random.PRNGKey(3)).shape == (2,)  # legacy keys pass through
    assert vk.fit(model, x, key=3, epochs=0, batch_size=3)[0] is not None
    with pytest.raises(TypeError, match=r"key must be a PRNG key such as jax.random.key\(0\), or an int seed; got str"):
        vk.fit(model, x, key="0", epochs=1, batch_size=3)


def test_shape_errors_name_the_missing_batch_axis(model, x):
    with pytest.raises(
        ValueError,
        match=r"Gaussian expects inputs of shape \[batch, 8\].*got shape \(8,\): the batch axis is missing.*x\[None\]",
    ):
        vk.elbo(model, x[0], jax.random.key(0))
    z = jnp.zeros((4, 3))
    with pytest.raises(
        ValueError,
        match=r"Bernoulli expects inputs of shape \[batch, 3\].*got shape \(3,\): the batch axis is missing.*jax.vmap",
    ):
        jax.vmap(model.decoder.mean)(z)
    with pytest.raises(ValueError, match=r"got shape \(6, 7\) \(7 values per example\)"):
        vk.elbo(model, x[:, :7], jax.random.key(0))


def test_streamed_dataset_behaves_like_an_array(tmp_path, make_wav_folder):
    ds = vk.datasets.load(make_wav_folder(tmp_path / "wav", n_files=2, seconds=0.3), "all", frame_length=256)
    x = ds.x
    assert isinstance(x, vk.Source) and x.shape == (len(x), 256) and x.ndim == 2 and x.dtype == np.float32
    whole = np.asarray(x)
    assert whole.shape == x.shape
    np.testing.assert_array_equal(x[3], whole[3])
    np.testing.assert_array_equal(x[-1], whole[-1])
    np.testing.assert_array_equal(x[1:4], whole[1:4])
    np.testing.assert_array_equal(x[[0, 2]], whole[[0, 2]])
    np.testing.assert_array_equal(x[2, 10:20], whole[2, 10:20])
    np.testing.assert_array_equal(x[np.arange(len(x)) % 2 == 0], whole[::2])
    with pytest.raises(IndexError, match="out of range"):
        x[len(x)]
    sub = vk.datasets.load(tmp_path / "wav", "test", frame_length=256).x  # a Subset of the folder
    assert sub.shape[1:] == (256,) and np.asarray(sub[:2]).shape == (2, 256)


def test_default_optimizer_betas_and_weight_decay():
    params = {"w": jnp.array([1.0, -2.0, 3.0]), "b": jnp.array(0.5)}
    grads = [{"w": jnp.array([0.3, -0.1, 2.0]) * (i + 1), "b": jnp.array(0.2 * i)} for i in range(4)]

    def run(opt):
        @jax.jit
        def go(p):
            s = opt.init(p)
            for g in grads:
                u, s = opt.update(g, s, p)
                p = optax.apply_updates(p, u)
            return p

        return go(params)

    mine = vk.default_optimizer(1e-2, 1.0, betas=(0.9, 0.99), weight_decay=0.1)
    ref = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2, b1=0.9, b2=0.99, weight_decay=0.1))
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), run(mine), run(ref))
    plain = vk.default_optimizer(1e-2, None, betas=(0.8, 0.9), skip_nonfinite=False)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), run(plain), run(optax.adam(1e-2, b1=0.8, b2=0.9))
    )
    assert vk.default_optimizer(1e-3) is vk.default_optimizer(1e-3)  # the default stays cached
    with pytest.raises(ValueError, match=r"betas must lie in \[0, 1\)"):
        vk.default_optimizer(betas=(0.9, 1.0))


@pytest.mark.parametrize("command", ["detect", "score"])
def test_help_is_plain_text(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "``" not in out and "anomaly_score" in out


def test_report_and_train_help_describe_themselves(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "report.html" in capsys.readouterr().out.split("positional arguments")[0]
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "conv_vae       convolution channels per stride-2 stage, default 32,64" in out
    assert "--clip-norm" in out and "--adam-betas" in out and "--no-skip-nonfinite" in out and "--weight-decay" in out

"""Conditional VAE (Sohn et al. 2015) and semi-supervised M2 (Kingma et al. 2014)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro.distributions as nd
import pytest

import vaekit as vk
from vaekit.zoo import conditional as cz  # also vk.conditional


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.data / 16.0 > 0.5).astype(np.float32)
    return x[:600], d.target[:600].astype(np.int32)


@pytest.fixture(scope="module")
def trained_cvae(digits):
    x, y = digits
    model = cz.cvae(64, num_classes=10, key=jax.random.key(0), latent_dim=2, hidden=(64,))
    model, hist = vk.fit(model, x, y=y, key=1, epochs=15, batch_size=50)
    return model, hist


def test_given_is_the_vae_on_concatenated_inputs(getkey):
    """Reference: the networks applied by hand to [x, onehot(y)] and [z, onehot(y)]."""
    model = cz.cvae(5, num_classes=3, key=getkey(), latent_dim=2, hidden=(7,), likelihood="gaussian")
    x = jax.random.normal(getkey(), (4, 5))
    y = jnp.array([0, 2, 1, 2])
    oh = jax.nn.one_hot(y, 3)
    m = model.given(y)
    out = jax.vmap(model.encoder.net)(jnp.concatenate([x, oh], 1))
    q = m.posterior(x)
    np.testing.assert_allclose(q.base_dist.loc, out[:, :2], rtol=1e-6)
    np.testing.assert_allclose(q.base_dist.scale, jax.nn.softplus(out[:, 2:]) + 1e-4, rtol=1e-6)
    z = jax.random.normal(getkey(), (3, 4, 2))  # [S, B, latent]: y broadcast over S
    lp = m.likelihood(z, batch_ndim=2).log_prob(x)
    dec = jax.vmap(jax.vmap(model.decoder.net))(jnp.concatenate([z, jnp.broadcast_to(oh, (3, 4, 3))], -1))
    ref = nd.Normal(dec[..., :5], jax.nn.softplus(dec[..., 5:]) + 1e-4).to_event(1).log_prob(x)
    np.testing.assert_allclose(lp, ref, rtol=1e-5)


def test_cvae_trains_and_uses_the_label(trained_cvae, digits, getkey):
    """Property: after training, log p(x|y) is higher for the true label than a wrong one."""
    model, hist = trained_cvae
    x, y = digits
    assert hist["train_loss"][-1] < hist["train_loss"][0] - 3
    k = getkey()
    bound = eqx.filter_jit(lambda m, xs, ys: vk.iwae_bound(m.given(ys), xs, k, k=50))  # log p(x|y) bounds
    right, wrong = bound(model, x, y), bound(model, x, (y + 5) % 10)
    assert float(jnp.mean(right - wrong)) > 1.5  # nats per example (measured 2.7)
    assert float(jnp.mean(right > wrong)) > 0.7
    # log_likelihood groups the examples by label: the same as one call per label
    xs, ys = x[:12], np.array([3, 1, 3, 1, 1, 3, 3, 1, 1, 1, 3, 3])
    ll = cz.log_likelihood(model, xs, ys, k, n_samples=200)
    for c in (1, 3):
        ref = vk.log_likelihood(model.given(jnp.array([c])), xs[ys == c], k, n_samples=200)
        np.testing.assert_allclose(ll[ys == c], ref, rtol=1e-6)
    assert float(jnp.mean(ll)) > float(jnp.mean(cz.conditional_elbo(model, xs, ys, k))) - 0.5


def test_sample_per_class(trained_cvae, digits):
    """Samples of class c look like c: a classifier trained on the data labels them c."""
    from sklearn.linear_model import LogisticRegression

    model, _ = trained_cvae
    x, y = digits
    clf = LogisticRegression(max_iter=500).fit(x, y)
    labels = jnp.repeat(jnp.arange(10), 20)
    s = vk.sample(model, jax.random.key(3), 200, y=labels)
    assert s.x.shape == (200, 64) and s.mean.shape == (200, 64)
    acc = float(np.mean(clf.predict(np.asarray(s.mean)) == np.asarray(labels)))
    assert acc > 0.5, acc  # chance: 0.1


def test_cvae_resumes_bit_identically(digits, tmp_path):
    x, y = digits
    model = cz.cvae(64, num_classes=10, key=jax.random.key(0), hidden=(16,))
    full, _ = vk.fit(model, x, y=y, key=2, epochs=2, batch_size=100)
    vk.fit(model, x, y=y, key=2, epochs=1, batch_size=100, checkpoint_dir=tmp_path)
    resumed, _ = vk.fit(model, x, y=y, key=2, epochs=2, batch_size=100, checkpoint_dir=tmp_path)
    for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="different training run"):  # other labels: another run
        vk.fit(model, x, y=(y + 1) % 10, key=2, epochs=3, batch_size=100, checkpoint_dir=tmp_path)


def test_cvae_errors(digits):
    x, y = digits
    model = cz.cvae(64, num_classes=10, key=jax.random.key(0), hidden=(8,))
    plain = vk.presets.build("vae", 64, key=jax.random.key(0), hidden=(8,))
    with pytest.raises(ValueError, match="not a conditional model"):
        vk.fit(plain, x, y=y, key=0, epochs=1, batch_size=50)
    with pytest.raises(ValueError, match="is conditional: pass"):
        vk.fit(model, x, key=0, epochs=1, batch_size=50)
    with pytest.raises(ValueError, match=r"labels \[n\] in 0..9"):
        vk.fit(model, x, y=y + 1, key=0, epochs=1, batch_size=50)
    with pytest.raises(ValueError, match="one entry per example"):
        vk.fit(model, x, y=y[:10], key=0, epochs=1, batch_size=50)
    with pytest.raises(ValueError, match="needs y"):
        vk.sample(model, jax.random.key(0), 3)
    with pytest.raises(ValueError, match="takes no y"):
        vk.sample(plain, jax.random.key(0), 3, y=jnp.zeros(3, int))


def test_m2_loss_matches_its_definition(getkey):
    """Reference: the labelled and unlabelled M2 bounds written out class by class."""
    model = cz.m2(6, num_classes=3, key=getkey(), hidden=(5,), alpha=0.7)
    x = (jax.random.uniform(getkey(), (4, 6)) > 0.5).astype(jnp.float32)
    y = jnp.array([1, -1, 0, -1])
    k = getkey()
    base = vk.training.make_loss()
    got = eqx.filter_jit(model.condition_loss(base))(model, (x, y), k, 0)
    logq = jax.nn.log_softmax(jax.vmap(model.classifier)(x), -1)
    elbo = eqx.filter_jit(lambda m, c: vk.elbo(m.given(jnp.full(4, c)), x, k))
    neg_elbo = jnp.stack([-elbo(model, c) for c in range(3)], 1)  # [B, C]
    bound = neg_elbo + jnp.log(3.0)
    for i in range(4):
        if y[i] >= 0:
            ref = bound[i, y[i]] - 0.7 * logq[i, y[i]]
        else:
            q = jnp.exp(logq[i])
            ref = jnp.sum(q * bound[i]) + jnp.sum(q * logq[i])
        np.testing.assert_allclose(got[i], ref, rtol=1e-5)


def test_m2_learns_a_classifier_from_few_labels(digits):
    x, y = digits
    rng = np.random.default_rng(0)
    partial = np.where(rng.random(len(y)) < 0.3, y, -1)  # 30% labelled
    model = cz.m2(64, num_classes=10, key=jax.random.key(0), hidden=(64,), alpha=5.0)
    opt = vk.default_optimizer(3e-3)
    model, hist = vk.fit(
        model, x[:500], y=partial[:500], key=0, epochs=10, batch_size=50, optimizer=opt, x_val=x[500:], y_val=y[500:]
    )
    acc = cz.accuracy(model, x[500:], y[500:])  # held-out rows
    assert acc > 0.6, acc  # chance: 0.1
    assert len(hist["val_accuracy"]) == 10 and hist["val_accuracy"][-1] == pytest.approx(acc)
    with pytest.raises(ValueError, match="or -1 for an unlabelled"):
        vk.fit(model, x, y=partial - 1, key=0, epochs=1, batch_size=50)


def test_presets_build_and_train(digits):
    x, y = digits
    cvae = vk.presets.build("cvae", (8, 8), key=jax.random.key(0), latent_dim=2, hidden=(16,), num_classes=10)
    assert isinstance(cvae, vk.ConditionalVAE) and cvae.data_shape == (8, 8)  # trained above (cz.cvae)
    model = vk.presets.build("m2", (8, 8), key=jax.random.key(0), latent_dim=2, hidden=(16,), num_classes=10)
    model, hist = vk.fit(model, x[:100].reshape(-1, 8, 8), y=y[:100], key=0, epochs=1, batch_size=50)
    assert np.isfinite(hist["train_loss"]).all()
    assert vk.sample(model, jax.random.key(1), 4, y=jnp.arange(4)).x.shape == (4, 8, 8)

"""vk.fit(verbose=True): a tqdm bar over the epochs (issue 18), also when resumed."""

import jax

import vaekit as vk


def test_verbose_fit_shows_a_tqdm_bar(digits_binary, capsys):
    x = digits_binary[:200]
    k1, k2 = jax.random.split(jax.random.key(0))
    model = vk.VAE(
        prior=vk.StandardNormal(2),
        encoder=vk.Gaussian(vk.MLP(64, 4, hidden=(8,), key=k1)),
        decoder=vk.Bernoulli(vk.MLP(2, 64, hidden=(8,), key=k2)),
    )
    states = []
    _, h = vk.fit(
        model,
        x,
        key=0,
        epochs=2,
        batch_size=50,
        x_val=x[:50],
        verbose=True,
        callback=states.append,
    )
    cap = capsys.readouterr()
    assert cap.out == ""  # the bar is on stderr, stdout stays clean
    last = cap.err.replace("\r", "\n").strip().splitlines()[-1]
    assert last.startswith("fit: 100%") and "2/2" in last
    assert f"train={h['train_loss'][-1]:.3f}" in last and f"val={h['val_loss'][-1]:.3f}" in last
    vk.fit(model, x, key=0, epochs=3, batch_size=50, verbose=True, resume=states[1])  # continues at 2/3
    err = capsys.readouterr().err.replace("\r", "\n")
    assert "3/3" in err and "1/3" not in err

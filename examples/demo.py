"""Train the 2-D-latent VAE on scikit-learn's embedded digits (binarized at 0.5).

Prints the loss of every epoch and the test log-likelihood (5000 importance samples).
"""

import jax
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import vaekit as vk

x = (load_digits().data / 16.0 > 0.5).astype(np.float32)  # [1797, 64]
x_train, x_test = train_test_split(x, test_size=0.2, random_state=0)

k1, k2 = jax.random.split(jax.random.key(0))
model = vk.VAE(
    prior=vk.StandardNormal(2),
    encoder=vk.Gaussian(vk.MLP(64, 2 * 2, hidden=(500,), activation=jax.nn.tanh, key=k1), variance="diag"),
    decoder=vk.Bernoulli(vk.MLP(2, 64, hidden=(500,), activation=jax.nn.tanh, key=k2)),
)
print(f"digits: {len(x_train)} train / {len(x_test)} test examples of 64 binary pixels")
model, history = vk.fit(model, x_train, key=jax.random.key(1), epochs=30, batch_size=50, x_val=x_test, verbose=True)
ll = vk.log_likelihood(model, x_test, jax.random.key(2), n_samples=5000)
elbo = vk.elbo(model, x_test, jax.random.key(3), n_samples=10)
print(f"test ELBO            {float(elbo.mean()):8.3f} nats per example")
print(f"test log-likelihood  {float(ll.mean()):8.3f} nats per example (5000 importance samples)")

"""Matmul throughput at the reference model's shapes (200x784x500, forward/backward pattern) vs a 2048^3 matmul."""

import time

import jax

B, D, H = 200, 784, 500
ks = jax.random.split(jax.random.key(0), 8)
x = jax.random.normal(ks[0], (60, B, D))
W1 = jax.random.normal(ks[1], (D, H))
W4 = jax.random.normal(ks[2], (H, D))


@jax.jit
def f(x, W1, W4):
    def body(c, xb):
        W1, W4 = c
        h = xb @ W1  # fwd enc
        l = h @ W4  # fwd dec (stand-in, same shape)
        dW4 = h.T @ l  # weight grads
        dh = l @ W4.T  # input grad
        dW1 = xb.T @ dh
        return (W1 - 1e-9 * dW1, W4 - 1e-9 * dW4), None

    return jax.lax.scan(body, (W1, W4), x)[0]


flops = 60 * 5 * 2 * B * D * H
f(x, W1, W4)[0].block_until_ready()
best = 1e9
for _ in range(5):
    t = time.perf_counter()
    f(x, W1, W4)[0].block_until_ready()
    best = min(best, time.perf_counter() - t)
a = jax.random.normal(ks[3], (2048, 2048))
g = jax.jit(lambda a: a @ a)
g(a).block_until_ready()
bp = 1e9
for _ in range(5):
    t = time.perf_counter()
    g(a).block_until_ready()
    bp = min(bp, time.perf_counter() - t)
print(
    f"model-shaped matmuls (200x784x500, fwd+bwd pattern, in a scan): {flops / best / 1e9:.1f} GFLOP/s; 2048^3: {2 * 2048**3 / bp / 1e9:.1f} GFLOP/s"
)

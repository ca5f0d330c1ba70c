#!/usr/bin/env python3
"""The peer of `benches/recurrent.rs` in JAX on the CPU: the loss and gradients of
Embedding(21, 16) -> Bidirectional(LSTM(16), LSTM(16)) -> Dense(1) with a binary
cross-entropy of logits, on 64 id sequences padded to 24 steps, with and without the
mask of padded steps (Keras' semantics: a padded step keeps the previous state).

Each LSTM is a `lax.scan` over the steps (what Keras runs on JAX), the whole step one
`jax.jit` of `jax.value_and_grad`. Every call waits for its result; 3 warm-up calls,
then >= 200 calls and >= 3 s; prints the median, p10 and p90 in milliseconds.
JAX is not a dependency of the project: `.tools/venv/bin/python -m pip install "jax[cpu]"`.

Usage: .tools/venv/bin/python benches/peers/jax_lstm.py
"""
import time

import numpy as np

BATCH, STEPS, UNITS, EMBED, VOCAB = 64, 24, 16, 16, 21


def data(seed=7):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(4, STEPS + 1, BATCH)
    ids = np.zeros((BATCH, STEPS), np.int32)
    for b, n in enumerate(lengths):
        ids[b, :n] = rng.integers(1, VOCAB, n)
    labels = rng.integers(0, 2, (BATCH, 1)).astype(np.float32)
    return ids, labels


def params(rng):
    def u(*shape, scale=0.2):
        return rng.uniform(-scale, scale, shape).astype(np.float32)

    lstm = lambda: {"kernel": u(EMBED, 4 * UNITS), "recurrent": u(UNITS, 4 * UNITS), "bias": u(4 * UNITS)}
    return {"embed": u(VOCAB, EMBED), "fwd": lstm(), "bwd": lstm(), "dense": u(2 * UNITS, 1), "dense_b": u(1)}


def main():
    import jax
    import jax.numpy as jnp
    from jax import lax

    def lstm(p, x, mask):
        # x [b, t, f] -> the last output [b, u]; a padded step keeps (h, c).
        projected = jnp.einsum("btf,fg->tbg", x, p["kernel"]) + p["bias"]

        def cell(carry, inputs):
            h, c = carry
            z_x, keep = inputs
            z = z_x + h @ p["recurrent"]
            i, f, g, o = jnp.split(z, 4, axis=-1)
            i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
            c2 = f * c + i * g
            h2 = o * jnp.tanh(c2)
            if keep is not None:
                k = keep[:, None]
                h2, c2 = jnp.where(k, h2, h), jnp.where(k, c2, c)
            return (h2, c2), None

        zeros = jnp.zeros((x.shape[0], UNITS), x.dtype)
        keep = None if mask is None else mask.T
        (h, _), _ = lax.scan(cell, (zeros, zeros), (projected, keep))
        return h

    def loss(p, ids, y, masked):
        x = p["embed"][ids]
        mask = (ids != 0) if masked else None
        ahead = lstm(p["fwd"], x, mask)
        back = lstm(p["bwd"], x[:, ::-1], None if mask is None else mask[:, ::-1])
        logits = jnp.concatenate([ahead, back], -1) @ p["dense"] + p["dense_b"]
        return jnp.mean(jax.nn.relu(logits) - logits * y + jax.nn.softplus(-jnp.abs(logits)))

    ids, y = data()
    p = params(np.random.default_rng(1))
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    for masked in (True, False):
        step = jax.jit(jax.value_and_grad(lambda p, ids, y: loss(p, ids, y, masked)))
        for _ in range(3):
            jax.block_until_ready(step(p, ids, y))
        samples = []
        start = time.perf_counter()
        while len(samples) < 200 or time.perf_counter() - start < 3.0:
            t = time.perf_counter()
            jax.block_until_ready(step(p, ids, y))
            samples.append((time.perf_counter() - t) * 1e3)
        s = np.sort(samples)
        what = "masked" if masked else "unmasked"
        print(f"lstm_train_step/{what} jit: median {np.median(s):.3f} ms, p10 {s[len(s) // 10]:.3f}, "
              f"p90 {s[9 * len(s) // 10]:.3f} ({len(s)} calls)")


if __name__ == "__main__":
    main()

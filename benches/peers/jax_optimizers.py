#!/usr/bin/env python3
"""The peer of `benches/optimizers.rs` in JAX + optax on the CPU: one training step of
a 784->512->10 MLP (relu, sparse softmax cross-entropy of logits, batch 128) with each
optimizer, the whole step (loss, gradients, update) one `jax.jit` with the parameters
and the optimizer state donated; "Adam + L2" adds 1e-4 * sum(w^2) of both kernels to
the loss. Learning rates are tiny, as in the Rust bench (no drift into denormals),
except in "memorised batch": 2,000 Adam steps at 1e-3 on the batch first.

Every call waits for its result; 3 warm-up calls, then >= 200 calls and >= 3 s; prints
the median, p10 and p90 in milliseconds. Not a dependency of the project:
`.tools/venv/bin/python -m pip install "jax[cpu]" optax`.

Usage: .tools/venv/bin/python benches/peers/jax_optimizers.py
"""
import time

import numpy as np


def main():
    import jax
    import jax.numpy as jnp
    import optax

    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 1.0, (128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128).astype(np.int32)

    def init():
        g = lambda fan_in, fan_out: rng.uniform(-1, 1, (fan_in, fan_out)).astype(np.float32) * np.sqrt(
            6.0 / (fan_in + fan_out))
        return {"w1": g(784, 512), "b1": np.zeros(512, np.float32), "w2": g(512, 10), "b2": np.zeros(10, np.float32)}

    def loss(p, x, y, l2):
        h = jax.nn.relu(x @ p["w1"] + p["b1"])
        logits = h @ p["w2"] + p["b2"]
        ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))
        if l2:
            ce = ce + 1e-4 * (jnp.sum(p["w1"] ** 2) + jnp.sum(p["w2"] ** 2))
        return ce

    optimizers = [
        ("SGD", optax.sgd(1e-5), False),
        ("SGD momentum", optax.sgd(1e-5, momentum=0.9), False),
        ("Adam", optax.adam(1e-7), False),
        ("AdamW", optax.adamw(1e-7, weight_decay=0.004), False),
        ("Nadam", optax.nadam(1e-7), False),
        ("Lion", optax.lion(1e-8), False),
        ("RMSprop centered", optax.rmsprop(1e-7, centered=True), False),
        ("Adam + L2", optax.adam(1e-7), True),
        ("Adam + L2 memorised batch", optax.adam(1e-3), True),
    ]
    print(f"jax {jax.__version__}, optax {optax.__version__} on {jax.devices()[0].platform}")
    for name, opt, l2 in optimizers:
        def step(p, s, x, y, opt=opt, l2=l2):
            value, grads = jax.value_and_grad(loss)(p, x, y, l2)
            updates, s = opt.update(grads, s, p)
            return optax.apply_updates(p, updates), s, value

        step = jax.jit(step, donate_argnums=(0, 1))
        p = jax.tree.map(jnp.asarray, init())
        s = opt.init(p)
        # The memorised case first trains 2,000 steps on the batch (as the Rust bench).
        for _ in range(2000 if "memorised" in name else 3):
            p, s, v = step(p, s, x, y)
            jax.block_until_ready(v)
        samples = []
        start = time.perf_counter()
        while len(samples) < 200 or time.perf_counter() - start < 3.0:
            t = time.perf_counter()
            p, s, v = step(p, s, x, y)
            jax.block_until_ready(v)
            samples.append((time.perf_counter() - t) * 1e3)
        q = np.sort(samples)
        print(f"train_step/{name} jit: median {np.median(q):.3f} ms, p10 {q[len(q) // 10]:.3f}, "
              f"p90 {q[9 * len(q) // 10]:.3f} ({len(q)} calls)")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The peer of `benches/convolutions.rs` in JAX on the CPU: the value and gradients
(input and filters) of sum(conv(x) * r) for a 3x3 conv2d (32 -> 32 channels), the 3x3
depthwise conv of 32 channels (`feature_group_count=32`) and a separable conv (the
depthwise one, then a 1x1 conv to 32), on a batch of 32 NHWC images of 32x32, SAME
padding; each one `jax.jit`.

Every call waits for its result; 3 warm-up calls, then >= 20 calls and >= 3 s; prints
the median, p10 and p90 in milliseconds. Not a dependency of the project:
`.tools/venv/bin/python -m pip install "jax[cpu]"`.

Usage: .tools/venv/bin/python benches/peers/jax_convolutions.py
"""
import time

import numpy as np


def main():
    import jax
    import jax.numpy as jnp
    from jax import lax

    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 32, 32, 32)).astype(np.float32)
    r = rng.standard_normal((32, 32, 32, 32)).astype(np.float32)
    dn = ("NHWC", "HWIO", "NHWC")

    def conv(x, w, groups=1, padding="SAME"):
        return lax.conv_general_dilated(x, w, (1, 1), padding, dimension_numbers=dn, feature_group_count=groups)

    cases = [
        ("conv2d 3x3", lambda x, w: conv(x, w[0]), [rng.standard_normal((3, 3, 32, 32))]),
        ("depthwise 3x3", lambda x, w: conv(x, w[0], groups=32), [rng.standard_normal((3, 3, 1, 32))]),
        ("separable 3x3", lambda x, w: conv(conv(x, w[0], groups=32), w[1], padding="VALID"),
         [rng.standard_normal((3, 3, 1, 32)), rng.standard_normal((1, 1, 32, 32))]),
    ]
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    for name, f, w in cases:
        w = [a.astype(np.float32) for a in w]
        step = jax.jit(jax.value_and_grad(lambda x, w, f=f: jnp.sum(f(x, w) * r), argnums=(0, 1)))
        for _ in range(3):
            jax.block_until_ready(step(x, w))
        times = []
        start = time.perf_counter()
        while len(times) < 20 or time.perf_counter() - start < 3.0:
            t = time.perf_counter()
            jax.block_until_ready(step(x, w))
            times.append((time.perf_counter() - t) * 1e3)
        p10, med, p90 = np.percentile(times, [10, 50, 90])
        print(f"{name}: median {med:.2f} ms (p10 {p10:.2f}, p90 {p90:.2f}), {len(times)} calls")


if __name__ == "__main__":
    main()

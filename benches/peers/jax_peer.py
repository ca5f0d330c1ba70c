#!/usr/bin/env python3
"""The WORKLOADS.md workloads in JAX on the CPU: the peer of `bench` (the CPU run).

Prints one JSON object per line in the shape of `examples/bench.rs --json` (framework
"jax", modes "eager" = op-by-op dispatch of `jax.numpy` and "jit" = `jax.jit`; W6 also
"jit_while_loop" = `lax.while_loop`). Timing follows the Rust bench: every call waits for
its result (`block_until_ready`) and is timed with the host clock; 3 warm-up calls;
small workloads >= 200 calls and >= 1 s, large >= 20 calls and >= 1.5 s; median / p10 /
p90 in microseconds; `trace_ms` = the first jitted call (trace + compile + run).

Inputs come from WORKLOADS.md's generator, so checksums match the Rust bench's.
JAX is not a dependency of the project: `.tools/venv/bin/python -m pip install "jax[cpu]"`.

Usage: python3 benches/peers/jax_peer.py [--only W1,W3]
"""
import argparse
import os
import time

import numpy as np

from workloads import emit_row, mlp_input, mlp_params, stats, uniform, wanted


def ready(r):
    import jax

    return jax.block_until_ready(r)


def timed(f, min_calls, min_time):
    for _ in range(3):
        ready(f())
    samples = []
    start = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        ready(f())
        samples.append((time.perf_counter() - t) * 1e6)
    return stats(samples)


def small(f):
    return timed(f, 200, 1.0)


def large(f):
    return timed(f, 20, 1.5)


def first_ms(f):
    t = time.perf_counter()
    r = ready(f())
    return r, (time.perf_counter() - t) * 1e3


def emit(workload, mode, st, trace_ms=None, **extra):
    emit_row("jax", workload, mode, st, trace_ms, extra)


def checksum(t):
    return float(np.asarray(t, dtype=np.float64).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    want = wanted(args.only)

    import jax
    import jax.numpy as jnp
    from jax import lax

    base = {"jax": jax.__version__, "device": str(jax.devices()[0]), "threads": os.cpu_count()}
    put = lambda a: jnp.asarray(np.ascontiguousarray(a))

    def modes(fn):
        yield "eager", fn
        yield "jit", jax.jit(fn)

    if want("W1_dispatch"):
        x = put(uniform(1, [4], -2, 2))
        for mode, f in modes(lambda x: x * 2 + 1):
            r, ms = first_ms(lambda: f(x))
            emit("W1_dispatch", mode, small(lambda: f(x)), None if mode == "eager" else ms, checksum=checksum(r), **base)

    chain = lambda x, y: jnp.tanh(x * y + 0.5) * jax.nn.sigmoid(x - y) + jax.nn.relu(x)
    for wid, n in [("W2_small_chain", 64), ("W3_large_elementwise", 4_000_000)]:
        if not want(wid):
            continue
        x, y = put(uniform(2, [n], -2, 2)), put(uniform(3, [n], -2, 2))
        for mode, f in modes(chain):
            r, ms = first_ms(lambda: f(x, y))
            st = (large if n > 1000 else small)(lambda: f(x, y))
            extra = dict(checksum=checksum(r), **base)
            if n > 1000:
                extra["gbps"] = round(12 * n / (st["median_us"] * 1e3), 2)
            emit(wid, mode, st, None if mode == "eager" else ms, **extra)

    params = mlp_params()
    host_x = mlp_input()
    xall = put(host_x)

    def logits(x, p):
        h = jax.nn.relu(x @ p[0] + p[1])
        h = jax.nn.relu(h @ p[2] + p[3])
        return h @ p[4] + p[5]

    fwd = lambda x, p: jax.nn.softmax(logits(x, p), axis=-1)
    if want("W4_mlp_forward"):
        p = [put(a) for a in params]
        for mode, f in modes(fwd):
            r, ms = first_ms(lambda: f(xall, p))
            emit("W4_mlp_forward", mode, large(lambda: f(xall, p)), None if mode == "eager" else ms,
                 checksum=checksum(r), **base)

    if want("W5_mlp_train_step"):
        y = jax.nn.one_hot(jnp.arange(128) % 10, 10, dtype=jnp.float32)

        def loss_fn(p, x, y):
            return (-(y * jax.nn.log_softmax(logits(x, p), axis=-1)).sum(-1)).mean()

        def step(p, x, y):
            loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
            return [a - 0.01 * g for a, g in zip(p, grads)], loss

        # jit: the parameters are donated (updated in place, as WORKLOADS.md asks).
        for mode, f in [("eager", step), ("jit", jax.jit(step, donate_argnums=0))]:
            state = {"p": [put(a) for a in params]}

            def call():
                state["p"], loss = f(state["p"], xall, y)
                return loss

            loss0, ms = first_ms(call)
            emit("W5_mlp_train_step", mode, large(call), None if mode == "eager" else ms,
                 loss_step0=float(loss0), **base)

    if want("W6_while_loop"):
        x0 = jnp.ones(16, dtype=jnp.float32)

        def host_loop(x):
            while float(x.sum()) < 1000:
                x = x * 1.5 + 1
            return x

        step6 = jax.jit(lambda x: x * 1.5 + 1)

        def jit_body_loop(x):
            while float(x.sum()) < 1000:
                x = step6(x)
            return x

        wl = jax.jit(lambda x: lax.while_loop(lambda x: x.sum() < 1000, lambda x: x * 1.5 + 1, x))
        for mode, f in [("eager", host_loop), ("jit_body", jit_body_loop), ("jit_while_loop", wl)]:
            r, ms = first_ms(lambda: f(x0))
            emit("W6_while_loop", mode, small(lambda: f(x0)), None if mode == "eager" else ms,
                 checksum=checksum(r), **base)

    if want("W7_retrace"):
        p = [put(a) for a in params]
        xs = [put(host_x[:b]) for b in range(1, 11)]
        f = jax.jit(fwd)
        firsts = [first_ms(lambda: f(x, p))[1] for x in xs]
        k = [0]

        def cyc(g):
            def call():
                k[0] = (k[0] + 1) % 10
                return g(xs[k[0]], p)

            return call

        emit("W7_retrace", "jit", small(cyc(f)), sorted(firsts)[4], trace_ms_per_shape=[round(v, 3) for v in firsts],
             trace_ms_total=round(sum(firsts), 3), **base)
        emit("W7_retrace", "eager", small(cyc(fwd)), None, **base)

    if want("W8_reduction"):
        a = put(uniform(31, [4096, 1024], 0, 1))
        for mode, f in modes(lambda a: a.sum(1).mean()):
            r, ms = first_ms(lambda: f(a))
            st = large(lambda: f(a))
            emit("W8_reduction", mode, st, None if mode == "eager" else ms, checksum=float(r),
                 gbps=round((16 << 20) / (st["median_us"] * 1e3), 2), **base)


if __name__ == "__main__":
    main()

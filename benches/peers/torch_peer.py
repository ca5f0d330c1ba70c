#!/usr/bin/env python3
"""The WORKLOADS.md workloads in PyTorch on a GPU: the peer of `bench --device cuda`.

Prints one JSON object per line in the shape of `examples/bench.rs --json`
(framework "pytorch", modes "eager" and "compiled" = torch.compile's default mode,
plus "compiled_cudagraphs" = mode="reduce-overhead" for the overhead-bound workloads).
Timing follows the Rust bench: each call is followed by a device synchronise and timed
with the host clock; 3 warm-up calls; small workloads >= 200 calls and >= 1 s, large
>= 20 calls and >= 1.5 s; median / p10 / p90 in microseconds.

Usage: python3 benches/peers/torch_peer.py [--only W1,W3] [--device cuda]
"""
import argparse
import time

import numpy as np
import torch

from workloads import emit_row, mlp_input, mlp_params, stats, uniform, wanted


def timed(f, min_calls, min_time):
    for _ in range(3):
        f()
        torch.cuda.synchronize()
    samples = []
    start = time.perf_counter()
    while len(samples) < min_calls or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        f()
        torch.cuda.synchronize()
        samples.append((time.perf_counter() - t) * 1e6)
    st = stats(samples)
    # Back-to-back calls, one synchronise per round of 32 (as the Rust bench does).
    rounds = []
    start = time.perf_counter()
    while len(rounds) < 10 or time.perf_counter() - start < 0.3:
        t = time.perf_counter()
        for _ in range(32):
            f()
        torch.cuda.synchronize()
        rounds.append((time.perf_counter() - t) * 1e6 / 32)
    st["pipelined_us"] = sorted(rounds)[len(rounds) // 2]
    return st


def small(f):
    return timed(f, 200, 1.0)


def large(f):
    return timed(f, 20, 1.5)


def first_ms(f):
    torch.cuda.synchronize()
    t = time.perf_counter()
    r = f()
    torch.cuda.synchronize()
    ms = (time.perf_counter() - t) * 1e3
    # A copy: CUDA-graph outputs are overwritten by the next replay.
    return (r.clone() if isinstance(r, torch.Tensor) else r), ms


def emit(workload, mode, st, trace_ms=None, **extra):
    if st is not None:
        st = dict(st)
        extra["pipelined_us"] = round(st.pop("pipelined_us"), 3)
    emit_row("pytorch", workload, mode, st, trace_ms, extra)


def checksum(t):
    return float(t.double().sum().item())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    want = wanted(args.only)
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev)
    base = {"device": name, "torch": torch.__version__}
    put = lambda a: torch.from_numpy(np.ascontiguousarray(a)).to(dev)
    torch._dynamo.config.cache_size_limit = 64

    def modes(fn, overhead_bound):
        yield "eager", fn
        yield "compiled", torch.compile(fn)
        if overhead_bound:
            graphed = torch.compile(fn, mode="reduce-overhead")

            def replay(*a):
                torch.compiler.cudagraph_mark_step_begin()
                return graphed(*a)

            yield "compiled_cudagraphs", replay

    if want("W1_dispatch"):
        x = put(uniform(1, [4], -2, 2))
        for mode, f in modes(lambda x: x * 2 + 1, True):
            r, ms = first_ms(lambda: f(x))
            emit("W1_dispatch", mode, small(lambda: f(x)), None if mode == "eager" else ms,
                 checksum=checksum(r), **base)

    chain = lambda x, y: torch.tanh(x * y + 0.5) * torch.sigmoid(x - y) + torch.relu(x)
    for wid, n in [("W2_small_chain", 64), ("W3_large_elementwise", 4_000_000)]:
        if not want(wid):
            continue
        x, y = put(uniform(2, [n], -2, 2)), put(uniform(3, [n], -2, 2))
        for mode, f in modes(chain, n < 1000):
            r, ms = first_ms(lambda: f(x, y))
            st = (large if n > 1000 else small)(lambda: f(x, y))
            extra = dict(checksum=checksum(r), **base)
            if n > 1000:
                extra["gbps"] = round(12 * n / (st["median_us"] * 1e3), 2)
                extra["gbps_pipelined"] = round(12 * n / (st["pipelined_us"] * 1e3), 2)
            emit(wid, mode, st, None if mode == "eager" else ms, **extra)

    params = mlp_params()
    host_x = mlp_input()
    xall = put(host_x)

    def logits(x, p):
        h = torch.relu(x @ p[0] + p[1])
        h = torch.relu(h @ p[2] + p[3])
        return h @ p[4] + p[5]

    if want("W4_mlp_forward"):
        p = [put(a) for a in params]
        fwd = lambda x, p: torch.softmax(logits(x, p), -1)
        for mode, f in modes(fwd, True):
            r, ms = first_ms(lambda: f(xall, p))
            emit("W4_mlp_forward", mode, large(lambda: f(xall, p)), None if mode == "eager" else ms,
                 checksum=checksum(r), **base)

    if want("W5_mlp_train_step"):
        y = torch.nn.functional.one_hot(torch.arange(128, device=dev) % 10, 10).float()

        def loss_fn(p, x, y):
            return (-(y * torch.log_softmax(logits(x, p), -1)).sum(-1)).mean()

        for mode in ["eager", "compiled"]:
            p = [put(a).requires_grad_() for a in params]
            lf = loss_fn if mode == "eager" else torch.compile(loss_fn)

            def step():
                loss = lf(p, xall, y)
                grads = torch.autograd.grad(loss, p)
                with torch.no_grad():
                    torch._foreach_add_(p, grads, alpha=-0.01)
                return loss

            loss0, ms = first_ms(step)
            emit("W5_mlp_train_step", mode, large(step), None if mode == "eager" else ms,
                 loss_step0=float(loss0.item()), **base)

    if want("W6_while_loop"):
        x0 = torch.ones(16, device=dev)

        def body(x):
            while x.sum().item() < 1000:
                x = x * 1.5 + 1
            return x

        for mode, f in modes(body, False):
            r, ms = first_ms(lambda: f(x0))
            emit("W6_while_loop", mode, small(lambda: f(x0)), None if mode == "eager" else ms,
                 checksum=checksum(r), **base)
        try:
            from torch._higher_order_ops.while_loop import while_loop

            def wl(x):
                return while_loop(lambda x: x.sum() < 1000, lambda x: (x * 1.5 + 1,), (x,))[0]

            f = torch.compile(wl)
            r, ms = first_ms(lambda: f(x0))
            emit("W6_while_loop", "compiled_while_loop", small(lambda: f(x0)), ms,
                 checksum=checksum(r), **base)
        except Exception as e:  # report, do not hide, a variant that does not compile
            emit("W6_while_loop", "compiled_while_loop", None, None, error=str(e)[:200], **base)

    if want("W7_retrace"):
        p = [put(a) for a in params]
        xs = [put(host_x[:b]) for b in range(1, 11)]
        torch._dynamo.reset()
        f = torch.compile(lambda x, p: torch.softmax(logits(x, p), -1))
        firsts = [first_ms(lambda: f(x, p))[1] for x in xs]
        k = [0]

        def cyc(g):
            def call():
                k[0] = (k[0] + 1) % 10
                g(xs[k[0]], p)
            return call

        st = small(cyc(f))
        emit("W7_retrace", "compiled", st, sorted(firsts)[4], trace_ms_per_shape=[round(v, 3) for v in firsts],
             trace_ms_total=round(sum(firsts), 3), **base)
        emit("W7_retrace", "eager", small(cyc(lambda x, p: torch.softmax(logits(x, p), -1))), None, **base)

    if want("W8_reduction"):
        a = put(uniform(31, [4096, 1024], 0, 1))
        for mode, f in modes(lambda a: a.sum(1).mean(), False):
            r, ms = first_ms(lambda: f(a))
            st = large(lambda: f(a))
            emit("W8_reduction", mode, st, None if mode == "eager" else ms, checksum=float(r.item()),
                 gbps=round((16 << 20) / (st["median_us"] * 1e3), 2),
                 gbps_pipelined=round((16 << 20) / (st["pipelined_us"] * 1e3), 2), **base)

    if want("L1_copy_256MB"):
        src = torch.ones(64 << 20, device=dev)
        dst = torch.empty_like(src)
        st = large(lambda: dst.copy_(src))
        emit("L1_copy_256MB", "eager", st, None,
             gbps_read_plus_write=round(8 * (64 << 20) / (st["median_us"] * 1e3), 2), kind="device-to-device", **base)
        st = large(lambda: src * 1.0)
        emit("L1_copy_256MB", "eager_mul1", st, None,
             gbps_read_plus_write=round(8 * (64 << 20) / (st["median_us"] * 1e3), 2), **base)

    if want("L3_sgemm_2048"):
        a, b = put(uniform(41, [2048, 2048], -1, 1)), put(uniform(42, [2048, 2048], -1, 1))
        st = large(lambda: a @ b)
        emit("L3_sgemm_2048", "eager", st, None, gflops=round(2 * 2048 ** 3 / (st["median_us"] * 1e3), 1),
             tf32=torch.backends.cuda.matmul.allow_tf32, **base)


if __name__ == "__main__":
    main()

"""What the peer scripts share: WORKLOADS.md's input generator, the MLP's parameters
and the timing statistics (imported by torch_peer.py and jax_peer.py, beside it)."""
import numpy as np


def uniform(seed, shape, lo, hi):
    """WORKLOADS.md's generator: splitmix64 of (seed << 32) | i, exact."""
    n = int(np.prod(shape))
    with np.errstate(over="ignore"):
        z = (np.uint64(seed) << np.uint64(32)) | np.arange(n, dtype=np.uint64)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float64) / 16777216.0
    v = (np.float64(lo) + (np.float64(hi) - np.float64(lo)) * u).astype(np.float32)
    return v.reshape(shape)


def glorot(seed, fan_in, fan_out):
    a = np.float32(np.sqrt(6.0 / (fan_in + fan_out)))
    return uniform(seed, [fan_in, fan_out], -a, a)


def mlp_params():
    """W4/W5/W7's weights and biases, as the Rust bench makes them."""
    return [glorot(11, 784, 512), uniform(12, [512], -0.1, 0.1), glorot(13, 512, 512),
            uniform(14, [512], -0.1, 0.1), glorot(15, 512, 10), uniform(16, [10], -0.1, 0.1)]


def mlp_input():
    return uniform(21, [128, 784], 0, 1)


def stats(samples):
    s = sorted(samples)
    q = lambda p: s[int(round((len(s) - 1) * p))]
    return {"median_us": q(0.5), "p10_us": q(0.1), "p90_us": q(0.9)}


def emit_row(framework, workload, mode, st, trace_ms, extra):
    """Prints one result as `examples/bench.rs --json` does."""
    import json

    row = {"framework": framework, "workload": workload, "mode": mode}
    if st is not None:
        row.update({k: round(v, 3) for k, v in st.items()})
    if trace_ms is not None:
        row["trace_ms"] = round(trace_ms, 3)
    row["extra"] = extra
    print(json.dumps(row), flush=True)


def wanted(only):
    """The `--only W1,W3` filter: a workload runs when its id starts with a listed prefix."""
    prefixes = [p for p in only.split(",") if p]
    return lambda w: not prefixes or any(w.startswith(p) for p in prefixes)

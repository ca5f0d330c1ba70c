//! Helpers shared by the integration tests.
#![allow(dead_code)]

use tensorjit::prelude::*;

pub mod dags;
pub mod emulated;
pub mod gpu;
pub mod parity;

/// Deterministic pseudo-random values in `[lo, hi)` (splitmix64; a different `seed` for
/// every check).
pub fn rand_vec(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f64> {
    (0..n as u64)
        .map(|i| {
            let mut z = (seed << 32 | i).wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            lo + (hi - lo) * ((z >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

pub fn rand_f32(seed: u64, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rand_vec(seed, n, lo, hi).into_iter().map(|v| v as f32).collect::<Vec<_>>(), shape).unwrap()
}

pub fn rand_f64(seed: u64, shape: &[usize], lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::from_vec(rand_vec(seed, n, lo, hi), shape).unwrap()
}

pub fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

/// A host tensor's elements as devices hold them: little-endian, bools one byte each
/// (exact comparisons of any dtype, NaN payloads included).
pub fn element_bytes(t: &Tensor) -> Vec<u8> {
    match t.dtype() {
        DType::F32 => t.to_vec::<f32>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::F64 => t.to_vec::<f64>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::I32 => t.to_vec::<i32>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::I64 => t.to_vec::<i64>().unwrap().iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::Bool => t.to_vec::<bool>().unwrap().iter().map(|&b| u8::from(b)).collect(),
    }
}

pub fn f64s(t: &Tensor) -> Vec<f64> {
    t.to_vec::<f64>().unwrap()
}

pub fn t32(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(v, shape).unwrap()
}

pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let ok = (x - y).abs() <= tol * (1.0 + x.abs().max(y.abs())) || (x.is_nan() && y.is_nan());
        assert!(ok, "element {i}: {x} vs {y} (tol {tol})");
    }
}

/// Runs `f` and returns its panic message.
pub fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("expected a panic");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// One SGD step (lr 0.1) of a tanh dense layer on the mean squared error; returns the
/// loss. Shared by the eager-vs-traced training tests.
pub fn dense_tanh_sgd_step(w: &Variable, b: &Variable, x: &Tensor, y: &Tensor) -> Tensor {
    let tape = GradientTape::new();
    let pred = (x.matmul(&w.read()) + b).tanh();
    let loss = (&pred - y).square().mean_all();
    let g = tape.gradient(&loss, &[w, b]);
    w.assign_sub(g[0].as_ref().unwrap() * 0.1);
    b.assign_sub(g[1].as_ref().unwrap() * 0.1);
    loss
}

/// Compares `IR text` with `tests/golden/<name>.ir`; `TENSORJIT_BLESS=1` rewrites it.
pub fn golden(name: &str, text: &str) {
    golden_file(&format!("{name}.ir"), text)
}

/// Compares `text` with `tests/golden/<file>`; `TENSORJIT_BLESS=1` rewrites it.
pub fn golden_file(file: &str, text: &str) {
    let name = file;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(file);
    if std::env::var_os("TENSORJIT_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
    }
    let want =
        std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {path:?}; run with TENSORJIT_BLESS=1"));
    assert_eq!(text, want, "IR text of {name} changed; rerun with TENSORJIT_BLESS=1 if intended");
}

/// Runs test `name` of this test binary again in a child process with `envs` set and
/// returns its stdout (for behaviour that depends on process state: env variables,
/// real stdout, global switches).
pub fn child_stdout(name: &str, envs: &[(&str, &str)]) -> String {
    let out = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(envs.iter().copied())
        .output()
        .expect("child test runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The eager kernel of `op` (also one with no method of its own, e.g. a gradient) on
/// `inputs`, wherever they live.
pub fn run_op(op: &tensorjit::ops::Op, inputs: &[&Tensor]) -> Tensor {
    let (dtype, shape) = op.infer(inputs).expect("valid operands");
    let ty = tensorjit::ir::ValueType { dtype, shape };
    tensorjit::trace::backend::run_kernel(op, inputs, &ty).expect("the op runs")
}

/// The fused kernels the planner makes for a traced function.
pub fn kernels_of(cf: &tensorjit::ConcreteFunction) -> Vec<tensorjit_jit::kernel::Kernel> {
    tensorjit_jit::optimized_plan(&cf.graph).ok().flatten().map(|(_, p)| p.kernels).unwrap_or_default()
}

/// `params.gather(idx, axis)` as a GPU computes it: an index outside the axis gathers
/// zeros there (its indices are not read back to be checked), where the CPU refuses it.
/// The reference for the GPU kernels and the emulated device.
pub fn gather_or_zeros(params: &Tensor, idx: &Tensor, axis: usize) -> Tensor {
    use tensorjit::ops::Op;
    let n = params.dims()[axis] as i64;
    let ids = run_op(&Op::Cast(DType::I64), &[idx]).to_vec::<i64>().expect("i64 indices");
    let inside: Vec<bool> = ids.iter().map(|i| (0..n).contains(i)).collect();
    let mut dims = params.dims().to_vec();
    dims.splice(axis..=axis, idx.dims().iter().copied());
    if n == 0 {
        return Tensor::zeros(dims, params.dtype());
    }
    let clamped: Vec<i64> = ids.iter().zip(&inside).map(|(&i, &ok)| if ok { i } else { 0 }).collect();
    let gathered = run_op(&Op::Gather { axis }, &[params, &Tensor::from_vec(clamped, idx.shape().clone()).unwrap()]);
    let mut mask_dims = vec![1; dims.len()];
    mask_dims.splice(axis..axis + idx.rank(), idx.dims().iter().copied());
    let mask = run_op(&Op::BroadcastTo(dims.as_slice().into()), &[&Tensor::from_vec(inside, mask_dims).unwrap()]);
    run_op(&Op::Select, &[&mask, &gathered, &Tensor::zeros(dims, params.dtype())])
}

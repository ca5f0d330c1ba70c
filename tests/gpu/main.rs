//! The CUDA runtime — every GPU check in one test binary (one file to carry to the
//! device machine): this module, eager ops on other dtypes (`typed`), and ops at the
//! edges of the kernels' shapes (`shapes`). On every machine: asking for a GPU that is
//! not there is an `Err` naming the device, never a panic. On a machine with an NVIDIA
//! GPU (the device machine; see BENCHMARKS.md): the PTX kernels give the Cranelift
//! kernels' results — every fusible op, broadcasts, fused workload kernels — and row
//! reductions match f64 sums. Without a GPU those parity tests print that they did not
//! run and return.

#[path = "../common/mod.rs"]
mod common;
mod math;
mod shapes;
mod typed;
#[path = "../../benches/common/mod.rs"]
mod workloads;

use tensorjit::ops::{BinaryOp, UnaryOp};
use tensorjit_jit::codegen::run_on_host;
use tensorjit_jit::cuda::{device_count, Gpu};
use tensorjit_jit::kernel::{Access, Expr, Kernel};
use tensorjit_jit::ptx::RowReduce;

#[test]
fn asking_for_a_missing_gpu_is_an_err_naming_it() {
    let count = device_count();
    let missing = Gpu::open(count).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(missing.starts_with(&format!("cuda:{count}: ")), "{missing}");
    if count == 0 {
        let e = Gpu::open(0).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("cuda:0") && (e.contains("no CUDA driver") || e.contains("no such GPU")), "{e}");
    }
}

fn gpu() -> Option<std::sync::Arc<Gpu>> {
    if device_count() == 0 {
        eprintln!("no CUDA device on this machine: GPU parity checks not run");
        return None;
    }
    Gpu::open(0).ok()
}

fn data(seed: u64, n: usize, lo: f64, hi: f64) -> Vec<f32> {
    common::rand_vec(seed, n, lo, hi).into_iter().map(|x| x as f32).collect()
}

fn check(gpu: &Gpu, what: &str, k: &Kernel, inputs: &[Vec<f32>], rows: usize, cols: usize) {
    let refs: Vec<&[f32]> = inputs.iter().map(|v| v.as_slice()).collect();
    let want = run_on_host(k, &refs, rows, cols).expect("the CPU kernel runs");
    let got = gpu.run_kernel(k, &refs, rows, cols).expect("the GPU kernel runs");
    for (o, (g, w)) in got.iter().zip(&want).enumerate() {
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            let ok =
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-5 * b.abs().max(1e-30);
            assert!(ok, "{what}: output {o} element {i}: GPU {a} vs CPU {b}");
        }
    }
}

#[test]
fn gpu_kernels_match_the_cpu_kernels() {
    let Some(gpu) = gpu() else { return };
    let (rows, cols) = (37, 129);
    let n = rows * cols;
    use UnaryOp::*;
    for (i, u) in [Neg, Abs, Square, Relu, Sqrt, Exp, Log, Tanh, Sigmoid, Softplus].into_iter().enumerate() {
        let k = Kernel {
            inputs: vec![Access::Full],
            exprs: vec![Expr::Input(0), Expr::Unary(u, 0)],
            outputs: vec![1],
            reduce: None,
        };
        let (lo, hi) = if matches!(u, Sqrt | Log) { (0.0, 50.0) } else { (-30.0, 30.0) };
        check(&gpu, u.name(), &k, &[data(i as u64, n, lo, hi)], rows, cols);
    }
    use BinaryOp::*;
    for (i, b) in [Add, Sub, Mul, Div, Maximum, Minimum].into_iter().enumerate() {
        let k = Kernel {
            inputs: vec![Access::Full, Access::Row],
            exprs: vec![Expr::Input(0), Expr::Input(1), Expr::Binary(b, 0, 1)],
            outputs: vec![2],
            reduce: None,
        };
        check(
            &gpu,
            b.name(),
            &k,
            &[data(20 + i as u64, n, -3.0, 3.0), data(40 + i as u64, cols, 0.5, 2.0)],
            rows,
            cols,
        );
    }
    let k = Kernel {
        inputs: vec![Access::Full, Access::Col, Access::Scalar],
        exprs: vec![
            Expr::Input(0),
            Expr::Input(1),
            Expr::Input(2),
            Expr::Cmp(Gt, 0, 1),
            Expr::Binary(Mul, 0, 2),
            Expr::Select(3, 4, 1),
            Expr::Unary(Tanh, 5),
        ],
        outputs: vec![5, 6],
        reduce: None,
    };
    check(&gpu, "where/col/scalar", &k, &[data(60, n, -2.0, 2.0), data(61, rows, -1.0, 1.0), vec![0.75]], rows, cols);
}

#[test]
fn gpu_row_reductions_match_f64_references() {
    let Some(gpu) = gpu() else { return };
    for (rows, cols) in [(1, 1), (3, 1000), (130, 257), (2, 100_000)] {
        let x = data(rows as u64 * 7 + cols as u64, rows * cols, -1.0, 1.0);
        let sums = gpu.row_reduce(RowReduce::Sum, &x, rows, cols).expect("the reduction runs");
        let maxes = gpu.row_reduce(RowReduce::Max, &x, rows, cols).expect("the reduction runs");
        for r in 0..rows {
            let row = &x[r * cols..(r + 1) * cols];
            let want: f64 = row.iter().map(|&v| v as f64).sum();
            let scale: f64 = row.iter().map(|&v| v.abs() as f64).sum::<f64>().max(1.0);
            assert!((sums[r] as f64 - want).abs() <= 1e-5 * scale, "row {r} of {rows}x{cols}: {} vs {want}", sums[r]);
            assert_eq!(maxes[r], row.iter().copied().fold(f32::NEG_INFINITY, f32::max));
        }
        let again = gpu.row_reduce(RowReduce::Sum, &x, rows, cols).expect("the reduction runs");
        assert_eq!(sums, again, "deterministic");
    }
}

#[test]
fn moving_a_tensor_to_a_missing_gpu_is_an_err() {
    tensorjit::init();
    let x = common::rand_f32(70, &[4, 3], -1.0, 1.0);
    let count = tensorjit::cuda_device_count();
    let e = x.to(tensorjit::Device::Cuda(count)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(e.starts_with(&format!("cuda:{count}: ")), "{e}");
    assert!(e.contains("no CUDA driver") || e.contains("no such GPU"), "{e}");
}

/// `cuda:0` after `tensorjit::init()`, or `None` (saying that `what` did not run) on a
/// machine without a GPU.
fn first_gpu(what: &str) -> Option<tensorjit::Device> {
    tensorjit::init();
    if tensorjit::cuda_device_count() == 0 {
        eprintln!("no CUDA device on this machine: {what} not run");
        return None;
    }
    Some(tensorjit::Device::Cuda(0))
}

thread_local! {
    /// Mismatches found so far by `close`: one GPU run reports all of them at once.
    static MISMATCHES: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn mismatch(m: String) {
    eprintln!("MISMATCH {m}");
    MISMATCHES.with(|v| v.borrow_mut().push(m));
}

/// Fails the test if any `close` check failed (after all of them ran).
fn no_mismatches() {
    let found = MISMATCHES.with(|v| std::mem::take(&mut *v.borrow_mut()));
    assert!(found.is_empty(), "{} GPU results differ from the CPU's:\n{}", found.len(), found.join("\n"));
}

/// Elementwise results within 1e-5 of the CPU's (relative), GEMM results within 1e-4.
fn close(what: &str, gpu: &tensorjit::Tensor, cpu: &tensorjit::Tensor, tol: f32) {
    let c = common::f32s(cpu);
    let bound: Vec<f32> = c.iter().map(|b| tol * b.abs()).collect();
    close_within(what, gpu, &c, &bound);
}

/// A sum (a reduction, a GEMM, a convolution) within `tol` of the CPU's relative to the
/// same computation on `|operands|`: sums made in another order differ by the rounding
/// of their terms, not of the (possibly cancelled) result.
fn close_sum(what: &str, gpu: &tensorjit::Tensor, cpu: &tensorjit::Tensor, magnitude: &tensorjit::Tensor, tol: f32) {
    let bound: Vec<f32> = common::f32s(magnitude).iter().map(|m| tol * m).collect();
    close_within(what, gpu, &common::f32s(cpu), &bound);
}

fn close_within(what: &str, gpu: &tensorjit::Tensor, c: &[f32], bound: &[f32]) {
    use tensorjit::Device;
    if gpu.device() != Device::Cuda(0) {
        return mismatch(format!("{what}: the result is on {}, not on cuda:0", gpu.device()));
    }
    let g = common::f32s(&gpu.to(Device::Cpu).expect("copies back"));
    if g.len() != c.len() {
        return mismatch(format!("{what}: {} elements on the GPU, {} on the CPU", g.len(), c.len()));
    }
    for (i, ((a, b), e)) in g.iter().zip(c).zip(bound).enumerate() {
        if !(a.to_bits() == b.to_bits() || (a - b).abs() <= e.max(1e-30)) {
            return mismatch(format!("{what}: element {i}: GPU {a} vs CPU {b} (allowed difference {e:e})"));
        }
    }
}

#[test]
fn eager_gpu_ops_match_the_cpu() {
    use tensorjit::prelude::*;
    let Some(gpu) = first_gpu("eager GPU checks") else { return };
    let x = common::rand_f32(71, &[37, 129], -3.0, 3.0);
    let row = common::rand_f32(72, &[129], 0.5, 2.0);
    let col = common::rand_f32(73, &[37, 1], -1.0, 1.0);
    let (gx, grow, gcol) = (x.to(gpu).unwrap(), row.to(gpu).unwrap(), col.to(gpu).unwrap());
    close("tanh", &gx.tanh(), &x.tanh(), 1e-5);
    close("exp", &gx.exp(), &x.exp(), 1e-5);
    close("sigmoid", &gx.sigmoid(), &x.sigmoid(), 1e-5);
    close("add row", &(&gx + &grow), &(&x + &row), 1e-5);
    close("div col", &(&gx / &gcol), &(&x / &col), 1e-5);
    close("mul scalar", &(&gx * 2.5), &(&x * 2.5), 1e-5);
    close_sum("sum rows", &gx.sum(1, false), &x.sum(1, false), &x.abs().sum(1, false), 1e-5);
    close_sum("mean all", &gx.mean_all(), &x.mean_all(), &x.abs().mean_all(), 1e-5);
    close("max rows", &gx.max(1, true), &x.max(1, true), 1e-5);
    close_sum("sum columns", &gx.sum(0, false), &x.sum(0, false), &x.abs().sum(0, false), 1e-5);
    close_sum("mean columns", &gx.mean(0, true), &x.mean(0, true), &x.abs().mean(0, true), 1e-5);
    close("min columns", &gx.min(0, false), &x.min(0, false), 1e-5);
    close("transpose", &gx.transpose(0, 1), &x.transpose(0, 1), 0.0);
    let t4 = common::rand_f32(77, &[3, 4, 5, 6], -1.0, 1.0);
    close("permute", &t4.to(gpu).unwrap().permute(&[2, 0, 3, 1]), &t4.permute(&[2, 0, 3, 1]), 0.0);
    // Broadcasts no access pattern reads, and reductions over middle axes.
    let (b3, m3) = (common::rand_f32(78, &[3, 1, 6], -1.0, 1.0), common::rand_f32(79, &[3, 5, 6], -1.0, 1.0));
    let (gb3, gm3) = (b3.to(gpu).unwrap(), m3.to(gpu).unwrap());
    close("mul [3,5,6] by [3,1,6]", &(&gm3 * &gb3), &(&m3 * &b3), 1e-5);
    close("broadcast_to", &gb3.broadcast_to([3, 5, 6]), &b3.broadcast_to([3, 5, 6]), 0.0);
    close_sum("sum middle axis", &gm3.sum(1, false), &m3.sum(1, false), &m3.abs().sum(1, false), 1e-5);
    close("max over axes 0 and 2", &gm3.max([0i64, 2], true), &m3.max([0i64, 2], true), 0.0);
    close_sum(
        "mean middle axes",
        &t4.to(gpu).unwrap().mean([1i64, 2], false),
        &t4.mean([1i64, 2], false),
        &t4.abs().mean([1i64, 2], false),
        1e-5,
    );
    let w = common::rand_f32(74, &[129, 65], -1.0, 1.0);
    let gw = w.to(gpu).unwrap();
    close_sum("matmul", &gx.matmul(&gw), &x.matmul(&w), &x.abs().matmul(&w.abs()), 1e-4);
    let xa = x.abs();
    close_sum(
        "matmul_t",
        &gx.matmul_t(&gx, false, true),
        &x.matmul_t(&x, false, true),
        &xa.matmul_t(&xa, false, true),
        1e-4,
    );
    let b = common::rand_f32(75, &[3, 5, 7], -1.0, 1.0);
    let c = common::rand_f32(76, &[3, 7, 4], -1.0, 1.0);
    close_sum(
        "batched matmul",
        &b.to(gpu).unwrap().matmul(&c.to(gpu).unwrap()),
        &b.matmul(&c),
        &b.abs().matmul(&c.abs()),
        1e-4,
    );
    close("zeros_like", &Tensor::zeros_like(&gx), &Tensor::zeros_like(&x), 0.0);
    // conv2d: im2col on the GPU + cuBLAS, padded and strided, against the CPU.
    for (seed, xs, fs, st, pad) in [
        (0, [2, 9, 7, 3], [3, 3, 3, 5], [1, 1], Padding::Same),
        (1, [3, 8, 8, 2], [2, 3, 2, 4], [2, 2], Padding::Same),
        (2, [1, 10, 6, 4], [4, 2, 4, 3], [3, 2], Padding::Valid),
    ] {
        let img = common::rand_f32(90 + seed, &xs, -1.0, 1.0);
        let filt = common::rand_f32(95 + seed, &fs, -1.0, 1.0);
        let on_gpu = img.to(gpu).unwrap().conv2d(&filt.to(gpu).unwrap(), st, pad);
        let cpu = img.conv2d(&filt, st, pad);
        let magnitude = img.abs().conv2d(&filt.abs(), st, pad);
        close_sum(&format!("conv2d {xs:?} * {fs:?} {st:?} {pad:?}"), &on_gpu, &cpu, &magnitude, 1e-4);
        // Its gradients: GEMM + col2im for the input, im2col + GEMM for the filter.
        let dy = common::rand_f32(98 + seed, cpu.dims(), -1.0, 1.0);
        let params = tensorjit::ops::Conv2dParams { strides: st, padding: pad };
        let dx = tensorjit::ops::Op::Conv2dBackpropInput { params, input: img.shape().clone() };
        let (gdy, gimg, gfilt) = (dy.to(gpu).unwrap(), img.to(gpu).unwrap(), filt.to(gpu).unwrap());
        close_sum(
            "conv2d input gradient",
            &common::run_op(&dx, &[&gdy, &gfilt]),
            &common::run_op(&dx, &[&dy, &filt]),
            &common::run_op(&dx, &[&dy.abs(), &filt.abs()]),
            1e-4,
        );
        let dw = tensorjit::ops::Op::Conv2dBackpropFilter { params, filter: filt.shape().clone() };
        close_sum(
            "conv2d filter gradient",
            &common::run_op(&dw, &[&gimg, &gdy]),
            &common::run_op(&dw, &[&img, &dy]),
            &common::run_op(&dw, &[&img.abs(), &dy.abs()]),
            1e-4,
        );
        // Max pooling and its gradient: exact (no arithmetic but the gradient's sums,
        // made in the CPU's order).
        let pooled = img.max_pool2d([2, 2], [2, 2], pad);
        close("max_pool2d", &gimg.max_pool2d([2, 2], [2, 2], pad), &pooled, 0.0);
        let dp = common::rand_f32(110 + seed, pooled.dims(), -1.0, 1.0);
        let grad = tensorjit::ops::Op::MaxPool2dGrad(tensorjit::ops::PoolParams {
            ksize: [2, 2],
            strides: [2, 2],
            padding: pad,
        });
        close(
            "max_pool2d gradient",
            &common::run_op(&grad, &[&gimg, &dp.to(gpu).unwrap()]),
            &common::run_op(&grad, &[&img, &dp]),
            0.0,
        );
        // Average pooling (3×3 windows, stride 2) and its gradient: the CPU's order.
        let avg = img.avg_pool2d([3, 3], [2, 2], pad);
        close("avg_pool2d", &gimg.avg_pool2d([3, 3], [2, 2], pad), &avg, 0.0);
        let da = common::rand_f32(120 + seed, avg.dims(), -1.0, 1.0);
        let params = tensorjit::ops::PoolParams { ksize: [3, 3], strides: [2, 2], padding: pad };
        let grad = tensorjit::ops::Op::AvgPool2dGrad { params, input: img.shape().clone() };
        close(
            "avg_pool2d gradient",
            &common::run_op(&grad, &[&da.to(gpu).unwrap()]),
            &common::run_op(&grad, &[&da]),
            0.0,
        );
    }
    no_mismatches();
}

#[test]
fn traced_functions_run_on_the_gpu() {
    use tensorjit::prelude::*;
    let Some(gpu) = first_gpu("traced GPU checks") else { return };
    let f = tensorjit::function("mlp", |(x, w, b): (Tensor, Tensor, Tensor)| (x.matmul(&w) + &b).relu().mean_all());
    let x = common::rand_f32(77, &[64, 32], -1.0, 1.0);
    let w = common::rand_f32(78, &[32, 16], -1.0, 1.0);
    let b = common::rand_f32(79, &[16], -1.0, 1.0);
    let cpu = f.call((x.clone(), w.clone(), b.clone()));
    let args = (x.to(gpu).unwrap(), w.to(gpu).unwrap(), b.to(gpu).unwrap());
    let traced = f.call(args.clone());
    let eager = (args.0.matmul(&args.1) + &args.2).relu().mean_all();
    let magnitude = (x.abs().matmul(&w.abs()) + b.abs()).mean_all();
    close_sum("traced vs CPU", &traced, &cpu, &magnitude, 1e-4);
    no_mismatches();
    assert_eq!(
        common::f32s(&traced.to(Device::Cpu).unwrap()),
        common::f32s(&eager.to(Device::Cpu).unwrap()),
        "GPU traced and GPU eager agree bit for bit"
    );
    let cf = f.concrete_functions();
    let on_gpu = cf.iter().find(|c| c.device() == gpu).expect("a trace for cuda:0");
    assert_eq!(on_gpu.backend(), "ptx", "the fused plan's kernels run as PTX");
}

/// W4 and W5 of WORKLOADS.md on the GPU: the traced fused plan (PTX kernels, the
/// softmax's row sum written out and reduced by the eager reduction) against the same
/// code run eagerly on the GPU, bit for bit, and against the CPU within 1e-4.
#[test]
fn workloads_traced_on_the_gpu_match_eager_gpu_bit_for_bit() {
    use tensorjit::prelude::*;
    let Some(gpu) = first_gpu("traced GPU workload checks") else { return };
    let to_gpu = |ts: &[Tensor]| -> Vec<Tensor> { ts.iter().map(|t| t.to(gpu).unwrap()).collect() };
    let w4 = tensorjit::function("w4", |(x, p): (Tensor, Vec<Tensor>)| workloads::mlp_logits(&x, &p).softmax(-1));
    let (x, params) = (common::rand_f32(80, &[128, 784], 0.0, 1.0), workloads::mlp_params());
    let (gx, gp) = (x.to(gpu).unwrap(), to_gpu(&params));
    let traced = w4.call((gx.clone(), gp.clone()));
    let eager = workloads::mlp_logits(&gx, &gp).softmax(-1);
    assert_eq!(common::f32s(&traced.to(Device::Cpu).unwrap()), common::f32s(&eager.to(Device::Cpu).unwrap()));
    close("W4 traced on GPU vs CPU", &traced, &w4.call((x, params)), 1e-4);
    no_mismatches();
    // Later calls replay the function as one CUDA graph: fresh inputs every call, the
    // eager bits every call, and earlier results untouched by later replays.
    let mut kept = Vec::new();
    for seed in 0..4 {
        let x = common::rand_f32(90 + seed, &[128, 784], 0.0, 1.0).to(gpu).unwrap();
        let traced = w4.call((x.clone(), gp.clone()));
        let eager = workloads::mlp_logits(&x, &gp).softmax(-1);
        let want = common::f32s(&eager.to(Device::Cpu).unwrap());
        assert_eq!(common::f32s(&traced.to(Device::Cpu).unwrap()), want, "W4 call {}", seed + 2);
        kept.push((traced, want));
    }
    for (i, (t, want)) in kept.iter().enumerate() {
        assert_eq!(&common::f32s(&t.to(Device::Cpu).unwrap()), want, "result {i} kept its values");
    }
    let text = w4.concrete_functions().iter().find(|c| c.device() == gpu).unwrap().compiled_text();
    assert!(text.contains("CUDA graph: replayed"), "{text}");

    let (traced_vars, eager_vars) = (workloads::mlp_variables(&gp), workloads::mlp_variables(&gp));
    let tv = traced_vars.clone();
    let step = tensorjit::function("w5", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&tv, &x, &y));
    let y = workloads::labels().to(gpu).unwrap();
    for seed in 0..5 {
        let x = common::rand_f32(81 + seed, &[128, 784], 0.0, 1.0).to(gpu).unwrap();
        let a = step.call((x.clone(), y.clone()));
        let b = workloads::mlp_train_step(&eager_vars, &x, &y);
        assert_eq!(common::f32s(&a.to(Device::Cpu).unwrap()), common::f32s(&b.to(Device::Cpu).unwrap()), "step {seed}");
        for (t, e) in traced_vars.iter().zip(&eager_vars) {
            assert_eq!(t.read().device(), gpu);
            let (t, e) = (t.read().to(Device::Cpu).unwrap(), e.read().to(Device::Cpu).unwrap());
            assert_eq!(common::f32s(&t), common::f32s(&e), "parameters after step {seed}");
        }
    }
    assert_eq!(step.concrete_functions()[0].backend(), "ptx");
    let text = step.concrete_functions()[0].compiled_text();
    assert!(text.contains("CUDA graph: replayed"), "the train step replays as a CUDA graph:\n{text}");
    for (t, e) in traced_vars.iter().zip(&eager_vars) {
        let (t, e) = (t.read().to(Device::Cpu).unwrap(), e.read().to(Device::Cpu).unwrap());
        assert_eq!(common::f32s(&t), common::f32s(&e), "parameters after 3 steps");
    }
}

/// ‖gpu − cpu‖ / ‖cpu‖ over all elements (f64).
fn relative_error(gpu: &[f32], cpu: &[f32]) -> f64 {
    let (mut d, mut n) = (0.0f64, 0.0f64);
    for (&g, &c) in gpu.iter().zip(cpu) {
        d += (g as f64 - c as f64).powi(2);
        n += (c as f64).powi(2);
    }
    if n == 0.0 {
        d.sqrt()
    } else {
        (d / n).sqrt()
    }
}

/// The parity suite on a GPU: every op family of tests/common/parity.rs and its gradient,
/// GPU-traced against GPU-eager bit for bit, and GPU against CPU within 1e-5 (elementwise
/// cases) or 1e-4 (cases with sums, GEMMs or convolutions), norm-wise.
#[test]
fn parity_suite_on_the_gpu() {
    use common::parity::{bits, cases, gradients};
    use tensorjit::prelude::*;
    let Some(gpu) = first_gpu("the GPU parity suite") else { return };
    let elementwise = [
        "neg abs sign",
        "exp log sqrt rsqrt",
        "square tanh sigmoid relu",
        "softplus sin cos erf floor ceil",
        "binary broadcast",
        "pow max min",
        "compare where",
        "cast floordiv",
    ];
    let mut checked = 0;
    for (name, f, inputs) in cases() {
        let on_gpu: Vec<Tensor> = inputs.iter().map(|t| t.to(gpu).unwrap()).collect();
        let cpu = f(&inputs);
        let eager = f(&on_gpu);
        let g = tensorjit::function(name, move |xs: Vec<Tensor>| f(&xs));
        let traced = g.call(on_gpu.clone());
        let (e, t) = (eager.to(Device::Cpu).unwrap(), traced.to(Device::Cpu).unwrap());
        if bits(&t) != bits(&e) || t.dims() != e.dims() {
            mismatch(format!("{name}: GPU traced differs from GPU eager"));
        }
        if eager.device() != gpu || traced.device() != gpu {
            mismatch(format!("{name}: results on {} / {}, not on the GPU", eager.device(), traced.device()));
        }
        if cpu.dtype() == DType::F32 {
            let err = relative_error(&common::f32s(&e), &common::f32s(&cpu));
            let tol = if elementwise.contains(&name) { 1e-5 } else { 1e-4 };
            eprintln!("{name}: GPU vs CPU relative error {err:.2e} (allowed {tol:e})");
            if err.is_nan() || err > tol {
                mismatch(format!("{name}: GPU vs CPU relative error {err:e} > {tol:e}"));
            }
        } else if bits(&e) != bits(&cpu) {
            mismatch(format!("{name}: {} result differs from the CPU's", cpu.dtype()));
        }
        // The gradient of the case, eager and traced on the GPU.
        let grads = gradients(f, &inputs);
        let eager = grads(&on_gpu);
        let traced = tensorjit::function(name, move |xs: Vec<Tensor>| grads(&xs)).call(on_gpu);
        for (k, (e, t)) in eager.iter().zip(&traced).enumerate() {
            if bits(&t.to(Device::Cpu).unwrap()) != bits(&e.to(Device::Cpu).unwrap()) {
                mismatch(format!("gradient {k} of {name}: GPU traced differs from GPU eager"));
            }
        }
        checked += 1;
    }
    assert!(checked >= 15, "{checked} cases");
    no_mismatches();
}

/// CUDA-graph replay from several threads at once, beside eager GPU work: every thread
/// gets its own results (a capture holds the other threads' device work back), and a
/// function with a loop is never captured.
#[test]
fn graph_replays_from_many_threads_give_the_eager_bits() {
    use tensorjit::prelude::*;
    let Some(gpu) = first_gpu("CUDA-graph checks") else { return };
    // Two layers: matmuls, fused kernels and a reduction, enough steps to be replayed.
    fn net(x: &Tensor, w: &Tensor, v: &Tensor) -> Tensor {
        let h = (x.matmul(w) * 0.5).relu();
        (h.matmul(v).tanh() + workloads::chain(x, x)).sum(1, false) * 0.5
    }
    let f = tensorjit::function("net", |(x, w, v): (Tensor, Tensor, Tensor)| net(&x, &w, &v));
    let w = common::rand_f32(198, &[300, 300], -0.1, 0.1).to(gpu).unwrap();
    let v = common::rand_f32(199, &[300, 300], -0.1, 0.1).to(gpu).unwrap();
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (f, w, v) = (f.clone(), w.clone(), v.clone());
            s.spawn(move || {
                for i in 0..6u64 {
                    let x = common::rand_f32(200 + 10 * t + i, &[64, 300], -2.0, 2.0).to(gpu).unwrap();
                    let eager = net(&x, &w, &v);
                    let traced = f.call((x, w.clone(), v.clone()));
                    assert_eq!(
                        common::f32s(&traced.to(Device::Cpu).unwrap()),
                        common::f32s(&eager.to(Device::Cpu).unwrap()),
                        "thread {t} call {i}"
                    );
                }
            });
        }
    });
    let text = f.concrete_functions()[0].compiled_text();
    assert!(text.contains("CUDA graph: replayed"), "{text}");
    // W6's loop runs as one launch (a single device step: not captured).
    for _ in 0..3 {
        let x = grow(&Tensor::ones([16], DType::F32).to(gpu).unwrap());
        assert_eq!(common::f32s(&x.to(Device::Cpu).unwrap()), vec![74.88672; 16], "W6");
    }
    let text = grow::function().concrete_functions()[0].compiled_text();
    assert!(text.contains("1 while loop(s) run on the device"), "{text}");
    assert!(text.contains("CUDA graph: off (1 device step(s)"), "{text}");
    // A loop with a matmul in its body reads its condition on the host.
    let w = common::rand_f32(197, &[16, 16], -0.2, 0.2).to(gpu).unwrap();
    let mm = tensorjit::function("mm_loop", move |x: Tensor| {
        while_loop(|x: &Tensor| x.sum_all().lt(1000.0), |x| x.matmul(&w).abs() + &x + 1.0, x)
    });
    for _ in 0..3 {
        mm.call(Tensor::ones([4, 16], DType::F32).to(gpu).unwrap());
    }
    let text = mm.concrete_functions()[0].compiled_text();
    assert!(text.contains("CUDA graph: off (control flow"), "{text}");
    // A one-kernel function runs its kernel directly (a graph would add two copies).
    let one = tensorjit::function("one_kernel", |x: Tensor| (&x * 2.0 + 1.0).tanh());
    for _ in 0..3 {
        one.call(Tensor::ones([8], DType::F32).to(gpu).unwrap());
    }
    let text = one.concrete_functions()[0].compiled_text();
    assert!(text.contains("CUDA graph: off (1 device step(s)"), "{text}");
}

/// `while` loops traced on a GPU run as one launch (`ptx::render_loop`): the traced
/// results are the eager GPU loop's bits — its sums in the GPU's order, reductions
/// feeding the next trip, a trip limit, variables swapped.
#[test]
fn while_loops_traced_on_the_gpu_give_the_eager_gpu_bits() {
    use tensorjit::prelude::*;
    let Some(gpu) = first_gpu("GPU while loops") else { return };
    fn feed(x: &Tensor, w: &Tensor, cap: Option<u64>) -> (Tensor, Tensor) {
        let bound = w.abs().sum_all() * 3.0;
        let opts = WhileOptions { maximum_iterations: cap, ..Default::default() };
        let step = |(x, n): (Tensor, Tensor)| (&x * 0.5 + x.mean_all() * 0.25 + w.abs(), n + 1.0);
        let start = (x.clone(), Tensor::scalar(0.0f32).to(x.device()).unwrap());
        while_loop_with(|(x, _): &(Tensor, Tensor)| x.sum_all().lt(&bound), step, start, &opts)
    }
    for (seed, n, cap) in [(10u64, 300usize, None), (11, 2000, Some(3)), (12, 77, None)] {
        let x = common::rand_f32(seed, &[n], -1.0, 1.0).to(gpu).unwrap();
        let w = common::rand_f32(seed + 100, &[n], -1.0, 1.0).to(gpu).unwrap();
        let f = tensorjit::function("feed", move |(x, w): (Tensor, Tensor)| feed(&x, &w, cap));
        let (tx, tn) = f.call((x.clone(), w.clone()));
        let (ex, en) = feed(&x, &w, cap);
        let host = |t: &Tensor| common::f32s(&t.to(Device::Cpu).unwrap());
        assert_eq!(host(&tx), host(&ex), "x (n = {n}, cap {cap:?})");
        assert_eq!(host(&tn), host(&en), "trips (n = {n}, cap {cap:?})");
        let text = f.concrete_functions()[0].compiled_text();
        assert!(text.contains("1 while loop(s) run on the device"), "{text}");
    }
    // A kernel ending in a row mean inside the body.
    let rows = |x: &Tensor| {
        let step = |x: Tensor| &x * 0.9 + (&x * &x).mean([-1i64], true) * 0.05 + 0.5;
        while_loop(|x: &Tensor| x.sum_all().lt(900.0), step, x.clone())
    };
    let f = tensorjit::function("rows", move |x: Tensor| rows(&x));
    let x = common::rand_f32(30, &[8, 50], -1.0, 1.0).to(gpu).unwrap();
    let host = |t: &Tensor| common::f32s(&t.to(Device::Cpu).unwrap());
    assert_eq!(host(&f.call(x.clone())), host(&rows(&x)), "a loop with a row mean");
    let text = f.concrete_functions()[0].compiled_text();
    assert!(text.contains("1 while loop(s) run on the device"), "{text}");
}

/// A tensor-conditioned loop (AutoGraph: one `while` node; on a GPU, one launch).
#[tensorjit::tf_function]
fn grow(x: &tensorjit::Tensor) -> tensorjit::Tensor {
    let mut x = x.clone();
    while x.sum_all().lt(1000.0) {
        x = &x * 1.5 + 1.0;
    }
    x
}

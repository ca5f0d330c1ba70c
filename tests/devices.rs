//! Tensors on devices, on every machine: placement rules, copies between host and
//! device, eager ops, gradients and traced functions on a device — run against a
//! host-emulated device backend installed as `Device::Cuda`, which counts the ops it is
//! handed and computes them with the CPU kernels (so results must equal the CPU's bit
//! for bit). The real CUDA backend's checks are in `tests/gpu.rs`.
//!
//! This binary installs its backend before anything else can install the real one
//! (every test calls `emulated()` first), so it must stay alone in its test binary.

mod common;
#[path = "../benches/common/mod.rs"]
mod workloads;

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::{f32s, rand_f32};
use tensorjit::buffer::Buffer;
use tensorjit::device::{install_cuda_backend, DeviceBackend, DeviceMemory};
use tensorjit::ir::ValueType;
use tensorjit::ops::Op;
use tensorjit::prelude::*;
use tensorjit::trace::backend::run_kernel;
use tensorjit::OpError;

thread_local! {
    /// Copies to and from the device made by this thread (each a synchronising round
    /// trip on a real GPU).
    static UPLOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    static DOWNLOADS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// This thread's (uploads, downloads) so far.
fn copies() -> (usize, usize) {
    (UPLOADS.with(std::cell::Cell::get), DOWNLOADS.with(std::cell::Cell::get))
}

#[derive(Debug)]
struct HostMemory {
    device: Device,
    buf: Buffer,
}

impl DeviceMemory for HostMemory {
    fn device(&self) -> Device {
        self.device
    }
    fn dtype(&self) -> DType {
        self.buf.dtype()
    }
    fn len(&self) -> usize {
        self.buf.len()
    }
    fn to_host(&self) -> Result<Buffer, Error> {
        DOWNLOADS.with(|n| n.set(n.get() + 1));
        Ok(self.buf.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A device whose memory is host memory; it records the name of every op it runs.
#[derive(Default)]
struct Emulated {
    ops: Mutex<Vec<&'static str>>,
    uploads: AtomicUsize,
    /// The values of one-element f32 uploads, in order.
    scalars: Mutex<Vec<f32>>,
}

fn host_tensor(buf: Buffer, shape: &Shape) -> Tensor {
    match buf {
        Buffer::F32(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::F64(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::I32(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::I64(v) => Tensor::from_vec(v, shape.clone()),
        Buffer::Bool(v) => Tensor::from_vec(v, shape.clone()),
    }
    .expect("the emulated device holds whole tensors")
}

fn host_buffer(t: &Tensor) -> Buffer {
    match t.dtype() {
        DType::F32 => Buffer::F32(t.to_vec().unwrap()),
        DType::F64 => Buffer::F64(t.to_vec().unwrap()),
        DType::I32 => Buffer::I32(t.to_vec().unwrap()),
        DType::I64 => Buffer::I64(t.to_vec().unwrap()),
        DType::Bool => Buffer::Bool(t.to_vec().unwrap()),
    }
}

impl DeviceBackend for Emulated {
    fn upload(&self, device: Device, buf: &Buffer) -> Result<Arc<dyn DeviceMemory>, Error> {
        if device != Device::Cuda(0) {
            return Err(Error::Device { device: device.to_string(), message: "no such device".into() });
        }
        self.uploads.fetch_add(1, Ordering::Relaxed);
        UPLOADS.with(|n| n.set(n.get() + 1));
        if let Buffer::F32(v) = buf {
            if v.len() == 1 {
                self.scalars.lock().unwrap().push(v[0]);
            }
        }
        Ok(Arc::new(HostMemory { device, buf: buf.clone() }))
    }

    fn run(&self, device: Device, op: &Op, x: &[&Tensor], dtype: DType, shape: &Shape) -> Result<Tensor, OpError> {
        self.ops.lock().unwrap().push(op.name());
        let mut host = Vec::new();
        for t in x {
            assert_eq!(t.device(), device, "{}: every operand reaches the backend on its device", op.name());
            let m = t.device_memory().expect("a device operand");
            let m = m.as_any().downcast_ref::<HostMemory>().expect("memory of this backend");
            host.push(host_tensor(m.buf.clone(), t.shape()));
        }
        let refs: Vec<&Tensor> = host.iter().collect();
        let out = run_kernel(op, &refs, &ValueType { dtype, shape: shape.clone() })
            .map_err(|e| OpError::new(op.name(), e.to_string()))?;
        assert_eq!(out.device(), Device::Cpu);
        let memory = Arc::new(HostMemory { device, buf: host_buffer(&out) });
        Ok(Tensor::from_device_memory(memory, shape.clone()).unwrap())
    }

    fn synchronize(&self, _: Device) -> Result<(), Error> {
        Ok(())
    }
}

static EMULATED: std::sync::OnceLock<Arc<Emulated>> = std::sync::OnceLock::new();

/// The emulated device, installed as the CUDA backend on first use.
fn emulated() -> Arc<Emulated> {
    EMULATED
        .get_or_init(|| {
            let b = Arc::new(Emulated::default());
            assert!(install_cuda_backend(b.clone()), "the emulated backend must be installed before the real one");
            b
        })
        .clone()
}

fn ran_on_device(e: &Emulated, op: &str) -> bool {
    e.ops.lock().unwrap().contains(&op)
}

const GPU: Device = Device::Cuda(0);

/// Held by the tests that depend on the global random state (`set_seed`, the unseeded
/// sequence, seeded draws keyed by the global seed): this binary's tests run in
/// parallel, and one test's `set_seed` would change another's draws.
fn random_state() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

#[test]
fn tensors_move_between_host_and_device() {
    let e = emulated();
    let x = rand_f32(1, &[3, 5], -2.0, 2.0);
    let before = e.uploads.load(Ordering::Relaxed);
    let g = x.to(GPU).unwrap();
    assert_eq!(e.uploads.load(Ordering::Relaxed), before + 1);
    assert_eq!((g.device(), g.dtype(), g.dims()), (GPU, DType::F32, &[3usize, 5][..]));
    assert!(g.to(GPU).is_ok(), "moving to its own device is a cheap clone");
    let err = g.to_vec::<f32>().unwrap_err().to_string();
    assert_eq!(err, "tensor f32[3,5] lives on cuda:0: copy it to the host first with `.to(Device::Cpu)`");
    let back = g.to(Device::Cpu).unwrap();
    assert_eq!(back.device(), Device::Cpu);
    assert_eq!(f32s(&back), f32s(&x));
    let i = Tensor::from_vec(vec![4i64, -7, 9], [3]).unwrap().to(GPU).unwrap();
    assert_eq!(i.to(Device::Cpu).unwrap().to_vec::<i64>().unwrap(), vec![4, -7, 9]);
    assert!(g.to_string().ends_with("shape=[3,5], dtype=f32, device=cuda:0)"), "{g}");
    let missing = x.to(Device::Cuda(3)).unwrap_err().to_string();
    assert_eq!(missing, "cuda:3: no such device");
}

#[test]
fn eager_ops_on_device_tensors_run_on_the_device_with_the_cpus_results() {
    let e = emulated();
    let (a, b) = (rand_f32(2, &[4, 6], -3.0, 3.0), rand_f32(3, &[6], -3.0, 3.0));
    let w = rand_f32(4, &[6, 5], -1.0, 1.0);
    let cpu = ((&a + &b).tanh() * 2.0).matmul(&w).reshape([5, 4]).sum(1, false);
    let (ga, gb, gw) = (a.to(GPU).unwrap(), b.to(GPU).unwrap(), w.to(GPU).unwrap());
    let gpu = ((&ga + &gb).tanh() * 2.0).matmul(&gw).reshape([5, 4]).sum(1, false);
    assert_eq!(gpu.device(), GPU);
    assert_eq!(f32s(&gpu.to(Device::Cpu).unwrap()), f32s(&cpu));
    for op in ["add", "tanh", "mul", "matmul", "reduce_sum"] {
        assert!(ran_on_device(&e, op), "{op} ran on the device");
    }
    assert!(!ran_on_device(&e, "reshape"), "a reshape of a device tensor shares its buffer");
    // A Rust scalar is copied to the device once, not once per op that reads it.
    let mut y = ga.clone();
    for _ in 0..5 {
        y = &y * 1.03125f32;
    }
    assert_eq!(f32s(&y.to(Device::Cpu).unwrap()), f32s(&(0..5).fold(a.clone(), |t, _| &t * 1.03125f32)));
    let copies = e.scalars.lock().unwrap().iter().filter(|v| **v == 1.03125).count();
    assert_eq!(copies, 1, "1.03125 was uploaded once for five multiplications");
    // Comparisons and casts stay on the device too.
    let mask = ga.gt(0.5);
    assert_eq!(mask.device(), GPU);
    assert_eq!(mask.to(Device::Cpu).unwrap().to_vec::<bool>().unwrap(), a.gt(0.5).to_vec::<bool>().unwrap());
    // Indices on a device are not copied back to be checked: an out-of-range one gathers
    // zeros there (host indices are refused by name, see tests/shape_ops.rs).
    let idx = Tensor::from_vec(vec![5i64, -1, 0, 9], [4]).unwrap();
    let gathered = ga.gather(&idx.to(GPU).unwrap(), 1);
    assert_eq!(gathered.device(), GPU);
    let want = common::run_op(&Op::Gather { axis: 1 }, &[&a, &idx]);
    assert_eq!(f32s(&gathered.to(Device::Cpu).unwrap()), f32s(&want));
    assert!(f32s(&want)[1] == 0.0 && f32s(&want)[3] == 0.0, "out-of-range indices gather zeros");
}

#[test]
fn operands_on_two_devices_are_refused_naming_both_and_the_caller() {
    emulated();
    let a = rand_f32(5, &[2, 3], -1.0, 1.0);
    let g = a.to(GPU).unwrap();
    let line = line!() + 1;
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| &g + &a));
    let msg = r.err().and_then(|p| p.downcast_ref::<String>().cloned()).unwrap_or_default();
    assert!(msg.contains("add: operands on two devices, cuda:0 and cpu"), "{msg}");
    assert!(msg.contains("(operands: f32[2,3], f32[2,3])"), "{msg}");
    assert!(msg.contains(&format!("tests/devices.rs:{line}")), "{msg}");
    // A rank-0 CPU tensor (a Rust scalar) joins an op on any device.
    let s = Tensor::scalar(1.5f32);
    let y = &g * &s;
    assert_eq!(y.device(), GPU);
    assert_eq!(f32s(&y.to(Device::Cpu).unwrap()), f32s(&(&a * 1.5)));
}

#[test]
fn gradients_of_device_tensors_are_computed_on_the_device() {
    emulated();
    let x = rand_f32(6, &[3, 4], -1.0, 1.0);
    let w0 = rand_f32(7, &[4, 2], -1.0, 1.0);
    let grad = |x: &Tensor, w: Tensor| {
        let w = Variable::new(w, "w");
        let tape = GradientTape::new();
        let loss = x.matmul(&w.read()).sigmoid().square().mean_all();
        let g = tape.gradient(&loss, &[&w]);
        g[0].clone().unwrap()
    };
    let cpu = grad(&x, w0.clone());
    let gpu = grad(&x.to(GPU).unwrap(), w0.to(GPU).unwrap());
    assert_eq!(gpu.device(), GPU);
    assert_eq!(f32s(&gpu.to(Device::Cpu).unwrap()), f32s(&cpu));
}

#[test]
fn traced_functions_retrace_per_device_and_run_there() {
    let e = emulated();
    let f = tensorjit::function("scale_shift", |(x, b): (Tensor, Tensor)| (x.exp() * 0.5 + &b).relu().sum(0, false));
    let (x, b) = (rand_f32(8, &[5, 3], -2.0, 2.0), rand_f32(9, &[3], -1.0, 1.0));
    let cpu = f.call((x.clone(), b.clone()));
    let (gx, gb) = (x.to(GPU).unwrap(), b.to(GPU).unwrap());
    let before = e.ops.lock().unwrap().iter().filter(|o| **o == "exp").count();
    let gpu = f.call((gx.clone(), gb.clone()));
    assert_eq!(f.tracing_count(), 2, "a new device is a new signature");
    assert_eq!(gpu.device(), GPU);
    assert_eq!(f32s(&gpu.to(Device::Cpu).unwrap()), f32s(&cpu));
    let after = e.ops.lock().unwrap().iter().filter(|o| **o == "exp").count();
    assert!(after > before, "the trace's ops ran on the device");
    // Later calls on the device reuse the device trace.
    let again = f.call((gx, gb));
    assert_eq!(f.tracing_count(), 2);
    assert_eq!(f32s(&again.to(Device::Cpu).unwrap()), f32s(&cpu));
    let cf = f.concrete_functions();
    let on_gpu = cf.iter().find(|c| c.device() == GPU).expect("a trace for cuda:0");
    // The fused plan, its kernels run as this (emulated) backend's own ops.
    assert_eq!(on_gpu.backend(), "device ops");
    // Inside a trace a tensor cannot move: the function runs on its arguments' device.
    let seen = Arc::new(Mutex::new(String::new()));
    let s2 = seen.clone();
    let g = tensorjit::function("moves", move |x: Tensor| {
        if let Err(e) = x.to(GPU) {
            *s2.lock().unwrap() = e.to_string();
        }
        x
    });
    g.call(rand_f32(16, &[2], -1.0, 1.0));
    let msg = seen.lock().unwrap().clone();
    assert!(msg.starts_with("to(cuda:0): f32[2] is symbolic") && msg.contains("move the arguments"), "{msg}");
    // Arguments on two devices cannot be one call.
    let mixed = f.try_call((x.to(GPU).unwrap(), b.clone())).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(mixed.contains("arguments are on cuda:0 and cpu"), "{mixed}");
}

#[test]
fn a_trace_on_a_device_refuses_host_tensors_it_captures() {
    emulated();
    let host = rand_f32(10, &[3], -1.0, 1.0);
    let h = host.clone();
    let f = tensorjit::function("adds_host", move |x: Tensor| &x + &h);
    let x = rand_f32(11, &[2, 3], -1.0, 1.0).to(GPU).unwrap();
    // As in eager code: a programmer error, raised while the body is traced.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.call(x)));
    let e = r.err().and_then(|p| p.downcast_ref::<String>().cloned()).unwrap_or_default();
    assert!(e.contains("add: operands on two devices, cuda:0 and cpu"), "{e}");
    let ok = f.call(host.to(GPU).unwrap().reshape([1, 3]).to(Device::Cpu).unwrap());
    assert_eq!(ok.device(), Device::Cpu);
}

#[test]
fn variables_stay_on_their_device() {
    emulated();
    let w0 = rand_f32(12, &[2, 3], -1.0, 1.0);
    let w = Variable::new(w0.to(GPU).unwrap(), "w");
    assert_eq!(w.device(), GPU);
    w.assign_sub(&rand_f32(13, &[2, 3], -1.0, 1.0).to(GPU).unwrap() * 0.5);
    assert_eq!(w.read().device(), GPU);
    // Host values (a Rust scalar, a CPU tensor) are copied to the variable's device.
    w.assign(0.25);
    assert_eq!(w.read().device(), GPU);
    assert_eq!(f32s(&w.read().to(Device::Cpu).unwrap()), vec![0.25; 6]);
    let host = rand_f32(14, &[2, 3], -1.0, 1.0);
    w.assign(&host);
    assert_eq!(w.read().device(), GPU);
    assert_eq!(f32s(&w.read().to(Device::Cpu).unwrap()), f32s(&host));
    // A function traced on the host that assigns the captured device variable a host
    // value: the value is copied over, the variable stays where it is.
    let (w2, x) = (w.clone(), rand_f32(16, &[2, 3], -1.0, 1.0));
    let set = tensorjit::function("set_from_host", move |x: Tensor| {
        w2.assign(&x * 2.0);
        x
    });
    set.call(x.clone());
    assert_eq!(w.device(), GPU);
    assert_eq!(w.read().device(), GPU);
    assert_eq!(f32s(&w.read().to(Device::Cpu).unwrap()), f32s(&(&x * 2.0)));
    // And a function traced on the device that assigns a host tensor it captured.
    let (w3, host2) = (w.clone(), rand_f32(17, &[2, 3], -1.0, 1.0));
    let h = host2.clone();
    let reset = tensorjit::function("reset_from_host", move |x: Tensor| {
        w3.assign(&h);
        x
    });
    reset.call(x.to(GPU).unwrap());
    assert_eq!(w.read().device(), GPU);
    assert_eq!(f32s(&w.read().to(Device::Cpu).unwrap()), f32s(&host2));
}

/// A tensor-conditioned loop (AutoGraph's `while` becomes one `while` node).
#[tf_function]
fn grow(x: &Tensor) -> Tensor {
    let mut x = x.clone();
    while x.sum_all().lt(500.0) {
        x = &x * 1.5 + 1.0;
    }
    x
}

#[test]
fn control_flow_on_device_tensors_reads_its_predicates_back() {
    let e = emulated();
    let x = rand_f32(15, &[8], 0.0, 1.0);
    let cpu = grow(&x);
    let before = count(&e, "less");
    let gpu = grow(&x.to(GPU).unwrap());
    assert_eq!(gpu.device(), GPU);
    assert_eq!(f32s(&gpu.to(Device::Cpu).unwrap()), f32s(&cpu));
    // The loop's condition compares two scalars: made on the host, where it is read
    // (the sum is reduced on the device and read back; no bool goes to the device).
    assert_eq!(count(&e, "less"), before, "the traced loop's predicate ran on the device");
    // A traced function returning such a predicate returns it on its device.
    let below = tensorjit::function("below", |x: Tensor| x.sum_all().lt(500.0));
    let p = below.call(x.to(GPU).unwrap());
    assert_eq!((p.device(), p.dtype()), (GPU, DType::Bool));
    assert_eq!(
        p.to(Device::Cpu).unwrap().to_scalar::<bool>().unwrap(),
        x.sum_all().lt(500.0).to_scalar::<bool>().unwrap()
    );
    // Eagerly (no trace), the same loop on the device.
    let mut y = x.to(GPU).unwrap();
    while y.sum_all().lt(500.0).to(Device::Cpu).unwrap().to_scalar::<bool>().unwrap() {
        y = &y * 1.5 + 1.0;
    }
    assert_eq!(f32s(&y.to(Device::Cpu).unwrap()), f32s(&cpu));
}

fn count(e: &Emulated, op: &str) -> usize {
    e.ops.lock().unwrap().iter().filter(|o| **o == op).count()
}

fn on_gpu(ts: &[Tensor]) -> Vec<Tensor> {
    ts.iter().map(|t| t.to(GPU).unwrap()).collect()
}

#[test]
fn traced_functions_on_a_device_run_their_fused_plan_with_the_cpus_bits() {
    let e = emulated();
    // W4: bias + relu kernels after each matmul, and softmax's fused row sum.
    let w4 =
        tensorjit::function("w4_on_device", |(x, p): (Tensor, Vec<Tensor>)| workloads::mlp_logits(&x, &p).softmax(-1));
    let (x, params) = (rand_f32(17, &[6, 784], 0.0, 1.0), workloads::mlp_params());
    let cpu = w4.call((x.clone(), params.clone()));
    let sums = count(&e, "reduce_sum");
    let gpu = w4.call((x.to(GPU).unwrap(), on_gpu(&params)));
    assert_eq!(gpu.device(), GPU);
    assert_eq!(f32s(&gpu.to(Device::Cpu).unwrap()), f32s(&cpu));
    assert!(count(&e, "reduce_sum") > sums, "the fused row sum was reduced on the device");
    let cf = w4.concrete_functions();
    let dev = cf.iter().find(|c| c.device() == GPU).expect("a trace for cuda:0");
    let text = dev.compiled_text();
    assert!(text.contains("on cuda:0 (device ops)") && text.contains("out sum e3 per row"), "{text}");

    // W5: variables on the device, the fused log-softmax, the loss mean and the
    // parameter updates; three steps, then every parameter and loss equal the CPU's.
    let params = workloads::mlp_params();
    let (cpu_vars, gpu_vars) = (workloads::mlp_variables(&params), workloads::mlp_variables(&on_gpu(&params)));
    let (cv, gv) = (cpu_vars.clone(), gpu_vars.clone());
    let cpu_step =
        tensorjit::function("w5_cpu", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&cv, &x, &y));
    let gpu_step =
        tensorjit::function("w5_gpu", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&gv, &x, &y));
    let y = workloads::labels();
    for seed in 0..3 {
        let x = rand_f32(20 + seed, &[128, 784], 0.0, 1.0);
        let loss_cpu = cpu_step.call((x.clone(), y.clone()));
        let loss_gpu = gpu_step.call((x.to(GPU).unwrap(), y.to(GPU).unwrap()));
        assert_eq!(loss_gpu.device(), GPU);
        assert_eq!(f32s(&loss_gpu.to(Device::Cpu).unwrap()), f32s(&loss_cpu), "loss of step {seed}");
    }
    assert_eq!(gpu_step.concrete_functions()[0].backend(), "device ops");
    for (c, g) in cpu_vars.iter().zip(&gpu_vars) {
        assert_eq!(g.read().device(), GPU);
        assert_eq!(f32s(&g.read().to(Device::Cpu).unwrap()), f32s(&c.read()), "{} after 3 steps", c.name());
    }

    // A Rust scalar argument (a rank-0 host tensor) joins the device's plan, and a
    // fused row mean.
    let f = tensorjit::function("scaled_mean", |(x, s): (Tensor, Tensor)| (&x * &s).tanh().mean(-1, true));
    let (x, s) = (rand_f32(30, &[5, 7], -2.0, 2.0), Tensor::scalar(1.75f32));
    let cpu = f.call((x.clone(), s.clone()));
    let gpu = f.call((x.to(GPU).unwrap(), s));
    assert_eq!(gpu.dims(), &[5, 1]);
    assert_eq!(f32s(&gpu.to(Device::Cpu).unwrap()), f32s(&cpu));
    let text = f.concrete_functions()[1].compiled_text();
    assert!(text.contains("on cuda:0") && text.contains("mean") && text.contains("per row"), "{text}");
}

/// A Keras-style model on a device: weights and optimizer slots live there, `fit`
/// copies each batch over, and training (traced, and eager) gives the CPU's numbers bit
/// for bit (the emulated device computes with the CPU's kernels).
#[test]
fn models_train_on_a_device_with_the_cpus_results() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    let e = emulated();
    let x = rand_f32(60, &[40, 6], -1.0, 1.0);
    let y = Tensor::from_vec((0..40).map(|i| (i * 7 % 3) as i64).collect::<Vec<_>>(), [40]).unwrap();
    let train = |device: Device, run_eagerly: bool| {
        tensorjit::random::set_seed(5);
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![
            Dense::new(8).activation(Activation::Relu).boxed(),
            Dropout::new(0.25).with_seed(3).boxed(),
            Dense::new(3).boxed(),
        ])
        .on_device(device)
        .unwrap()
        .with_input_shape(&[6]);
        model.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let opts = FitOptions { epochs: 3, batch_size: 16, shuffle: Some(1), validation_data: None, verbose: false };
        let history = model.fit(&x, &y, &opts).unwrap();
        let weights: Vec<Tensor> = model.variables().iter().map(|v| v.read()).collect();
        (model, history, weights)
    };
    let (_, cpu_history, cpu_weights) = train(Device::Cpu, false);
    for run_eagerly in [false, true] {
        let (model, history, weights) = train(GPU, run_eagerly);
        assert_eq!(model.device(), GPU);
        assert_eq!(history.get("loss"), cpu_history.get("loss"), "run_eagerly={run_eagerly}");
        assert_eq!(history.get("accuracy"), cpu_history.get("accuracy"));
        for (w, c) in weights.iter().zip(&cpu_weights) {
            assert_eq!(w.device(), GPU, "weights stay on the device");
            assert_eq!(f32s(&w.to(Device::Cpu).unwrap()), f32s(c), "run_eagerly={run_eagerly}");
        }
        let slots = model.optimizer().map(|o| o.variables()).unwrap_or_default();
        assert!(
            slots.iter().filter(|v| v.shape().rank() > 0).all(|v| v.device() == GPU),
            "optimizer slots on the device"
        );
        let pred = model.predict(&x, 16).unwrap();
        assert_eq!(pred.device(), Device::Cpu, "predict returns host values");
        // The seeded dropout's counter lives on the device, so its masks are drawn there.
        assert!(ran_on_device(&e, "random_uniform"), "dropout masks drawn on the device");
        assert!(model.evaluate(&x, &y, 16).unwrap().get("loss").is_some_and(f64::is_finite));
    }
    assert!(ran_on_device(&e, "matmul"), "the dense layers ran on the device");
    // After the build, the weights cannot move.
    let built = Sequential::new(vec![Dense::new(2).boxed()]).with_input_shape(&[3]);
    let err = built.on_device(GPU).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("on_device") && err.contains("is built"), "{err}");
    let missing = Sequential::new(vec![Dense::new(2).boxed()]).on_device(Device::Cuda(7));
    assert!(missing.err().is_some_and(|e| e.to_string().contains("cuda:7")));
}

#[test]
fn a_traced_functions_draws_are_made_on_its_device() {
    let _random = random_state();
    let e = emulated();
    let noisy = tensorjit::function("noisy_on_device", |x: Tensor| {
        let n = tensorjit::random::normal(x.dims().to_vec(), 0.0, 0.1, DType::F32, Some(5));
        &x + &n
    });
    let x = rand_f32(60, &[6, 7], -1.0, 1.0);
    let cpu = noisy.call(x.clone());
    let gx = x.to(GPU).unwrap();
    let draws = count(&e, "random_normal");
    let on_device = noisy.call(gx);
    // (Other tests share the device: at least this draw was added.)
    assert!(count(&e, "random_normal") > draws, "the draw ran on the device, not on the host");
    assert_eq!(f32s(&on_device.to(Device::Cpu).unwrap()), f32s(&cpu), "the CPU's values");
}

#[test]
fn zeros_and_ones_like_a_device_tensor_are_filled_on_the_device() {
    let e = emulated();
    for dtype in [DType::F32, DType::I64, DType::Bool] {
        let x = rand_f32(61, &[4, 5], -1.0, 1.0).cast(dtype).to(GPU).unwrap();
        let fills = count(&e, "fill_like");
        let (z, o) = (Tensor::zeros_like(&x), Tensor::ones_like(&x));
        assert!(count(&e, "fill_like") >= fills + 2, "the fills ran on the device");
        for (t, v) in [(z, 0.0), (o, 1.0)] {
            assert_eq!((t.device(), t.dtype(), t.dims()), (GPU, dtype, &[4usize, 5][..]));
            let want = Tensor::full([4, 5], v, dtype);
            assert_eq!(format!("{:?}", t.to(Device::Cpu).unwrap()), format!("{want:?}"));
        }
    } // One element (a loss's gradient seed) comes from the device's scalar cache.
    let seed = Tensor::ones_like(&Tensor::scalar(2.5f32).to(GPU).unwrap());
    assert_eq!((seed.device(), seed.to(Device::Cpu).unwrap().to_scalar::<f32>().unwrap()), (GPU, 1.0));
}

#[test]
fn a_models_weights_on_a_device_are_saved_and_loaded() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    emulated();
    let build = |device: Device, seed: u64| {
        tensorjit::random::set_seed(seed);
        tensorjit::nn::reset_names();
        Sequential::new(vec![Dense::new(4).boxed(), Dense::new(2).boxed()])
            .on_device(device)
            .unwrap()
            .with_input_shape(&[3])
    };
    let dir = std::env::temp_dir().join(format!("tensorjit-device-weights-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.safetensors");
    let trained = build(GPU, 11);
    trained.save_weights(&path).expect("device weights are copied to the host and saved");
    // Loaded into a model on the device (and one on the host): the same values, each
    // variable staying where its model lives.
    for device in [GPU, Device::Cpu] {
        let fresh = build(device, 12);
        fresh.load_weights(&path).expect("the saved weights load");
        for (a, b) in fresh.variables().iter().zip(trained.variables().iter()) {
            let (a, b) = (a.read(), b.read());
            assert_eq!(a.device(), device, "{}", a.type_string());
            assert_eq!(f32s(&a.to(Device::Cpu).unwrap()), f32s(&b.to(Device::Cpu).unwrap()));
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_seeded_dropout_on_a_device_counts_its_calls() {
    use tensorjit::nn::prelude::*;
    emulated();
    let d = Dropout::new(0.3).with_seed(9);
    let x = rand_f32(62, &[4, 8], -1.0, 1.0).to(GPU).unwrap();
    assert_eq!(d.calls(), None, "no mask drawn yet");
    for _ in 0..3 {
        d.call(&x, true);
    }
    assert_eq!(d.calls(), Some(3), "the counter on the device is read back");
}

#[test]
fn a_range_with_bounds_on_a_device_iterates_eagerly() {
    use tensorjit::ops::control::tf_range;
    emulated();
    let on = |v: i64| Tensor::scalar(v).to(GPU).unwrap();
    let seen: Vec<i64> =
        tf_range(on(1), on(10), on(3)).map(|i| i.to(Device::Cpu).unwrap().to_scalar::<i64>().unwrap()).collect();
    assert_eq!(seen, vec![1, 4, 7], "the bounds are compared on the device and read back");
    let zero = std::panic::catch_unwind(|| tf_range(on(0), on(5), on(0)).count());
    assert!(zero.is_err(), "a zero step on a device is refused too");
}

#[test]
fn a_function_with_unknown_dims_draws_on_its_device() {
    let _random = random_state();
    emulated();
    let noisy = tensorjit::function("noisy_unknown_dims", |x: Tensor| {
        &x + tensorjit::random::normal([4], 0.0, 0.1, DType::F32, Some(8))
    })
    .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, Some(4)])]);
    let x = rand_f32(63, &[3, 4], -1.0, 1.0);
    let cpu = noisy.call(x.clone());
    let on_device = noisy.try_call(x.to(GPU).unwrap()).expect("the draw joins the device operand");
    assert_eq!(on_device.device(), GPU);
    assert_eq!(f32s(&on_device.to(Device::Cpu).unwrap()), f32s(&cpu));
    assert_eq!(noisy.tracing_count(), 2, "one trace per device, both from the signature");
    // A spec naming a GPU takes tensors there only, and says so.
    let pinned = tensorjit::function("pinned", |x: Tensor| x.relu()).with_input_signature(vec![TensorSpec::new(
        DType::F32,
        &[None, Some(4)],
    )
    .on(GPU)]);
    let err = pinned.try_call(x).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("argument 0 is f32[3,4], the input_signature expects f32[?,4] on cuda:0"), "{err}");
}

#[test]
fn datasets_of_device_tensors_batch_and_shuffle_on_the_device() {
    use tensorjit::nn::data::Dataset;
    emulated();
    let x = rand_f32(64, &[10, 3], -1.0, 1.0);
    let y = Tensor::from_vec((0..10i64).collect::<Vec<_>>(), [10]).unwrap();
    let batches = |x: Tensor, y: Tensor| -> Vec<Vec<Tensor>> {
        let ds = Dataset::from_tensor_slices(vec![x, y]).unwrap().shuffle(10, 3).batch(4);
        ds.iter().collect()
    };
    let cpu = batches(x.clone(), y.clone());
    let on_device = batches(x.to(GPU).unwrap(), y.to(GPU).unwrap());
    assert_eq!(on_device.len(), cpu.len());
    for (d, c) in on_device.iter().zip(&cpu) {
        for (a, b) in d.iter().zip(c) {
            assert_eq!(a.device(), GPU, "batches stay on the device");
            assert_eq!(format!("{:?}", a.to(Device::Cpu).unwrap()), format!("{b:?}"));
        }
    }
}

#[test]
fn a_cnn_with_batch_norm_and_validation_trains_on_a_device_as_on_the_cpu() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    emulated();
    let x = rand_f32(65, &[24, 8, 8, 2], -1.0, 1.0);
    let y = Tensor::from_vec((0..24).map(|i| (i * 5 % 3) as i64).collect::<Vec<_>>(), [24]).unwrap();
    let (vx, vy) =
        (rand_f32(66, &[8, 8, 8, 2], -1.0, 1.0), Tensor::from_vec(vec![0i64, 1, 2, 0, 1, 2, 0, 1], [8]).unwrap());
    let train = |device: Device, run_eagerly: bool| {
        tensorjit::random::set_seed(9);
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![
            Conv2D::new(4, [3, 3]).activation(Activation::Relu).boxed(),
            BatchNormalization::new().boxed(),
            MaxPool2D::new([2, 2]).boxed(),
            Flatten::new().boxed(),
            Dropout::new(0.2).with_seed(4).boxed(),
            Dense::new(3).boxed(),
        ])
        .on_device(device)
        .unwrap()
        .with_input_shape(&[8, 8, 2]);
        model.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let opts = FitOptions {
            epochs: 2,
            batch_size: 8,
            shuffle: Some(2),
            validation_data: Some((vx.clone(), vy.clone())),
            verbose: false,
        };
        let history = model.fit(&x, &y, &opts).unwrap();
        let weights: Vec<Vec<f32>> =
            model.variables().iter().map(|v| f32s(&v.read().to(Device::Cpu).unwrap())).collect();
        (history, weights)
    };
    let (cpu_history, cpu_weights) = train(Device::Cpu, false);
    assert_eq!(cpu_history.get("val_loss").len(), 2, "{cpu_history:?}");
    for run_eagerly in [false, true] {
        let (history, weights) = train(GPU, run_eagerly);
        for key in ["loss", "accuracy", "val_loss", "val_accuracy"] {
            assert_eq!(history.get(key), cpu_history.get(key), "{key}, run_eagerly={run_eagerly}");
        }
        assert_eq!(weights, cpu_weights, "weights and BatchNorm statistics, run_eagerly={run_eagerly}");
    }
}

#[test]
fn a_device_model_takes_data_already_on_the_device() {
    let _random = random_state();
    use tensorjit::nn::prelude::*;
    emulated();
    let x = rand_f32(67, &[20, 5], -1.0, 1.0);
    let y = Tensor::from_vec((0..20).map(|i| (i % 2) as i64).collect::<Vec<_>>(), [20]).unwrap();
    let run = |x: &Tensor, y: &Tensor| {
        tensorjit::random::set_seed(3);
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![Dense::new(2).boxed()]).on_device(GPU).unwrap().with_input_shape(&[5]);
        model.compile(Adam::new(0.01), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[], false);
        let opts = FitOptions { epochs: 2, batch_size: 8, shuffle: Some(1), validation_data: None, verbose: false };
        let history = model.fit(x, y, &opts).expect("fit");
        let pred = model.predict(x, 8).expect("predict");
        let eval = model.evaluate(x, y, 8).expect("evaluate");
        (history.get("loss"), f32s(&pred.to(Device::Cpu).unwrap()), eval.get("loss"))
    };
    let host = run(&x, &y);
    let on_device = run(&x.to(GPU).unwrap(), &y.to(GPU).unwrap());
    assert_eq!(on_device, host, "data on the device gives the same training as data on the host");
}

#[test]
fn data_on_a_device_is_split_there() {
    use tensorjit::nn::data::train_test_split;
    emulated();
    let x = rand_f32(68, &[10, 3], -1.0, 1.0);
    let y = Tensor::from_vec((0..10i64).collect::<Vec<_>>(), [10]).unwrap();
    let host = train_test_split(&x, &y, 0.3, 4).unwrap();
    let dev = train_test_split(&x.to(GPU).unwrap(), &y.to(GPU).unwrap(), 0.3, 4).expect("split on the device");
    for (d, h) in [(&dev.0, &host.0), (&dev.1, &host.1), (&dev.2, &host.2), (&dev.3, &host.3)] {
        assert_eq!(d.device(), GPU);
        assert_eq!(format!("{:?}", d.to(Device::Cpu).unwrap()), format!("{h:?}"));
    }
}

#[test]
fn metrics_take_tensors_on_a_device() {
    use tensorjit::nn::metrics::{Accuracy, AccuracyKind, Mean};
    emulated();
    let logits = rand_f32(69, &[12, 4], -1.0, 1.0);
    let labels = Tensor::from_vec((0..12).map(|i| (i % 4) as i64).collect::<Vec<_>>(), [12]).unwrap();
    let mut host = Accuracy::new(AccuracyKind::SparseCategorical);
    host.update_state(&labels, &logits).unwrap();
    let mut dev = Accuracy::new(AccuracyKind::SparseCategorical);
    dev.update_state(&labels.to(GPU).unwrap(), &logits.to(GPU).unwrap()).expect("device tensors are read back");
    assert_eq!(dev.result(), host.result());
    let mut mean = Mean::new();
    mean.update_state(&logits.to(GPU).unwrap()).expect("device values are read back");
    let want: f64 = f32s(&logits).iter().map(|&v| v as f64).sum::<f64>() / 48.0;
    assert!((mean.result() - want).abs() < 1e-12);
}

/// A training step on a device — eager (the tape's backward ops, the optimizer's
/// updates) or traced — copies nothing between host and device once warm: on a real
/// GPU each copy is a synchronising round trip.
#[test]
fn train_steps_on_a_device_copy_nothing_to_or_from_the_host() {
    let _e = emulated();
    let params = workloads::mlp_params();
    let vars: Vec<Variable> = params.iter().map(|p| Variable::new(p.to(GPU).unwrap(), "p")).collect();
    let (x, y) = (rand_f32(5, &[128, 784], 0.0, 1.0).to(GPU).unwrap(), workloads::labels().to(GPU).unwrap());
    workloads::mlp_train_step(&vars, &x, &y);
    let before = copies();
    let loss = workloads::mlp_train_step(&vars, &x, &y);
    assert_eq!(copies(), before, "an eager step copies nothing (uploads, downloads)");
    assert_eq!(loss.device(), GPU);
    let tv = vars.clone();
    let step = tensorjit::function("w5_copies", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&tv, &x, &y));
    step.call((x.clone(), y.clone()));
    let before = copies();
    step.call((x.clone(), y.clone()));
    assert_eq!(copies(), before, "a traced step copies nothing (uploads, downloads)");
}

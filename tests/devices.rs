//! Tensors on devices, on every machine: placement rules, copies between host and
//! device, eager ops, gradients, control flow and traced functions on a device — run
//! against the host-emulated device backend of `device_emulation` installed as
//! `Device::Cuda` (results must equal the CPU's bit for bit). Models, data and training
//! on a device: tests/devices_training.rs. The real CUDA backend's checks are in
//! `tests/gpu/`.

mod common;
#[path = "device_emulation/mod.rs"]
mod emulation;
#[path = "../benches/common/mod.rs"]
mod workloads;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use common::{f32s, rand_f32};
use emulation::*;
use tensorjit::prelude::*;

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
    // zeros there (host indices are refused by name, see tests/errors.rs).
    let idx = Tensor::from_vec(vec![5i64, -1, 0, 9], [4]).unwrap();
    let gathered = ga.gather(&idx.to(GPU).unwrap(), 1);
    assert_eq!(gathered.device(), GPU);
    let want = common::gather_or_zeros(&a, &idx, 1);
    assert_eq!(f32s(&gathered.to(Device::Cpu).unwrap()), f32s(&want));
    assert!(f32s(&want)[1] == 0.0 && f32s(&want)[3] == 0.0, "out-of-range indices gather zeros");
    let msg = common::panic_message(std::panic::AssertUnwindSafe(|| drop(ga.gather(&idx, 1))));
    assert!(msg.contains("gather: index -1 is out of range for axis 1 of length 6"), "host indices are refused: {msg}");
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

//! Error messages: programmer errors panic naming the op, the operands and the caller's
//! location; boundaries return `tensorjit::Error`.

mod common;
use common::*;
use tensorjit::prelude::*;

#[test]
fn shape_mismatch_names_op_operands_and_caller() {
    let msg = panic_message(|| {
        let a = Tensor::zeros([2, 3], DType::F32);
        let b = Tensor::zeros([4], DType::F32);
        let _ = &a + &b;
    });
    assert!(msg.contains("add: shapes [2,3] and [4] cannot be broadcast together"), "{msg}");
    assert!(msg.contains("operands: f32[2,3], f32[4]"), "{msg}");
    assert!(msg.contains("tests/errors.rs:"), "the user's file:line: {msg}");
}

#[test]
fn dtype_mismatch_names_both_and_the_fix() {
    let msg = panic_message(|| {
        let a = Tensor::zeros([2], DType::F32);
        let b = Tensor::zeros([2], DType::F64);
        let _ = a.mul(&b);
    });
    assert!(msg.contains("mul: dtype mismatch: f32 vs f64"), "{msg}");
    assert!(msg.contains(".cast(DType::"), "{msg}");
    assert!(msg.contains("tests/errors.rs:"), "{msg}");
}

#[test]
fn matmul_inner_dims_and_bad_axis() {
    let msg = panic_message(|| {
        let _ = Tensor::zeros([2, 3], DType::F32).matmul(&Tensor::zeros([4, 5], DType::F32));
    });
    assert!(msg.contains("matmul: inner dimensions differ: 3 vs 4"), "{msg}");
    let msg = panic_message(|| {
        let _ = Tensor::zeros([2, 3], DType::F32).sum(5, false);
    });
    assert!(msg.contains("reduce_sum: axis 5 is out of range for a tensor of rank 2"), "{msg}");
    assert!(msg.contains("tests/errors.rs:"), "{msg}");
}

#[test]
fn float_only_ops_and_scalars_on_integer_tensors() {
    let msg = panic_message(|| {
        let _ = Tensor::zeros([2], DType::I32).exp();
    });
    assert!(msg.contains("exp: needs a float tensor (f32 or f64), got i32"), "{msg}");
    let msg = panic_message(|| {
        let _ = &Tensor::zeros([2], DType::I32) * 2.5;
    });
    assert!(msg.contains("the Rust scalar 2.5 cannot take the dtype i32"), "{msg}");
}

#[test]
fn reshape_and_gather_errors() {
    let msg = panic_message(|| {
        let _ = Tensor::zeros([2, 3], DType::F32).reshape([4, -1]);
    });
    assert!(msg.contains("reshape: cannot infer the -1 dim of [4, -1] for 6 elements"), "{msg}");
    let msg = panic_message(|| {
        let idx = Tensor::from_vec(vec![0i64, 7], [2]).unwrap();
        let _ = Tensor::zeros([5], DType::F32).gather(&idx, 0);
    });
    assert!(msg.contains("gather: index 7 is out of range for axis 0 of length 5"), "{msg}");
}

/// On the CPU a gather reads its indices whoever runs it, so an index out of range is
/// one error eager, compiled and interpreted (TensorFlow's CPU kernel): a traced
/// function never gathers zeros silently where its eager run fails.
#[test]
fn out_of_range_gather_indices_computed_in_a_traced_function_fail_its_call() {
    // The indices exist only at run time: doubled inside the function.
    let f = tensorjit::function("pick", |(x, i): (Tensor, Tensor)| x.gather(&(&i * 2), 1) + 1.0);
    let x = rand_f32(31, &[3, 5], -1.0, 1.0);
    let idx = |seed, hi| {
        let v: Vec<i64> = rand_vec(seed, 4, 0.0, hi).iter().map(|v| v.floor() as i64).collect();
        Tensor::from_vec(v, [4]).unwrap()
    };
    let fine = idx(32, 3.0); // doubled: 0, 2 or 4, inside an axis of 5
    let eager = x.gather(&(&fine * 2), 1) + 1.0;
    assert_eq!(f32s(&f.call((x.clone(), fine.clone()))), f32s(&eager), "traced == eager in range");
    let mut bad = idx(33, 3.0).to_vec::<i64>().unwrap();
    bad[2] = 3; // doubled: 6
    let bad = Tensor::from_vec(bad, [4]).unwrap();
    let want = "gather: index 6 is out of range for axis 1 of length 5 (operands: f32[3,5], i64[4])";
    let compiled = f.try_call((x.clone(), bad.clone())).expect_err("the compiled call fails");
    assert!(compiled.to_string().contains(want), "{compiled}");
    let cf = f.concrete_functions().pop().unwrap();
    assert_ne!(cf.backend(), "interpreter", "a compiled trace");
    let interpreted = tensorjit::trace::backend::interpret(&cf.graph, &[x.clone(), bad.clone()], &[])
        .expect_err("the interpreter fails too");
    assert!(interpreted.to_string().contains(want), "{interpreted}");
    let msg = panic_message(std::panic::AssertUnwindSafe(|| drop(f.call((x.clone(), bad.clone())))));
    assert!(msg.contains(want) && msg.contains("tests/errors.rs:"), "the call panics at the caller: {msg}");
    let eager =
        tensorjit::function("pick", |(x, i): (Tensor, Tensor)| x.gather(&(&i * 2), 1) + 1.0).with_run_eagerly(true);
    let msg = panic_message(std::panic::AssertUnwindSafe(|| drop(eager.call((x.clone(), bad)))));
    assert!(msg.contains(want), "run eagerly: the same error: {msg}");
    // Host indices known while tracing are refused then, at the gather's own line.
    let host = Tensor::from_vec(vec![1i64, 5], [2]).unwrap();
    let line = line!() + 1;
    let traced = tensorjit::function("fixed", move |x: Tensor| x.gather(&host, 1) * 2.0);
    let msg = panic_message(std::panic::AssertUnwindSafe(|| drop(traced.call(x.clone()))));
    assert!(msg.contains("gather: index 5 is out of range for axis 1 of length 5"), "{msg}");
    assert!(msg.contains(&format!("tests/errors.rs:{line}:")), "at the gather: {msg}");
}

#[test]
fn boundaries_return_errors() {
    let e = Tensor::from_vec(vec![1.0f32; 5], [2, 3]).unwrap_err();
    assert!(matches!(e, Error::ElementCount { len: 5, .. }));
    let t = Tensor::zeros([2], DType::F32);
    assert_eq!(
        t.to_vec::<i64>().unwrap_err().to_string(),
        "cannot read a f32 tensor as i64; cast it first (`.cast(DType::I64)`)"
    );
    assert!(matches!(t.to_scalar::<f32>(), Err(Error::NotAScalar { .. })));
}

#[test]
fn variable_assign_is_type_checked() {
    let v = Variable::new(Tensor::zeros([2], DType::F32), "layer/kernel");
    let msg = panic_message(|| v.assign(Tensor::zeros([3], DType::F32)));
    assert!(msg.contains("variable 'layer/kernel' is f32[2], the new value is f32[3]"), "{msg}");
    assert!(msg.contains("tests/errors.rs:"), "{msg}");
}

/// A tensor too large for the machine is an error naming its size — a panic the program
/// can catch or report — not the allocator's abort of the whole process. (Sizes past the
/// 128 TiB of a 64-bit address space: refused on any machine.)
#[test]
fn tensors_too_large_for_memory_are_errors_not_aborts() {
    let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap();
    let huge: [Box<dyn Fn() -> Tensor + std::panic::RefUnwindSafe>; 4] = [
        Box::new(move || x.broadcast_to([1usize << 46, 2])),
        Box::new(|| Tensor::zeros([1usize << 46, 8], DType::F32)),
        Box::new(|| Tensor::from_vec(vec![0i64], [1]).unwrap().one_hot(1 << 48, DType::F32)),
        Box::new(|| tensorjit::random::normal([1usize << 46], 0.0, 1.0, DType::F32, Some(1))),
    ];
    for make in huge {
        let err = std::panic::catch_unwind(|| make().numel()).expect_err("no tensor of that size");
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.contains("out of memory: a buffer of") && msg.contains("cannot be allocated"), "{msg}");
    }
}

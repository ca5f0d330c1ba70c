//! The op cases of the parity suites: every op family on fresh random inputs. Eager vs
//! traced on the CPU (tests/parity.rs) and on a GPU (tests/gpu/main.rs).

use super::*;

pub type Case = (&'static str, fn(&[Tensor]) -> Tensor, Vec<Tensor>);

pub fn bits(t: &Tensor) -> Vec<u64> {
    match t.dtype() {
        DType::F32 => f32s(t).iter().map(|v| v.to_bits() as u64).collect(),
        DType::F64 => f64s(t).iter().map(|v| v.to_bits()).collect(),
        DType::I32 => t.to_vec::<i32>().unwrap().iter().map(|&v| v as u64).collect(),
        DType::I64 => t.to_vec::<i64>().unwrap().iter().map(|&v| v as u64).collect(),
        DType::Bool => t.to_vec::<bool>().unwrap().iter().map(|&v| v as u64).collect(),
    }
}

pub fn cases() -> Vec<Case> {
    let a = rand_f32(1, &[3, 50], -3.0, 3.0);
    let b = rand_f32(2, &[50], -3.0, 3.0);
    let p = rand_f32(3, &[3, 50], 0.1, 3.0);
    let img = rand_f32(4, &[2, 6, 5, 3], -1.0, 1.0);
    let k = rand_f32(5, &[3, 2, 3, 4], -1.0, 1.0);
    let m = rand_f32(6, &[4, 3], -1.0, 1.0);
    let i = Tensor::from_vec(vec![2i64, 0, 1, 1], [4]).unwrap();
    vec![
        ("neg abs sign", |x| x[0].neg() + x[0].abs() * x[0].sign(), vec![a.clone()]),
        ("exp log sqrt rsqrt", |x| x[0].exp() + x[0].log() + x[0].sqrt() * x[0].rsqrt(), vec![p.clone()]),
        ("square tanh sigmoid relu", |x| x[0].square() + x[0].tanh() * x[0].sigmoid() - x[0].relu(), vec![a.clone()]),
        (
            "softplus sin cos erf floor ceil",
            |x| x[0].softplus() + x[0].sin() * x[0].cos() + x[0].erf() + x[0].floor() - x[0].ceil(),
            vec![a.clone()],
        ),
        ("binary broadcast", |x| (&x[0] + &x[1]) * (&x[0] - &x[1]) / (x[1].abs() + 1.0), vec![a.clone(), b.clone()]),
        ("pow max min", |x| x[0].pow(&x[1]).maximum(&x[1]).minimum(5.0), vec![p.clone(), b.clone()]),
        (
            "compare where",
            |x| Tensor::where_(&x[0].gt(&x[1]).logical_and(x[0].lt(2.0)), &x[0], &x[1]),
            vec![a.clone(), b.clone()],
        ),
        ("cast floordiv", |x| x[0].cast(DType::I32).floordiv(2).cast(DType::F32), vec![a.clone()]),
        (
            "reductions",
            |x| {
                x[0].sum(1, true) + x[0].mean(0, false).sum_all() + x[0].max(-1, true) * x[0].min(0, true).prod(1, true)
            },
            vec![a.clone()],
        ),
        ("argmax", |x| x[0].argmax(1).cast(DType::F32) + x[0].argmin(0).cast(DType::F32).sum_all(), vec![a.clone()]),
        ("matmul", |x| x[0].matmul(&x[1]).matmul_t(&x[1], false, true), vec![m.clone(), m.t()]),
        (
            "shape ops",
            |x| {
                let r = x[0].reshape([-1, 10]).t().broadcast_to([2, 10, 15]);
                let c =
                    Tensor::concat(&[&r, &r], 2).slice(&[SliceArg::full(), (1..9).into(), SliceArg::full().step(3)]);
                Tensor::stack(&[&c, &c], 0).expand_dims(0).squeeze(&[0]).sum(0, false)
            },
            vec![a.clone()],
        ),
        (
            "gather one_hot",
            |x| x[0].gather(&x[1], 0).sum(1, false) + x[1].one_hot(3, DType::F32).sum(1, false),
            vec![a.clone(), i.clone()],
        ),
        ("softmax log_softmax", |x| x[0].softmax(-1) + x[0].log_softmax(0), vec![a.clone()]),
        (
            "conv pool",
            |x| {
                let y = x[0].conv2d(&x[1], [2, 1], Padding::Same);
                y.max_pool2d([2, 2], [1, 1], Padding::Same) + y.avg_pool2d([2, 2], [1, 1], Padding::Same)
            },
            vec![img.clone(), k.clone()],
        ),
    ]
}

/// The gradients of `square(f(xs)).sum()` (or of the cast sum, for a non-float result)
/// with respect to the float inputs (like `inputs`' dtypes), zeros where none flows.
pub fn gradients(f: fn(&[Tensor]) -> Tensor, inputs: &[Tensor]) -> impl Fn(&[Tensor]) -> Vec<Tensor> + Clone {
    let float: Vec<usize> = (0..inputs.len()).filter(|&k| inputs[k].dtype().is_float()).collect();
    move |xs: &[Tensor]| -> Vec<Tensor> {
        let tape = GradientTape::new();
        for &k in &float {
            tape.watch(&xs[k]);
        }
        let y = f(xs);
        let loss = if y.dtype().is_float() { y.square().sum_all() } else { y.cast(DType::F32).sum_all() };
        let srcs: Vec<&Tensor> = float.iter().map(|&k| &xs[k]).collect();
        tape.gradient(&loss, &srcs).into_iter().map(|g| g.unwrap_or_else(|| Tensor::zeros([], DType::F32))).collect()
    }
}

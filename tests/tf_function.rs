//! The #[tf_function] attribute on free functions.

mod common;
use common::*;
use tensorjit::prelude::*;

#[tf_function]
fn dense_tanh(x: &Tensor, w: &Tensor, b: &Tensor) -> Tensor {
    (x.matmul(w) + b).tanh()
}

#[tf_function(name = "scaled", cache_size = 4)]
fn scale(x: &Tensor, k: i64, label: &str) -> (Tensor, Tensor) {
    let _ = label;
    (x * k as f64, x.sum_all())
}

#[tf_function]
fn sgd_update(p: &Variable, g: &Tensor, lr: f64) {
    p.assign_sub(g * lr);
}

#[tf_function]
fn total(xs: &[Tensor]) -> Tensor {
    let mut acc = xs[0].clone();
    for x in &xs[1..] {
        acc = &acc + x;
    }
    acc
}

#[tf_function(run_eagerly = true)]
fn always_eager(x: Tensor) -> Tensor {
    x.exp()
}

#[tf_function(autograph = false)]
fn pair_sum(xs: [Tensor; 2]) -> Tensor {
    &xs[0] + &xs[1]
}

#[test]
fn arrays_of_tensors_are_arguments() {
    let xs = [rand_f32(30, &[3], -1.0, 1.0), rand_f32(31, &[3], -1.0, 1.0)];
    assert_eq!(f32s(&pair_sum(xs.clone())), f32s(&(&xs[0] + &xs[1])));
    pair_sum([rand_f32(32, &[3], -1.0, 1.0), rand_f32(33, &[3], -1.0, 1.0)]);
    assert_eq!(pair_sum::tracing_count(), 1);
}

#[test]
fn traced_results_match_eager_and_cache_per_signature() {
    let (x, w, b) = (rand_f32(1, &[4, 3], -1.0, 1.0), rand_f32(2, &[3, 2], -1.0, 1.0), rand_f32(3, &[2], -1.0, 1.0));
    let want = f32s(&(x.matmul(&w) + &b).tanh());
    assert_eq!(f32s(&dense_tanh(&x, &w, &b)), want);
    assert_eq!(f32s(&dense_tanh(&x, &w, &b)), want);
    assert_eq!(dense_tanh::tracing_count(), 1);
    dense_tanh(&rand_f32(4, &[7, 3], -1.0, 1.0), &w, &b);
    assert_eq!(dense_tanh::tracing_count(), 2);
    let ir = dense_tanh::concrete_functions().iter().map(|c| c.ir_text()).collect::<Vec<_>>().join("\n");
    assert!(ir.contains("func @dense_tanh(%0: f32[4,3], %1: f32[3,2], %2: f32[2])"), "{ir}");
}

#[test]
fn static_arguments_and_tuple_results() {
    let x = rand_f32(5, &[3], -1.0, 1.0);
    let (y, s) = scale(&x, 3, "a");
    assert_eq!(f32s(&y), f32s(&(&x * 3.0)));
    assert_eq!(f32s(&s), f32s(&x.sum_all()));
    scale(&x, 3, "a");
    assert_eq!(scale::tracing_count(), 1);
    scale(&x, 4, "a");
    scale(&x, 4, "b");
    assert_eq!(scale::tracing_count(), 3);
    assert!(scale::concrete_functions()[0].ir_text().starts_with("func @scaled("));
}

#[test]
fn variable_arguments_share_a_trace() {
    let a = Variable::new(t32(&[1.0, 2.0], &[2]), "a");
    let b = Variable::new(t32(&[3.0, 4.0], &[2]), "b");
    let g = t32(&[10.0, 10.0], &[2]);
    sgd_update(&a, &g, 0.5);
    sgd_update(&b, &g, 0.5);
    assert_eq!(f32s(&a.read()), vec![-4.0, -3.0]);
    assert_eq!(f32s(&b.read()), vec![-2.0, -1.0]);
    assert_eq!(sgd_update::tracing_count(), 1);
}

#[test]
fn slices_and_run_eagerly_option() {
    let xs: Vec<Tensor> = (0..3).map(|i| rand_f32(10 + i, &[2], -1.0, 1.0)).collect();
    let want = f32s(&(&(&xs[0] + &xs[1]) + &xs[2]));
    assert_eq!(f32s(&total(&xs)), want);
    assert_eq!(total::tracing_count(), 1);
    let x = rand_f32(20, &[3], -1.0, 1.0);
    assert_eq!(f32s(&always_eager(x.clone())), f32s(&x.exp()));
    assert_eq!(always_eager::tracing_count(), 0);
}

#[derive(Debug)]
enum StepError {
    Tensorjit(tensorjit::Error),
    Negative,
}

impl From<tensorjit::Error> for StepError {
    fn from(e: tensorjit::Error) -> Self {
        StepError::Tensorjit(e)
    }
}

#[tf_function(input_signature = [TensorSpec::new(DType::F32, &[None])])]
fn checked_sqrt(x: &Tensor, allow_negative: bool) -> Result<Tensor, StepError> {
    if !allow_negative {
        return Err(StepError::Negative);
    }
    Ok(x.abs().sqrt())
}

#[test]
fn result_functions_return_call_time_errors_as_err() {
    let x = t32(&[4.0, -9.0], &[2]);
    assert_eq!(f32s(&checked_sqrt(&x, true).unwrap()), vec![2.0, 3.0]);
    match checked_sqrt(&Tensor::zeros([2, 2], DType::F32), true) {
        Err(StepError::Tensorjit(e)) => {
            assert!(e.to_string().contains("x is f32[2,2], the input_signature expects f32[?]"), "{e}")
        }
        other => panic!("expected a signature error, got {other:?}"),
    }
    match checked_sqrt(&x, false) {
        Err(StepError::Tensorjit(e)) => {
            assert!(e.to_string().contains("returned an error while being traced: Negative"), "{e}")
        }
        other => panic!("expected the body's error, got {other:?}"),
    }
}

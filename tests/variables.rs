//! Variable: identity, names, assignment semantics, use in ops, snapshot reads, threads.

mod common;
use common::*;
use tensorjit::prelude::*;

#[test]
fn assign_family_updates_shared_state() {
    let v = Variable::new(t32(&[1.0, 2.0], &[2]), "dense/bias");
    let alias = v.clone();
    assert_eq!(v.name(), "dense/bias");
    assert_eq!(v.id(), alias.id());
    assert!(v.trainable());
    let before = v.read();
    v.assign_add(t32(&[0.5, 0.5], &[2]));
    assert_eq!(f32s(&alias.read()), vec![1.5, 2.5], "clones share the variable");
    assert_eq!(f32s(&before), vec![1.0, 2.0], "a read is a snapshot");
    alias.assign_sub(1.0);
    assert_eq!(f32s(&v.read()), vec![0.5, 1.5]);
    v.assign(0.0);
    assert_eq!(f32s(&v.read()), vec![0.0, 0.0]);
    v.assign(t32(&[3.0, 4.0], &[2]));
    assert_eq!(f32s(&v.read()), vec![3.0, 4.0]);
    let other = Variable::new(t32(&[1.0], &[1]), "other");
    assert_ne!(other.id(), v.id());
}

#[test]
fn variables_in_ops_and_operators() {
    let v = Variable::new(t32(&[2.0, 3.0], &[2]), "v");
    let x = t32(&[1.0, 10.0], &[2]);
    assert_eq!(f32s(&(&x * &v)), vec![2.0, 30.0]);
    assert_eq!(f32s(&(&v + 1.0)), vec![3.0, 4.0]);
    assert_eq!(f32s(&(2.0 * &v)), vec![4.0, 6.0]);
    assert_eq!(f32s(&(-&v)), vec![-2.0, -3.0]);
    assert_eq!(f32s(&x.maximum(&v)), vec![2.0, 10.0]);
    assert_eq!(v.shape().dims(), &[2]);
    assert_eq!(v.dtype(), DType::F32);
}

#[test]
fn gradient_descent_on_a_variable_converges() {
    // minimise (w - 3)^2 from w = 0
    let w = Variable::new(Tensor::scalar(0.0f64), "w");
    for _ in 0..100 {
        let tape = GradientTape::new();
        let loss = (&w - 3.0).square();
        let g = tape.gradient(&loss, &[&w]).remove(0).unwrap();
        w.assign_sub(&g * 0.1);
    }
    assert!((w.read().to_scalar::<f64>().unwrap() - 3.0).abs() < 1e-8);
}

#[test]
fn variables_are_shared_across_threads() {
    let v = Variable::new(Tensor::zeros([4], DType::I64), "counter");
    std::thread::scope(|s| {
        for _ in 0..4 {
            let v = v.clone();
            s.spawn(move || {
                for _ in 0..25 {
                    let _ = v.read().sum_all();
                }
            });
        }
    });
    v.assign_add(Tensor::ones([4], DType::I64));
    assert_eq!(v.read().to_vec::<i64>().unwrap(), vec![1; 4]);
}

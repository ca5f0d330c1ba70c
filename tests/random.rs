//! Random ops: reproducible, seed semantics, distribution moments, thread independence.

use tensorjit::prelude::*;

#[test]
fn explicit_seeds_are_pure_and_distinct() {
    let a = random::uniform([1000], -1.0, 1.0, DType::F32, Some(7));
    let b = random::uniform([1000], -1.0, 1.0, DType::F32, Some(7));
    let c = random::uniform([1000], -1.0, 1.0, DType::F32, Some(8));
    assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
    assert_ne!(a.to_vec::<f32>().unwrap(), c.to_vec::<f32>().unwrap());
    assert!(a.to_vec::<f32>().unwrap().iter().all(|&v| (-1.0..1.0).contains(&v)));
}

#[test]
fn distributions_have_the_right_moments() {
    let n = 200_000;
    let u = random::uniform([n], 2.0, 4.0, DType::F64, Some(1)).to_vec::<f64>().unwrap();
    let mean = u.iter().sum::<f64>() / n as f64;
    assert!((mean - 3.0).abs() < 0.01, "{mean}");
    let z = random::normal([n], 1.0, 2.0, DType::F64, Some(2)).to_vec::<f64>().unwrap();
    let m = z.iter().sum::<f64>() / n as f64;
    let var = z.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
    assert!((m - 1.0).abs() < 0.02 && (var - 4.0).abs() < 0.05, "{m} {var}");
    let t = random::truncated_normal([n], 0.0, 1.0, DType::F32, Some(3)).to_vec::<f32>().unwrap();
    assert!(t.iter().all(|v| v.abs() <= 2.0));
    let tv = t.iter().map(|&v| (v * v) as f64).sum::<f64>() / n as f64;
    assert!((tv - 0.774).abs() < 0.02, "variance of a 2-sigma truncated normal ≈ 0.774, got {tv}");
}

#[test]
fn glorot_uniform_limit_follows_fans() {
    let w = random::glorot_uniform([784, 512], DType::F32, Some(4)).to_vec::<f32>().unwrap();
    let limit = (6.0f32 / (784.0 + 512.0)).sqrt();
    assert!(w.iter().all(|v| v.abs() <= limit));
    assert!(w.iter().any(|v| v.abs() > 0.95 * limit));
    let k = random::glorot_uniform([3, 3, 16, 32], DType::F32, Some(5)).to_vec::<f32>().unwrap();
    let lk = (6.0f32 / (9.0 * 16.0 + 9.0 * 32.0)).sqrt();
    assert!(k.iter().all(|v| v.abs() <= lk));
}

#[test]
fn global_seed_makes_unseeded_draws_reproducible() {
    // The only test in this binary touching the global seed.
    random::set_seed(42);
    let a1 = random::normal([5], 0.0, 1.0, DType::F32, None).to_vec::<f32>().unwrap();
    let a2 = random::normal([5], 0.0, 1.0, DType::F32, None).to_vec::<f32>().unwrap();
    random::set_seed(42);
    let b1 = random::normal([5], 0.0, 1.0, DType::F32, None).to_vec::<f32>().unwrap();
    let b2 = random::normal([5], 0.0, 1.0, DType::F32, None).to_vec::<f32>().unwrap();
    assert_eq!((a1.clone(), a2.clone()), (b1, b2));
    assert_ne!(a1, a2);
    let seeded = random::uniform([3], 0.0, 1.0, DType::F32, Some(1)).to_vec::<f32>().unwrap();
    random::set_seed(43);
    assert_ne!(
        seeded,
        random::uniform([3], 0.0, 1.0, DType::F32, Some(1)).to_vec::<f32>().unwrap(),
        "global seed participates"
    );
}

#[test]
fn independent_of_thread_count() {
    let draw = || random::normal([100_000], 0.0, 1.0, DType::F32, Some(9)).to_vec::<f32>().unwrap();
    let one = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(draw);
    let four = rayon::ThreadPoolBuilder::new().num_threads(4).build().unwrap().install(draw);
    assert_eq!(one, four);
}

/// Stateless draws are pure functions of (seed, counter): equal eagerly and traced,
/// repeatable, different per counter (independence from the global sequence is checked
/// by tests/nn_layers.rs, whose other tests draw concurrently); a bad counter is an error
/// naming the op.
#[test]
fn stateless_draws_depend_only_on_seed_and_counter() {
    let c = |v: i64| Tensor::scalar(v);
    let a = random::stateless_uniform([100], 0.0, 1.0, DType::F32, 5, &c(3)).to_vec::<f32>().unwrap();
    assert_eq!(a, random::stateless_uniform([100], 0.0, 1.0, DType::F32, 5, &c(3)).to_vec::<f32>().unwrap());
    assert_ne!(a, random::stateless_uniform([100], 0.0, 1.0, DType::F32, 5, &c(4)).to_vec::<f32>().unwrap());
    assert!(a.iter().all(|&v| (0.0..1.0).contains(&v)));
    let f = function("stateless", |k: Tensor| random::stateless_normal([100], 1.0, 2.0, DType::F32, 5, &k));
    let eager = random::stateless_normal([100], 1.0, 2.0, DType::F32, 5, &c(8)).to_vec::<f32>().unwrap();
    assert_eq!(f.call(c(8)).to_vec::<f32>().unwrap(), eager);
    let text = f.concrete_functions()[0].ir_text();
    assert!(text.contains("stateless=true"), "{text}");
    let parsed = tensorjit::ir::parse(&text).expect("the IR text parses");
    assert_eq!(parsed.to_string(), text, "round trip");
    let err =
        std::panic::catch_unwind(|| random::stateless_uniform([2], 0.0, 1.0, DType::F32, 5, &Tensor::scalar(1.0f32)));
    let msg = err.unwrap_err().downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("random_uniform: a stateless draw takes one i64 scalar counter, got [f32[]]"), "{msg}");
}

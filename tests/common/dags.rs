//! Random well-typed op DAGs for the differential tests (tests/jit.rs: Cranelift
//! against the interpreter; tests/ptx_fuzz.rs: device plans of PTX kernels against the
//! CPU).

use proptest::prelude::*;
use tensorjit::prelude::*;

/// A random op DAG: each step applies an op to earlier values (by index mod count).
#[derive(Clone, Debug)]
pub enum Step {
    Unary(u8, usize),
    Binary(u8, usize, usize),
    Scalar(u8, usize, f32),
}

/// The DAG of `steps` on `inputs`; `reduce` 1 or 2 adds the row sum or mean of the
/// result back to it (a reduction fused at the end of a random kernel).
pub fn apply(steps: &[Step], inputs: &[Tensor], reduce: usize) -> Tensor {
    let mut vals: Vec<Tensor> = inputs.to_vec();
    for s in steps {
        let pick = |i: &usize| vals[i % vals.len()].clone();
        let t = match s {
            Step::Unary(k, a) => {
                let x = pick(a);
                match k % 10 {
                    0 => x.neg(),
                    1 => x.abs(),
                    2 => x.relu(),
                    3 => x.tanh(),
                    4 => x.sigmoid(),
                    5 => (x.abs() + 1.0).log(),
                    6 => x.minimum(20.0).exp(),
                    // Ops no kernel fuses: the plans split around them.
                    7 => x.erf(),
                    8 => x.sin(),
                    _ => x.square().sqrt(),
                }
            }
            Step::Binary(k, a, b) => {
                let (x, y) = (pick(a), pick(b));
                match k % 6 {
                    0 => &x + &y,
                    1 => &x - &y,
                    2 => &x * &y,
                    3 => x.maximum(&y),
                    4 => &x % &(y.abs() + 0.5),
                    _ => x.minimum(&y),
                }
            }
            Step::Scalar(k, a, c) if k % 4 == 3 => {
                let x = pick(a);
                Tensor::where_(&x.gt(*c), &x, &x * *c)
            }
            Step::Scalar(k, a, c) => {
                let x = pick(a);
                match k % 3 {
                    0 => &x * *c,
                    1 => &x + *c,
                    _ => &x / (c.abs() + 0.5),
                }
            }
        };
        vals.push(t);
    }
    let n = vals.len();
    // Combine the last two values so that more than one result of the DAG matters.
    let z = &vals[n - 1] + &vals[n.saturating_sub(2)];
    match reduce {
        1 => &z + &z.sum([-1i64], true),
        2 => &z * &z.mean([-1i64], true),
        _ => z,
    }
}

/// The DAG's two inputs: `x` of `[r, c]` and a bias broadcast along rows (`[c]`) or
/// along columns (`[r, 1]`), fresh random values from `seed`.
pub fn inputs(seed: u64, bias_row: bool, (r, c): (usize, usize)) -> Vec<Tensor> {
    let x = super::rand_f32(seed, &[r, c], -3.0, 3.0);
    let bias: &[usize] = if bias_row { &[c] } else { &[r, 1] };
    vec![x, super::rand_f32(seed ^ 1, bias, -3.0, 3.0)]
}

pub fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (any::<u8>(), 0usize..64).prop_map(|(k, a)| Step::Unary(k, a)),
        (any::<u8>(), 0usize..64, 0usize..64).prop_map(|(k, a, b)| Step::Binary(k, a, b)),
        (any::<u8>(), 0usize..64, -3.0f32..3.0).prop_map(|(k, a, c)| Step::Scalar(k, a, c)),
    ]
}

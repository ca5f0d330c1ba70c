//! Reductions fused into the kernel of their elementwise producers: the compiled row
//! sums follow the runtime's canonical order, so they are the interpreter's and the
//! eager kernels' bits — at every row length up to one canonical block, with and
//! without full outputs beside them, in parallel pieces, and inside loops.

mod common;
use common::*;
use tensorjit::prelude::*;
use tensorjit::trace::backend::interpret;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

type Body = fn(&[Tensor]) -> Vec<Tensor>;

/// Runs `body` traced, through the interpreter on its graph and eagerly; asserts the
/// three agree bit for bit and returns the compiled plan's text.
fn check(name: &str, body: Body, args: &[Tensor]) -> String {
    let f = function(name, move |v: Vec<Tensor>| body(&v));
    let jit = f.call(args.to_vec());
    let cf = f.concrete_functions()[0].clone();
    assert_eq!(cf.backend(), "cranelift");
    let interp = interpret(&cf.graph, args, &[]).expect("the interpreter runs it");
    let eager = body(args);
    for (i, ((j, k), e)) in jit.iter().zip(&interp).zip(&eager).enumerate() {
        assert_eq!(j.shape(), e.shape(), "{name} result {i}: shape");
        assert_eq!(bits(j), bits(k), "{name} result {i}: jit vs interpreter");
        assert_eq!(bits(j), bits(e), "{name} result {i}: jit vs eager");
    }
    let text = cf.compiled_text();
    text.split("plan:").nth(1).unwrap_or_default().to_string()
}

#[test]
fn row_sums_of_fused_producers_match_at_every_length() {
    let bodies: [(&str, Body); 4] = [
        ("sum", |v| vec![(&v[0] * &v[1] + 0.25).sum([-1i64], false)]),
        ("mean_keepdims", |v| vec![(&v[0] - &v[1]).square().mean([-1i64], true)]),
        ("softmax_parts", |v| {
            let e = (&v[0] - 1.0).exp();
            let s = e.sum([-1i64], true);
            vec![&e / &s, s]
        }),
        ("bias_row", |v| vec![(&v[0] + &v[1]).relu().sum([1i64], false)]),
    ];
    let mut seed = 7000;
    for cols in [1usize, 3, 7, 8, 9, 16, 50, 783, 4096] {
        for rows in [1usize, 5, 33] {
            for (name, body) in bodies {
                seed += 2;
                let x = rand_f32(seed, &[rows, cols], -3.0, 3.0);
                let y = if name == "bias_row" {
                    rand_f32(seed + 1, &[cols], -1.0, 1.0)
                } else {
                    rand_f32(seed + 1, &[rows, cols], -3.0, 3.0)
                };
                let plan = check(&format!("{name}_{rows}x{cols}"), body, &[x, y]);
                assert!(plan.contains(" per row"), "{name} {rows}x{cols}: the reduction was not fused:\n{plan}");
                assert!(!plan.contains("= reduce_"), "{name} {rows}x{cols}: a reduction step is left:\n{plan}");
            }
        }
    }
}

#[test]
fn long_rows_and_other_axes_stay_eager_reductions() {
    // Rows longer than one canonical block, and sums over a leading axis: the eager
    // kernel runs them (same bits, as everywhere).
    let long =
        check("long_rows", |v| vec![(&v[0] * 2.0).exp().sum([-1i64], false)], &[rand_f32(1, &[3, 5000], -2.0, 2.0)]);
    assert!(long.contains("= reduce_sum"), "{long}");
    let lead = check("leading_axis", |v| vec![(&v[0] * 2.0).sum([0i64], false)], &[rand_f32(2, &[40, 30], -2.0, 2.0)]);
    assert!(lead.contains("= reduce_sum"), "{lead}");
}

#[test]
fn many_rows_split_over_threads_with_the_same_sums() {
    let x = rand_f32(11, &[700, 300], -4.0, 4.0);
    let y = rand_f32(12, &[700, 300], -4.0, 4.0);
    let plan = check("parallel_rows", |v| vec![(&v[0] * &v[1]).tanh().sum([-1i64], false)], &[x, y]);
    assert!(plan.contains(" per row"), "{plan}");
    // Few long rows: never split inside a row.
    let x = rand_f32(13, &[4, 4096], -4.0, 4.0);
    let plan = check("few_long_rows", |v| vec![(&v[0] + 0.5).mean([-1i64], false)], &[x.clone(), x]);
    assert!(plan.contains(" per row"), "{plan}");
}

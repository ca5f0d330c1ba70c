//! Control flow on tensor values (`cond`, `while_loop`, `for_range`): eager vs traced
//! parity bit for bit, one region per construct in the graph, effects in order,
//! gradients, and the errors for what cannot be traced.

mod common;
use std::sync::Arc;

use common::*;
use tensorjit::prelude::*;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

/// W6 of WORKLOADS.md: `while sum(x) < 1000: x = x*1.5 + 1`.
fn w6(x: &Tensor) -> Tensor {
    while_loop(|x: &Tensor| x.sum_all().lt(1000.0), |x| &x * 1.5 + 1.0, x.clone())
}

#[test]
fn w6_while_loop_matches_eager_and_is_one_while_region() {
    let f = function("w6", |x: Tensor| w6(&x));
    let x = Tensor::ones([16], DType::F32);
    let eager = w6(&x);
    assert_eq!(f32s(&eager), vec![74.88672; 16]);
    assert_eq!(f32s(&eager).iter().sum::<f32>(), 1198.1875);
    let traced = f.call(x.clone());
    assert_eq!(bits(&traced), bits(&eager));
    // Other data, same trace: the trip count is decided at run time.
    let y = rand_f32(1, &[16], 0.5, 30.0);
    assert_eq!(bits(&f.call(y.clone())), bits(&w6(&y)));
    assert_eq!(f.tracing_count(), 1);
    let text = f.concrete_functions()[0].ir_text();
    assert_eq!(text.matches("while[").count(), 1, "{text}");
    assert_eq!(text.matches("reduce_sum").count(), 1, "one traced condition, not an unrolled chain:\n{text}");
    golden("w6", &text);
    let dot = f.concrete_functions()[0].dot();
    assert!(dot.contains("subgraph cluster_n0_cond") && dot.contains("subgraph cluster_n0_body"), "{dot}");
}

fn piecewise(x: &Tensor) -> Tensor {
    // Nested conds on tensor scalars, with outer values captured inside the branches.
    let s = x.sum_all();
    cond(
        &s.gt(0.0),
        || cond(&s.gt(10.0), || x * 2.0, || x.exp()),
        || cond(&s.lt(-10.0), || x.abs().sqrt(), || x.tanh() - 1.0),
    )
}

#[test]
fn nested_conds_pick_the_branch_at_run_time_bit_for_bit() {
    let f = function("piecewise", |x: Tensor| piecewise(&x));
    for (seed, lo, hi) in [(1, 0.5, 2.0), (2, 0.0, 0.1), (3, -2.0, -0.5), (4, -0.1, 0.0), (5, -1.0, 1.0)] {
        let x = rand_f32(seed, &[17], lo, hi);
        assert_eq!(bits(&f.call(x.clone())), bits(&piecewise(&x)), "seed {seed}");
    }
    assert_eq!(f.tracing_count(), 1);
    let text = f.concrete_functions()[0].ir_text();
    assert_eq!(text.matches(" = cond ").count(), 3, "{text}");
}

#[test]
fn cond_outputs_may_be_tuples_and_generalise_dims() {
    let f = function("grow", |x: Tensor| {
        let n = x.sum_all();
        cond(&n.gt(0.0), || (x.clone(), n.clone()), || (Tensor::concat(&[&x, &x], 0), n.neg()))
    });
    let x = rand_f32(6, &[3], 0.1, 1.0);
    let (a, s) = f.call(x.clone());
    assert_eq!(a.dims(), &[3]);
    assert_eq!(bits(&s), bits(&x.sum_all()));
    let (b, _) = f.call(x.neg());
    assert_eq!(b.dims(), &[6], "the else branch's shape at run time");
    assert!(f.concrete_functions()[0].ir_text().contains("f32[?], %"), "{}", f.concrete_functions()[0].ir_text());
}

#[test]
fn cond_with_a_concrete_predicate_picks_at_trace_time() {
    let f = function("static_pred", |x: Tensor| cond(&Tensor::scalar(true), || &x + 1.0, || &x - 1.0));
    let x = rand_f32(7, &[4], -1.0, 1.0);
    assert_eq!(bits(&f.call(x.clone())), bits(&(&x + 1.0)));
    assert!(!f.concrete_functions()[0].ir_text().contains("cond"));
}

#[test]
fn cond_branches_must_agree() {
    let f = function("bad_dtype", |x: Tensor| cond(&x.sum_all().gt(0.0), || x.clone(), || x.cast(DType::F64)));
    let m = panic_message(std::panic::AssertUnwindSafe(|| {
        f.call(rand_f32(8, &[2], -1.0, 1.0));
    }));
    assert!(m.contains("cond: output 0 is f32[2] in the then branch but f64[2] in the else branch"), "{m}");
    assert!(m.contains("control_flow.rs:"), "names the user's line: {m}");
    let g = function("bad_structure", |x: Tensor| {
        cond(&x.sum_all().gt(0.0), || vec![x.clone()], || vec![x.clone(), x.clone()])
    });
    let m = panic_message(std::panic::AssertUnwindSafe(|| {
        g.call(rand_f32(9, &[2], -1.0, 1.0));
    }));
    assert!(m.contains("must return the same structure"), "{m}");
    let m = panic_message(|| {
        cond(&rand_f32(10, &[2], -1.0, 1.0).gt(0.0), || Tensor::scalar(1), || Tensor::scalar(2));
    });
    assert!(m.contains("cond: needs a scalar bool predicate, got bool[2]"), "{m}");
}

#[test]
fn values_computed_in_a_branch_cannot_escape_it() {
    let f = function("escape", |x: Tensor| {
        let mut leaked = None;
        let y = cond(
            &x.sum_all().gt(0.0),
            || {
                let t = x.exp();
                leaked = Some(t.clone());
                t
            },
            || x.clone(),
        );
        y + leaked.unwrap()
    });
    let m = panic_message(std::panic::AssertUnwindSafe(|| {
        f.call(rand_f32(11, &[2], -1.0, 1.0));
    }));
    assert!(m.contains("computed inside a cond branch or a while_loop body was used outside it"), "{m}");
}

#[test]
fn while_loop_with_several_loop_variables_and_a_captured_bound() {
    // Collatz steps of n with a counter: two i64 loop variables, the bound captured.
    fn collatz(n: &Tensor, limit: &Tensor) -> (Tensor, Tensor) {
        while_loop(
            |(n, k): &(Tensor, Tensor)| n.gt(1i64).logical_and(k.lt(limit)),
            |(n, k)| {
                let even = n.floordiv(2i64);
                let odd = &n * 3i64 + 1i64;
                (Tensor::where_(&(&n - &even * 2i64).eq(0i64), &even, &odd), k + 1i64)
            },
            (n.clone(), Tensor::scalar(0i64)),
        )
    }
    let f = function("collatz", |(n, limit): (Tensor, Tensor)| collatz(&n, &limit));
    for (n, steps) in [(27i64, 111i64), (1, 0), (6, 8), (97, 118)] {
        let (end, k) = f.call((Tensor::scalar(n), Tensor::scalar(1000i64)));
        assert_eq!((end.to_scalar::<i64>().unwrap(), k.to_scalar::<i64>().unwrap()), (1, steps), "n = {n}");
    }
    let (end, k) = f.call((Tensor::scalar(27i64), Tensor::scalar(5i64)));
    assert_eq!(k.to_scalar::<i64>().unwrap(), 5);
    assert_eq!(
        end.to_scalar::<i64>().unwrap(),
        collatz(&Tensor::scalar(27i64), &Tensor::scalar(5i64)).0.to_scalar::<i64>().unwrap()
    );
    assert_eq!(f.tracing_count(), 1);
}

#[test]
fn maximum_iterations_stops_the_loop_eagerly_and_traced() {
    let run = |x: &Tensor| {
        while_loop_with(
            |x: &Tensor| x.sum_all().lt(1e9),
            |x| &x * 2.0,
            x.clone(),
            &WhileOptions::new().maximum_iterations(5),
        )
    };
    let f = function("bounded", move |x: Tensor| run(&x));
    let x = rand_f32(12, &[5], 0.5, 1.0);
    let eager = run(&x);
    assert_eq!(bits(&eager), bits(&(&x * 32.0)));
    assert_eq!(bits(&f.call(x)), bits(&eager));
    assert!(f.concrete_functions()[0].ir_text().contains("while[max_iterations=5]"));
}

#[test]
fn loop_variables_must_keep_their_shape_unless_an_invariant_allows_it() {
    let grow = |x: Tensor, opts: WhileOptions| {
        while_loop_with(|x: &Tensor| x.sum_all().lt(100.0), |x| Tensor::concat(&[&x, &x], 0), x, &opts)
    };
    let f = function("grow_bad", move |x: Tensor| grow(x, WhileOptions::new()));
    let m = panic_message(std::panic::AssertUnwindSafe(|| {
        f.call(rand_f32(13, &[2], 1.0, 2.0));
    }));
    assert!(m.contains("loop variable 0 has shape [2] before the loop but [4] after one trip"), "{m}");
    assert!(m.contains("shape_invariants"), "{m}");
    let g = function("grow_ok", move |x: Tensor| {
        grow(x, WhileOptions::new().shape_invariants(vec![Shape::with_unknown(&[None])]))
    });
    let x = rand_f32(14, &[2], 1.0, 2.0);
    let out = g.call(x.clone());
    assert_eq!(bits(&out), bits(&grow(x, WhileOptions::new())));
    assert_eq!(out.dims(), &[64]);
}

#[test]
fn effects_in_branches_and_loop_bodies_run_as_eagerly() {
    // A loop that assigns a variable on every trip and, on odd trips, a second one.
    let body = |counter: &Variable, odd: &Variable, x: &Tensor| {
        let (_, y) = while_loop(
            |(i, _): &(Tensor, Tensor)| i.lt(7i32),
            |(i, y)| {
                counter.assign_add(Tensor::scalar(1.0f32));
                cond(&(&i - i.floordiv(2) * 2).eq(1), || odd.assign_add(y.sum_all()), || {});
                (i + 1, &y * 1.25 - 0.5)
            },
            (Tensor::scalar(0i32), x.clone()),
        );
        y
    };
    let (c1, o1) = (Variable::new(Tensor::scalar(0.0f32), "c"), Variable::new(Tensor::scalar(0.0f32), "o"));
    let (c2, o2) = (Variable::new(Tensor::scalar(0.0f32), "c"), Variable::new(Tensor::scalar(0.0f32), "o"));
    let x = rand_f32(15, &[6], -1.0, 1.0);
    let eager = body(&c1, &o1, &x);
    let (c, o) = (c2.clone(), o2.clone());
    let f = function("effects", move |x: Tensor| body(&c, &o, &x));
    let traced = f.call(x.clone());
    assert_eq!(bits(&traced), bits(&eager));
    assert_eq!(bits(&c2.read()), bits(&c1.read()));
    assert_eq!(bits(&o2.read()), bits(&o1.read()));
    assert_eq!(c2.read().to_scalar::<f32>().unwrap(), 7.0);
    f.call(x);
    assert_eq!(c2.read().to_scalar::<f32>().unwrap(), 14.0, "the traced loop's effects run on every call");
    let g = &f.concrete_functions()[0].graph;
    tensorjit::ir::verify(g).unwrap();
    assert!(g.effect_count() >= 4, "{g}");
}

#[test]
fn for_range_over_tensor_bounds() {
    let fizz = |n: &Tensor| {
        // Σ over i in [1, n) of i where i % 3 == 0 or i % 5 == 0 (a FizzBuzz sum).
        for_range(&tf_range(1, n, 1), Tensor::scalar(0i64), |i, acc| {
            let hit = (i - i.floordiv(3i64) * 3i64).eq(0i64).logical_or((i - i.floordiv(5i64) * 5i64).eq(0i64));
            Tensor::where_(&hit, &acc + i, &acc)
        })
    };
    let f = function("fizz", move |n: Tensor| fizz(&n));
    for n in [1i64, 10, 1000] {
        let want: i64 = (1..n).filter(|i| i % 3 == 0 || i % 5 == 0).sum();
        assert_eq!(fizz(&Tensor::scalar(n)).to_scalar::<i64>().unwrap(), want);
        assert_eq!(f.call(Tensor::scalar(n)).to_scalar::<i64>().unwrap(), want);
    }
    assert_eq!(f.tracing_count(), 1);
    // Negative steps, and eager iteration as a Rust iterator.
    let down: Vec<i32> = tf_range(5, 0, -2).map(|t| t.to_scalar::<i32>().unwrap()).collect();
    assert_eq!(down, vec![5, 3, 1]);
    let m = panic_message(|| {
        tf_range(0, 3, 0);
    });
    assert!(m.contains("step must not be zero"), "{m}");
}

fn grad_setup(seed: u64) -> (Tensor, Variable) {
    (rand_f32(seed, &[5], -1.0, 1.0), Variable::new(rand_f32(seed + 100, &[5], -1.0, 1.0), "w"))
}

/// A loss through a cond whose branches use the input, a variable and a captured value.
fn cond_value(x: &Tensor, w: &Variable) -> Tensor {
    let s = x.sum_all();
    let h = x * 3.0;
    cond(&s.gt(0.0), || (&h * &w.read()).tanh(), || x.square() * &s + w.read().exp()).sum_all()
}

fn cond_loss(x: &Tensor, w: &Variable) -> (Tensor, Vec<Option<Tensor>>) {
    let tape = GradientTape::new();
    tape.watch(x);
    let loss = cond_value(x, w);
    let g = tape.gradient(&loss, &[x as &dyn tensorjit::Source, w]);
    (loss, g)
}

#[test]
fn gradients_through_a_traced_cond_match_eager() {
    for seed in [20u64, 21, 22, 23] {
        let (x, w) = grad_setup(seed);
        let (loss, g) = cond_loss(&x, &w);
        let w2 = w.clone();
        let f = function("cond_grad", move |x: Tensor| {
            let (l, g) = cond_loss(&x, &w2);
            (l, g[0].clone().unwrap(), g[1].clone().unwrap())
        });
        let (tl, gx, gw) = f.call(x.clone());
        assert_eq!(bits(&tl), bits(&loss));
        assert_close(&f64s(&gx.cast(DType::F64)), &f64s(&g[0].clone().unwrap().cast(DType::F64)), 1e-6);
        assert_close(&f64s(&gw.cast(DType::F64)), &f64s(&g[1].clone().unwrap().cast(DType::F64)), 1e-6);
    }
}

/// A bounded loop whose body uses the input and a variable.
fn loop_value(x: &Tensor, w: &Variable) -> Tensor {
    let y = while_loop_with(
        |y: &Tensor| y.abs().sum_all().lt(50.0),
        |y| (&y * &w.read() + x).tanh() * 3.0 + &y,
        x.clone(),
        &WhileOptions::new().maximum_iterations(6),
    );
    y.square().sum_all()
}

fn loop_loss(x: &Tensor, w: &Variable) -> (Tensor, Vec<Option<Tensor>>) {
    let tape = GradientTape::new();
    tape.watch(x);
    let loss = loop_value(x, w);
    let g = tape.gradient(&loss, &[x as &dyn tensorjit::Source, w]);
    (loss, g)
}

/// A gradient asked for one source alone is, bit for bit, the one asked for with the
/// others — through `cond` and `while_loop` too, whose backward rules are told which
/// inputs lead to a requested source — eager and traced.
#[test]
fn a_gradient_for_one_source_is_the_one_for_all() {
    let grads = |value: fn(&Tensor, &Variable) -> Tensor, x: &Tensor, w: &Variable| {
        let tape = GradientTape::persistent();
        tape.watch(x);
        let loss = value(x, w);
        let all = tape.gradient(&loss, &[x as &dyn tensorjit::Source, w]);
        let alone = [tape.gradient(&loss, &[x])[0].clone(), tape.gradient(&loss, &[w])[0].clone()];
        (all.into_iter().map(Option::unwrap).collect::<Vec<_>>(), alone.map(Option::unwrap))
    };
    for seed in [30u64, 31, 32] {
        let (x, w) = grad_setup(seed);
        for (name, value) in [("cond", cond_value as fn(&Tensor, &Variable) -> Tensor), ("while", loop_value)] {
            let (all, alone) = grads(value, &x, &w);
            assert_eq!(bits(&alone[0]), bits(&all[0]), "{name}: d/dx");
            assert_eq!(bits(&alone[1]), bits(&all[1]), "{name}: d/dw");
            let w2 = w.clone();
            let f = function("one_source", move |x: Tensor| {
                let (all, alone) = grads(value, &x, &w2);
                (all[0].clone(), all[1].clone(), alone[0].clone(), alone[1].clone())
            });
            let (ax, aw, ox, ow) = f.call(x.clone());
            assert_eq!((bits(&ox), bits(&ow)), (bits(&ax), bits(&aw)), "{name}, traced");
        }
    }
}

#[test]
fn gradients_through_a_bounded_traced_while_loop_match_eager() {
    for seed in [30u64, 31, 32] {
        let (x, w) = grad_setup(seed);
        let (loss, g) = loop_loss(&x, &w);
        let w2 = w.clone();
        let f = function("loop_grad", move |x: Tensor| {
            let (l, g) = loop_loss(&x, &w2);
            (l, g[0].clone().unwrap(), g[1].clone().unwrap())
        });
        let (tl, gx, gw) = f.call(x.clone());
        assert_eq!(bits(&tl), bits(&loss), "seed {seed}");
        assert_close(&f64s(&gx.cast(DType::F64)), &f64s(&g[0].clone().unwrap().cast(DType::F64)), 1e-5);
        assert_close(&f64s(&gw.cast(DType::F64)), &f64s(&g[1].clone().unwrap().cast(DType::F64)), 1e-5);
    }
}

#[test]
fn gradient_through_an_unbounded_traced_while_loop_is_a_clear_error() {
    let f = function("unbounded", |x: Tensor| {
        let tape = GradientTape::new();
        tape.watch(&x);
        let y = while_loop(|y: &Tensor| y.sum_all().lt(10.0), |y| &y * 2.0, x.clone());
        tape.gradient(&y.sum_all(), &[&x])[0].clone().unwrap()
    });
    let m = panic_message(std::panic::AssertUnwindSafe(|| {
        f.call(rand_f32(40, &[3], 0.5, 1.0));
    }));
    assert!(m.contains("cannot differentiate a traced while_loop with an unbounded trip count"), "{m}");
    assert!(m.contains("maximum_iterations"), "{m}");
    // Eagerly the tape sees every trip: no bound needed.
    let x = rand_f32(41, &[3], 0.5, 1.0);
    let tape = GradientTape::new();
    tape.watch(&x);
    let y = while_loop(|y: &Tensor| y.sum_all().lt(10.0), |y| &y * 2.0, x.clone());
    let g = tape.gradient(&y.sum_all(), &[&x])[0].clone().unwrap();
    let trips = (10.0f32 / f32s(&x).iter().sum::<f32>()).log2().ceil().max(0.0);
    assert_eq!(f32s(&g), vec![2f32.powf(trips); 3]);
}

#[test]
fn traced_loops_are_safe_to_call_from_many_threads() {
    let f = Arc::new(function("w6_threads", |x: Tensor| w6(&x)));
    let handles: Vec<_> = (0..4)
        .map(|k| {
            let f = f.clone();
            std::thread::spawn(move || {
                let x = rand_f32(50 + k, &[16], 0.5, 5.0);
                (bits(&f.call(x.clone())), bits(&w6(&x)))
            })
        })
        .collect();
    for h in handles {
        let (a, b) = h.join().unwrap();
        assert_eq!(a, b);
    }
}

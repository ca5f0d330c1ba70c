//! The Cranelift JIT against its oracles: every compiled concrete function must give the
//! interpreter's and the eager kernels' bits — per op at odd sizes and broadcasts, and
//! on random well-typed op DAGs (proptest).

mod common;
use common::dags::{apply, inputs, step};
use common::*;
use proptest::prelude::*;
use tensorjit::ir::Graph;
use tensorjit::prelude::*;
use tensorjit::trace::backend::interpret;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

/// Runs `f` traced (JIT), through the interpreter on the same graph, and eagerly.
fn three_ways(f: fn(&[Tensor]) -> Tensor, args: &[Tensor]) -> (Tensor, Tensor, Tensor, Graph, &'static str) {
    let func = function("under_test", move |v: Vec<Tensor>| f(&v));
    let jit = func.call(args.to_vec());
    let cf = func.concrete_functions()[0].clone();
    let interp = interpret(&cf.graph, args, &[]).unwrap().remove(0);
    (jit, interp, f(args), cf.graph.clone(), cf.backend())
}

type OpFn = fn(&[Tensor]) -> Tensor;
type Case = (&'static str, OpFn, f64, f64);

fn unary_cases() -> Vec<Case> {
    vec![
        ("neg", |x| x[0].neg(), -5.0, 5.0),
        ("abs", |x| x[0].abs(), -5.0, 5.0),
        ("square", |x| x[0].square(), -5.0, 5.0),
        ("relu", |x| x[0].relu(), -5.0, 5.0),
        ("sqrt", |x| x[0].sqrt(), 0.0, 9.0),
        ("exp", |x| x[0].exp(), -90.0, 90.0),
        ("log", |x| x[0].log(), 1e-3, 1e4),
        ("tanh", |x| x[0].tanh(), -10.0, 10.0),
        ("sigmoid", |x| x[0].sigmoid(), -20.0, 20.0),
        ("softplus", |x| x[0].softplus(), -20.0, 20.0),
    ]
}

#[test]
fn every_fused_op_matches_interpreter_and_eager_at_odd_sizes() {
    for (k, (name, f, lo, hi)) in unary_cases().into_iter().enumerate() {
        for (j, n) in [1usize, 3, 50, 783, 4096].into_iter().enumerate() {
            let x = rand_f32(1000 + (k * 10 + j) as u64, &[n], lo, hi);
            let (jit, interp, eager, _, backend) = three_ways(f, std::slice::from_ref(&x));
            assert_eq!(backend, "cranelift");
            assert_eq!(bits(&jit), bits(&interp), "{name} n={n}: jit vs interpreter");
            assert_eq!(bits(&jit), bits(&eager), "{name} n={n}: jit vs eager");
        }
    }
}

#[test]
fn binary_ops_with_broadcasting_shapes_match() {
    let cases: Vec<(&str, OpFn)> = vec![
        ("add", |x| &x[0] + &x[1]),
        ("sub", |x| &x[0] - &x[1]),
        ("mul", |x| &x[0] * &x[1]),
        ("div", |x| &x[0] / &x[1]),
        ("maximum", |x| x[0].maximum(&x[1])),
        ("minimum", |x| x[0].minimum(&x[1])),
        ("where >", |x| Tensor::where_(&x[0].gt(&x[1]), &x[0], &x[1] * 2.0)),
        ("where <= !=", |x| Tensor::where_(&x[0].le(&x[1]), &x[1], 0.0) + Tensor::where_(&x[0].ne(&x[1]), 1.0, &x[0])),
        ("where == >= <", |x| {
            Tensor::where_(&x[0].eq(&x[1]), 3.0, &x[0])
                * Tensor::where_(&x[0].ge(0.0), &x[1], x[0].lt(-1.0).cast(DType::F32))
        }),
    ];
    let shapes: [(&[usize], &[usize]); 6] = [
        (&[7, 13], &[7, 13]),
        (&[7, 13], &[13]),
        (&[7, 13], &[7, 1]),
        (&[7, 13], &[]),
        (&[3], &[1]),
        (&[2, 5, 9], &[9]),
    ];
    for (k, (name, f)) in cases.into_iter().enumerate() {
        for (j, (sa, sb)) in shapes.iter().enumerate() {
            let a = rand_f32(2000 + (k * 10 + j) as u64, sa, -3.0, 3.0);
            let b = rand_f32(3000 + (k * 10 + j) as u64, sb, 0.5, 3.0);
            for args in [vec![a.clone(), b.clone()], vec![b.clone(), a.clone()]] {
                let (jit, interp, eager, _, _) = three_ways(f, &args);
                assert_eq!(jit.dims(), eager.dims());
                assert_eq!(bits(&jit), bits(&interp), "{name} {sa:?} {sb:?}");
                assert_eq!(bits(&jit), bits(&eager), "{name} {sa:?} {sb:?}");
            }
        }
    }
}

#[test]
fn mixed_graphs_fall_back_per_node_and_keep_effects() {
    // matmul and reductions run their eager kernels; the elementwise runs are fused;
    // the variable assign happens on every call.
    let v = Variable::new(rand_f32(40, &[4], -1.0, 1.0), "v");
    let v2 = v.clone();
    let f = function("mixed", move |(x, w): (Tensor, Tensor)| {
        let h = (x.matmul(&w) + v2.read()).relu();
        let y = h.softmax(-1) * 2.0 - 1.0;
        v2.assign(&v2.read() * 0.5 + 1.0);
        y.sum(0, false)
    });
    let (x, w) = (rand_f32(41, &[5, 3], -1.0, 1.0), rand_f32(42, &[3, 4], -1.0, 1.0));
    let want = {
        let h = (x.matmul(&w) + v.read()).relu();
        (h.softmax(-1) * 2.0 - 1.0).sum(0, false)
    };
    let got = f.call((x.clone(), w.clone()));
    assert_eq!(bits(&got), bits(&want));
    assert_eq!(f.concrete_functions()[0].backend(), "cranelift");
    let after = f32s(&v.read());
    f.call((x, w));
    let again = f32s(&v.read());
    assert!(after.iter().zip(&again).all(|(a, b)| *b == *a * 0.5 + 1.0), "assign runs every call");
}

#[test]
fn control_flow_runs_compiled() {
    let f = function("loop", |x: Tensor| while_loop(|x: &Tensor| x.sum_all().lt(10.0), |x| &x * 2.0 + 0.5, x));
    let x = rand_f32(43, &[3], 0.5, 1.0);
    let y = f.call(x.clone());
    let cf = f.concrete_functions()[0].clone();
    assert_eq!(cf.backend(), "cranelift");
    assert!(cf.compiled_text().contains("= while "), "{}", cf.compiled_text());
    assert_eq!(bits(&y), bits(&interpret(&cf.graph, &[x], &[]).unwrap()[0]));
}

#[test]
fn unknown_dims_compile_once_per_input_shape() {
    let g = function("unknown", |(x, b): (Tensor, Tensor)| (x.matmul(&b).relu() * 2.0 + 1.0).softmax(-1))
        .with_input_signature(vec![
            TensorSpec::new(DType::F32, &[None, Some(6)]),
            TensorSpec::new(DType::F32, &[Some(6), Some(4)]),
        ]);
    let b = rand_f32(50, &[6, 4], -1.0, 1.0);
    for (k, batch) in [3usize, 5, 3, 1].into_iter().enumerate() {
        let x = rand_f32(51 + k as u64, &[batch, 6], -1.0, 1.0);
        let got = g.call((x.clone(), b.clone()));
        let want = (x.matmul(&b).relu() * 2.0 + 1.0).softmax(-1);
        assert_eq!(bits(&got), bits(&want), "batch {batch}");
    }
    assert_eq!(g.tracing_count(), 1);
    let cf = g.concrete_functions()[0].clone();
    assert_eq!(cf.backend(), "cranelift");
    let text = cf.compiled_text();
    assert!(text.contains("specialised per input shapes (3 so far)") && text.contains("= kernel"), "{text}");
    // A loop variable that grows cannot be specialised: the interpreter runs it.
    let grow = function("grow", |x: Tensor| {
        while_loop_with(
            |x: &Tensor| x.sum_all().lt(100.0),
            |x| Tensor::concat(&[&x, &x], 0),
            x,
            &WhileOptions::new().shape_invariants(vec![Shape::with_unknown(&[None])]),
        )
    });
    assert_eq!(grow.call(rand_f32(55, &[2], 1.0, 2.0)).dims(), &[64]);
}

#[test]
fn loops_may_yield_their_variables_permuted() {
    // (a, b) → (b, a + b): Fibonacci in f32, compiled, interpreted and eager.
    let fib = |n: &Tensor| {
        while_loop(
            |(a, _, k): &(Tensor, Tensor, Tensor)| a.lt(1e6f32).logical_and(k.lt(n)),
            |(a, b, k)| (b.clone(), &a + &b, k + 1),
            (Tensor::scalar(0.0f32), Tensor::scalar(1.0f32), Tensor::scalar(0i32)),
        )
    };
    let f = function("fib", move |n: Tensor| fib(&n).0);
    let n = Tensor::scalar(20i32);
    assert_eq!(f.call(n.clone()).to_scalar::<f32>().unwrap(), 6765.0);
    assert_eq!(f.call(n.clone()).to_scalar::<f32>().unwrap(), fib(&n).0.to_scalar::<f32>().unwrap());
    let cf = f.concrete_functions()[0].clone();
    assert_eq!(interpret(&cf.graph, &[n], &[]).unwrap()[0].to_scalar::<f32>().unwrap(), 6765.0);
}

/// Loops whose regions are kernels, whole reductions and scalar compares run over one
/// arena (no tensors per trip): same bits as the interpreter and eager code, with
/// several loop variables yielded permuted, a captured tensor, each reduction, and
/// `maximum_iterations`.
#[test]
fn arena_loops_give_the_interpreters_and_eager_bits() {
    type State = (Tensor, Tensor, Tensor);
    fn run(x: &Tensor, w: &Tensor, max: Option<u64>) -> State {
        let w = w.clone();
        let opts = match max {
            Some(m) => WhileOptions::new().maximum_iterations(m),
            None => WhileOptions::new(),
        };
        while_loop_with(
            |(a, b, _): &State| (a.sum_all() + b.max(Axes::All, false)).lt(50.0),
            // (a, b, c) -> (b·0.9 + w, b + |tanh(a)|·1.5 + w + |mean c|, a): permuted and
            // mixed; b grows by ≥ w each trip, so the loop ends.
            move |(a, b, c): State| {
                let grow = a.tanh().abs() * 1.5 + &w + c.mean(Axes::All, false).abs();
                (&b * 0.9 + &w, &b + &grow, a)
            },
            (x.clone(), x * 0.5, x.min(Axes::All, false) + x),
            &opts,
        )
    }
    for (k, (n, max)) in [(7usize, None), (50, None), (783, Some(3u64)), (1, None)].into_iter().enumerate() {
        let f = function("arena", move |(x, w): (Tensor, Tensor)| run(&x, &w, max));
        let x = rand_f32(600 + k as u64, &[n], -1.0, 1.0);
        let w = rand_f32(700 + k as u64, &[n], 0.05, 0.3);
        let got = f.call((x.clone(), w.clone()));
        let want = run(&x, &w, max);
        let cf = f.concrete_functions().last().cloned().unwrap();
        assert!(cf.compiled_text().contains("(arena loop)"), "{}", cf.compiled_text());
        let interp = interpret(&cf.graph, &[x.clone(), w.clone()], &[]).unwrap();
        for (i, (g, e)) in [(&got.0, &want.0), (&got.1, &want.1), (&got.2, &want.2)].into_iter().enumerate() {
            assert_eq!(bits(g), bits(e), "n={n} output {i} vs eager");
            assert_eq!(bits(g), bits(&interp[i]), "n={n} output {i} vs interpreter");
        }
    }
}

/// Functions that are one kernel run without a value table: outputs in any order, a
/// captured tensor constant, a result returned twice and a parameter returned as is all
/// give the eager bits.
#[test]
fn one_kernel_functions_return_every_result_in_order() {
    let c = rand_f32(801, &[5, 3], -1.0, 1.0);
    let cc = c.clone();
    let body = move |(x, y): (Tensor, Tensor)| {
        let a = (&x * &y + &cc).tanh();
        let b = x.sigmoid() - &y;
        (b.clone(), a, b, y)
    };
    let f = function("one_kernel", body.clone());
    for seed in 0..3u64 {
        let x = rand_f32(810 + seed, &[5, 3], -2.0, 2.0);
        let y = rand_f32(820 + seed, &[3], -2.0, 2.0);
        let got = f.call((x.clone(), y.clone()));
        let want = body((x, y));
        assert_eq!(bits(&got.0), bits(&want.0));
        assert_eq!(bits(&got.1), bits(&want.1));
        assert_eq!(bits(&got.2), bits(&want.2));
        assert_eq!(bits(&got.3), bits(&want.3));
    }
    let g = function("reordered", |(x, y): (Tensor, Tensor)| {
        let q = &x * 3.0;
        let p = (&x - &y).relu();
        (p, q)
    });
    let (x, y) = (rand_f32(830, &[7], -1.0, 1.0), rand_f32(831, &[7], -1.0, 1.0));
    let (p, q) = g.call((x.clone(), y.clone()));
    assert_eq!(bits(&p), bits(&(&x - &y).relu()));
    assert_eq!(bits(&q), bits(&(&x * 3.0)));
    assert!(g.concrete_functions()[0].compiled_text().contains("kernel0"));
}

#[test]
fn the_environment_variable_selects_the_interpreter() {
    if std::env::var_os("TJ_BACKEND_CHILD").is_some() {
        let f = function("w1", |x: Tensor| &x * 2.0 + 1.0);
        f.call(rand_f32(44, &[4], -1.0, 1.0));
        println!("BACKEND {}", f.concrete_functions()[0].backend());
        return;
    }
    let run = |value: &str| {
        child_stdout(
            "the_environment_variable_selects_the_interpreter",
            &[("TJ_BACKEND_CHILD", "1"), ("TENSORJIT_BACKEND", value)],
        )
    };
    assert!(run("interp").contains("BACKEND interpreter"));
    assert!(run("jit").contains("BACKEND cranelift"));
}

#[test]
fn large_kernels_split_over_threads_give_the_same_bits() {
    let n = 300_001;
    let (x, y) = (rand_f32(45, &[n], -3.0, 3.0), rand_f32(46, &[n], -3.0, 3.0));
    let chain: fn(&[Tensor]) -> Tensor = |v| (&v[0] * &v[1] + 0.5).tanh() * (&v[0] - &v[1]).sigmoid() + v[0].relu();
    let (jit, interp, eager, _, _) = three_ways(chain, &[x, y]);
    assert_eq!(bits(&jit), bits(&interp));
    assert_eq!(bits(&jit), bits(&eager));
    let rows = rand_f32(47, &[1001, 517], -3.0, 3.0);
    let bias = rand_f32(48, &[517], -1.0, 1.0);
    let (jit, _, eager, _, _) = three_ways(|v| (&v[0] + &v[1]).relu() * 3.0, &[rows, bias]);
    assert_eq!(bits(&jit), bits(&eager));
}

proptest! {
    // ≥ 1000 random DAGs per run (and per CI run).
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_op_dags_compile_to_the_interpreters_bits(
        steps in prop::collection::vec(step(), 1..12),
        seed in any::<u64>(),
        bias_row in any::<bool>(),
        shape in 0usize..3,
        reduce in 0usize..3,
    ) {
        // One tile; rows longer than a tile (column pieces); tiles of several rows.
        let (r, c) = [(3, 37), (2, 1300), (40, 30)][shape];
        let args = inputs(seed, bias_row, (r, c));
        let s = steps.clone();
        let func = function("dag", move |v: Vec<Tensor>| apply(&s, &v, reduce));
        let jit = func.call(args.clone());
        let cf = func.concrete_functions()[0].clone();
        let interp = interpret(&cf.graph, &args, &[]).unwrap().remove(0);
        prop_assert_eq!(bits(&jit), bits(&interp));
        prop_assert_eq!(bits(&jit), bits(&apply(&steps, &args, reduce)));
    }
}

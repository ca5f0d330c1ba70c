//! Memory planning in compiled functions: a kernel writes its output over an input that
//! dies at it — when nothing else holds that buffer — and the results stay the
//! interpreter's and eager bits; a buffer something else still sees is never touched.
//! Straight-line functions run over one arena whose rooms are reused by liveness and
//! which concurrent calls never share.

mod common;
use common::*;
use tensorjit::prelude::*;
use tensorjit::trace::backend::interpret;

fn bits(t: &Tensor) -> Vec<u32> {
    f32s(t).iter().map(|v| v.to_bits()).collect()
}

/// A matmul feeding a cheap kernel and a staged one (tanh): both run over the dying
/// matmul outputs, and every call gives the interpreter's and the eager bits.
fn chain(v: &[Tensor], scale: &Tensor) -> Tensor {
    let h = v[0].matmul(&v[1]);
    let a = (&h + &v[2]).relu();
    let g = a.matmul(&v[3]);
    (&g * scale + 1.0).tanh() * &v[4]
}

/// Both executors: with a variable read (the general executor: tensors, in place when
/// unshared) and without (the arena executor: rooms, in place by the plan).
#[test]
fn kernels_overwrite_dying_intermediates_with_the_same_bits() {
    let scale = Variable::new(Tensor::scalar(0.5f32), "scale");
    let s2 = scale.clone();
    // Reading a variable after assigning it keeps a function on the general executor.
    let with_var = function("in_place_var", move |v: Vec<Tensor>| {
        s2.assign(s2.read());
        chain(&v, &s2.read())
    });
    let half = Tensor::scalar(0.5f32);
    let arena = function("in_place_arena", move |v: Vec<Tensor>| chain(&v, &half));
    for (f, executor) in [(with_var, "general"), (arena, "arena")] {
        run_in_place_case(&f, executor, &scale.read());
    }
}

fn run_in_place_case(f: &Function<Vec<Tensor>, Tensor>, executor: &str, scale: &Tensor) {
    let body = |v: &[Tensor]| chain(v, scale);
    for (seed, (m, k, n)) in [(1u64, (5usize, 7usize, 9usize)), (2, (33, 20, 300)), (3, (1, 4, 1))] {
        let args = vec![
            rand_f32(seed * 10, &[m, k], -2.0, 2.0),
            rand_f32(seed * 10 + 1, &[k, n], -1.0, 1.0),
            rand_f32(seed * 10 + 2, &[n], -0.5, 0.5),
            rand_f32(seed * 10 + 3, &[n, n], -1.0, 1.0),
            rand_f32(seed * 10 + 4, &[m, n], -3.0, 3.0),
        ];
        let keep: Vec<Vec<u32>> = args.iter().map(bits).collect();
        for _ in 0..2 {
            let jit = f.call(args.clone());
            let cf = f.concrete_functions().into_iter().find(|c| {
                c.graph.params.len() == 5 && {
                    let s = c.graph.value_type(c.graph.params[0]).shape.dims().to_vec();
                    s == [m, k]
                }
            });
            let Some(cf) = cf else { panic!("no concrete function for ({m},{k},{n})") };
            assert_eq!(cf.backend(), "cranelift");
            let interp = interpret(&cf.graph, &args, &[]).expect("the interpreter runs it").remove(0);
            assert_eq!(bits(&jit), bits(&interp), "({m},{k},{n}): jit vs interpreter");
            assert_eq!(bits(&jit), bits(&body(&args)), "({m},{k},{n}): jit vs eager");
        }
        // The caller's tensors are never written.
        assert_eq!(args.iter().map(bits).collect::<Vec<_>>(), keep, "an argument changed");
    }
    let text = f.concrete_functions()[0].compiled_text();
    let plan = text.split("plan:").nth(1).unwrap_or_default();
    assert_eq!(plan.matches(" (over %").count(), 2, "{executor}: both kernels run in place:\n{plan}");
    assert_eq!(plan.contains("arena:"), executor == "arena", "{executor}:\n{plan}");
}

/// Rooms reused by liveness (including a value read twice by one op and an op run on
/// copies), results in fresh buffers, and calls from several threads at once: every
/// result is the eager bits.
#[test]
fn arena_functions_reuse_rooms_and_serve_concurrent_calls() {
    fn body(v: &[Tensor]) -> (Tensor, Tensor) {
        let h = (v[0].matmul(&v[1]) + 1.0).relu();
        let sq = h.matmul(&h);
        let t = (&sq * 0.25).t();
        let y = (t.matmul(&v[2]) - 0.5).sigmoid();
        let m = y.max([-1i64], true);
        (&y - &m, h)
    }
    let f = function("arena_mt", |v: Vec<Tensor>| body(&v));
    let args = |seed: u64| {
        vec![
            rand_f32(seed, &[24, 16], -1.0, 1.0),
            rand_f32(seed + 1, &[16, 24], -1.0, 1.0),
            rand_f32(seed + 2, &[24, 9], -1.0, 1.0),
        ]
    };
    f.call(args(1));
    let text = f.concrete_functions()[0].compiled_text();
    assert!(text.contains("arena:") && !text.contains(" 0 rooms reused"), "{text}");
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let f = &f;
            s.spawn(move || {
                for i in 0..25 {
                    let a = args(1000 * t + 10 * i);
                    let (y, h) = f.call(a.clone());
                    let (ey, eh) = body(&a);
                    assert_eq!(bits(&y), bits(&ey), "thread {t} call {i}: y");
                    assert_eq!(bits(&h), bits(&eh), "thread {t} call {i}: h");
                }
            });
        }
    });
    assert_eq!(f.concrete_functions().len(), 1);
}

/// A dying input still seen through a reshaped view (or returned, or a parameter) is
/// read, never overwritten.
#[test]
fn shared_buffers_are_never_overwritten() {
    let body = |v: &[Tensor]| {
        let h = v[0].matmul(&v[1]);
        let view = h.reshape([-1i64]);
        let y = (&h * 2.0).relu();
        let z = (&v[0] + 1.0).exp();
        (view, y, z)
    };
    // A variable read after its assignment keeps this on the general executor
    // (tensors, not rooms).
    let one = Variable::new(Tensor::scalar(1.0f32), "one");
    let f = function("shared", move |v: Vec<Tensor>| {
        let (a, b, c) = body(&v);
        one.assign(one.read());
        (a, b, c * one.read())
    });
    let args = vec![rand_f32(41, &[6, 8], -1.0, 1.0), rand_f32(42, &[8, 10], -1.0, 1.0)];
    let x_bits = bits(&args[0]);
    let (view, y, z) = f.call(args.clone());
    let (ev, ey, ez) = body(&args);
    assert_eq!(bits(&view), bits(&ev), "the view of the matmul output was overwritten");
    assert_eq!(bits(&y), bits(&ey));
    assert_eq!(bits(&z), bits(&(ez * 1.0)));
    assert_eq!(bits(&args[0]), x_bits, "a parameter was overwritten");
}

/// Variables on the arena executor: read when the call starts, assigned at their step
/// in the plan's order, every step equal to eager. A call that binds one variable to
/// two arguments (so one's assignment must show in the other's read) runs on the
/// general executor, with eager's semantics.
#[test]
fn arena_functions_read_and_assign_variables_like_eager() {
    fn step(x: &Tensor, w: &Variable, b: &Variable) -> Tensor {
        let y = (x.matmul(&w.read()) + b.read()).tanh();
        let g = x.t().matmul(&y);
        w.assign(w.read() - &g * 0.01);
        b.assign(b.read() - y.mean([0i64], false) * 0.01);
        y.sum_all()
    }
    let f = function("train", |(x, w, b): (Tensor, Variable, Variable)| step(&x, &w, &b));
    let (w0, b0) = (rand_f32(61, &[6, 5], -1.0, 1.0), rand_f32(62, &[5], -1.0, 1.0));
    let (w1, b1) = (Variable::new(w0.clone(), "w"), Variable::new(b0.clone(), "b"));
    let (w2, b2) = (Variable::new(w0, "w_eager"), Variable::new(b0, "b_eager"));
    for i in 0..5 {
        let x = rand_f32(70 + i, &[4, 6], -2.0, 2.0);
        let traced = f.call((x.clone(), w1.clone(), b1.clone()));
        let eager = step(&x, &w2, &b2);
        assert_eq!(bits(&traced), bits(&eager), "step {i}: loss");
        assert_eq!(bits(&w1.read()), bits(&w2.read()), "step {i}: w");
        assert_eq!(bits(&b1.read()), bits(&b2.read()), "step {i}: b");
    }
    let text = f.concrete_functions()[0].compiled_text();
    assert!(text.contains("compiled entry point"), "{text}");

    fn bump_then_read(x: &Tensor, a: &Variable, b: &Variable) -> Tensor {
        a.assign(a.read() + x);
        b.read() * 2.0
    }
    let g = function("alias", |(x, a, b): (Tensor, Variable, Variable)| bump_then_read(&x, &a, &b));
    let v0 = rand_f32(80, &[3], -1.0, 1.0);
    let (v, ve) = (Variable::new(v0.clone(), "v"), Variable::new(v0.clone(), "v_eager"));
    let (u, ue) = (Variable::new(v0.clone(), "u"), Variable::new(v0, "u_eager"));
    for i in 0..3 {
        let x = rand_f32(90 + i, &[3], -1.0, 1.0);
        let same = g.call((x.clone(), v.clone(), v.clone()));
        assert_eq!(bits(&same), bits(&bump_then_read(&x, &ve, &ve)), "call {i}: one variable bound twice");
        let apart = g.call((x.clone(), u.clone(), v.clone()));
        assert_eq!(bits(&apart), bits(&bump_then_read(&x, &ue, &ve)), "call {i}: two variables");
        assert_eq!(bits(&v.read()), bits(&ve.read()));
        assert_eq!(bits(&u.read()), bits(&ue.read()));
    }
}

/// A `while` loop between other steps runs inside the arena plan (its own small arena,
/// its results in rooms of the plan), from the compiled entry point: its bound is
/// computed by the function at run time, its body reads a value computed before it,
/// and the trip count differs between calls — every call the eager bits.
#[test]
fn loops_between_other_steps_run_in_the_arena_plan() {
    fn body(a: &Tensor, w: &Tensor, cap: Option<u64>) -> (Tensor, Tensor) {
        let h = a.matmul(w).tanh();
        let bound = h.abs().sum_all() * 4.0 + 10.0;
        let start = (h.abs() + 0.25, Tensor::scalar(0.5f32));
        // Two loop variables: the trip count rides along in the second.
        let grow = |(x, n): (Tensor, Tensor)| (&x * 1.5 + h.abs(), n + 1.0);
        let opts = WhileOptions { maximum_iterations: cap, ..Default::default() };
        let (x, n) = while_loop_with(|(x, _): &(Tensor, Tensor)| x.sum_all().lt(&bound), grow, start, &opts);
        let y = (&x - &h).sigmoid().sum([-1i64], false) * &n;
        (y, &x * 2.0)
    }
    for cap in [None, Some(2)] {
        let f = function("arena_loop", move |(a, w): (Tensor, Tensor)| body(&a, &w, cap));
        for seed in 0..6u64 {
            let rows = 3 + seed as usize % 2;
            let a = rand_f32(900 + seed, &[rows, 7], -2.0, 2.0);
            let w = rand_f32(950 + seed, &[7, 5], -1.0, 1.0);
            let (y, x) = f.call((a.clone(), w.clone()));
            let (ey, ex) = body(&a, &w, cap);
            assert_eq!(bits(&y), bits(&ey), "cap {cap:?} seed {seed}: y");
            assert_eq!(bits(&x), bits(&ex), "cap {cap:?} seed {seed}: x");
        }
        let text = f.concrete_functions()[0].compiled_text();
        assert!(text.contains("1 loop; compiled entry point"), "{text}");
    }
}

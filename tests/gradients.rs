//! Finite-difference gradient checks (f64, central differences) for every
//! differentiable op, at odd sizes, plus TensorFlow's gradient conventions.

mod common;
use common::*;
use tensorjit::prelude::*;

/// Checks the tape gradient of `sum(f(xs) * r)` (r random) against central differences
/// at up to `probes` elements of each input.
#[track_caller]
fn gradcheck(seed: u64, xs: &[Tensor], f: impl Fn(&[Tensor]) -> Tensor, probes: usize) {
    let tape = GradientTape::new();
    for x in xs {
        tape.watch(x);
    }
    let y = f(xs);
    let r = rand_f64(seed ^ 0xABCD, y.dims(), 0.5, 1.5);
    let loss = (&y * &r).sum_all();
    let grads = tape.gradient(&loss, xs);
    let eval = |inputs: &[Tensor]| (&f(inputs) * &r).sum_all().to_scalar::<f64>().unwrap();
    for (k, x) in xs.iter().enumerate() {
        let g = f64s(grads[k].as_ref().unwrap_or_else(|| panic!("no gradient for input {k}")));
        assert_eq!(g.len(), x.numel());
        let xv = f64s(x);
        let step = (xv.len() / probes).max(1);
        for i in (0..xv.len()).step_by(step) {
            let h = 1e-6 * (1.0 + xv[i].abs());
            let mut plus = xv.clone();
            plus[i] += h;
            let mut minus = xv.clone();
            minus[i] -= h;
            let with = |v: Vec<f64>| {
                let mut ins = xs.to_vec();
                ins[k] = Tensor::from_vec(v, x.dims()).unwrap();
                eval(&ins)
            };
            let fd = (with(plus) - with(minus)) / (2.0 * h);
            let tol = 1e-5 * (1.0 + fd.abs());
            assert!((g[i] - fd).abs() <= tol, "input {k} element {i}: tape {} vs finite difference {fd}", g[i]);
        }
    }
}

const SIZES: [usize; 4] = [1, 3, 50, 783];

/// Values in ±[0.2, 2]: away from the kinks of abs/relu/sign/floor.
fn away_from_zero(seed: u64, shape: &[usize]) -> Tensor {
    let n = shape.iter().product();
    let v: Vec<f64> = rand_vec(seed, n, 0.2, 2.0)
        .into_iter()
        .zip(rand_vec(seed + 1, n, 0.0, 1.0))
        .map(|(m, s)| if s < 0.5 { -m } else { m } + 0.013)
        .collect();
    Tensor::from_vec(v, shape).unwrap()
}

#[test]
fn unary_ops() {
    type F = fn(&Tensor) -> Tensor;
    let ops: [(&str, F, bool); 18] = [
        ("neg", |x| x.neg(), false),
        ("abs", |x| x.abs(), false),
        ("sign", |x| x.sign(), false),
        ("exp", |x| x.exp(), false),
        ("log", |x| x.log(), true),
        ("sqrt", |x| x.sqrt(), true),
        ("rsqrt", |x| x.rsqrt(), true),
        ("square", |x| x.square(), false),
        ("tanh", |x| x.tanh(), false),
        ("sigmoid", |x| x.sigmoid(), false),
        ("relu", |x| x.relu(), false),
        ("softplus", |x| x.softplus(), false),
        ("sin", |x| x.sin(), false),
        ("cos", |x| x.cos(), false),
        ("erf", |x| x.erf(), false),
        ("floor", |x| x.floor(), false),
        ("ceil", |x| x.ceil(), false),
        ("cast", |x| x.cast(DType::F64), false),
    ];
    for (i, (name, op, positive)) in ops.iter().enumerate() {
        for (j, &n) in SIZES.iter().enumerate() {
            let seed = (i * 10 + j) as u64;
            let x = if *positive { rand_f64(seed, &[n], 0.2, 3.0) } else { away_from_zero(seed, &[n]) };
            eprintln!("{name} n={n}");
            gradcheck(seed, &[x], |v| op(&v[0]), 60);
        }
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    type F = fn(&Tensor, &Tensor) -> Tensor;
    let ops: [(&str, F); 7] = [
        ("add", |a, b| a + b),
        ("sub", |a, b| a - b),
        ("mul", |a, b| a * b),
        ("div", |a, b| a / b),
        ("pow", |a, b| a.abs().pow(b)),
        ("maximum", |a, b| a.maximum(b)),
        ("minimum", |a, b| a.minimum(b)),
    ];
    for (i, (name, op)) in ops.iter().enumerate() {
        for (j, &n) in SIZES.iter().enumerate() {
            let s = (100 + i * 10 + j) as u64;
            eprintln!("{name} n={n}");
            gradcheck(s, &[away_from_zero(s, &[n]), away_from_zero(s + 7, &[n])], |v| op(&v[0], &v[1]), 40);
            gradcheck(s, &[away_from_zero(s, &[2, n]), away_from_zero(s + 9, &[n])], |v| op(&v[0], &v[1]), 40);
            gradcheck(s, &[away_from_zero(s, &[n, 1]), away_from_zero(s + 3, &[1, 3])], |v| op(&v[0], &v[1]), 40);
        }
    }
}

#[test]
fn where_and_reductions() {
    for (j, &n) in SIZES.iter().enumerate() {
        let s = 300 + j as u64;
        let c = away_from_zero(s + 50, &[n]).gt(0.0);
        gradcheck(s, &[away_from_zero(s, &[n]), away_from_zero(s + 1, &[1])], |v| Tensor::where_(&c, &v[0], &v[1]), 40);
        let x = away_from_zero(s, &[3, n]);
        gradcheck(s, std::slice::from_ref(&x), |v| v[0].sum(1, false), 40);
        gradcheck(s, std::slice::from_ref(&x), |v| v[0].mean(0, true), 40);
        gradcheck(s, std::slice::from_ref(&x), |v| v[0].max(1, true), 40);
        gradcheck(s, std::slice::from_ref(&x), |v| v[0].min(0, false), 40);
        gradcheck(s, std::slice::from_ref(&x), |v| v[0].sum_all(), 40);
        let small = rand_f64(s, &[3, n.min(50)], 0.5, 1.5);
        gradcheck(s, &[small], |v| v[0].prod(1, false), 40);
    }
}

#[test]
fn matmul_all_transpose_flags_and_batches() {
    for (k, &(ta, tb)) in [(false, false), (false, true), (true, false), (true, true)].iter().enumerate() {
        for &(m, kk, n) in &[(1, 1, 1), (3, 50, 7), (5, 3, 11)] {
            let s = 400 + k as u64;
            let a = rand_f64(s, &if ta { [kk, m] } else { [m, kk] }, -1.0, 1.0);
            let b = rand_f64(s + 1, &if tb { [n, kk] } else { [kk, n] }, -1.0, 1.0);
            gradcheck(s, &[a, b], |v| v[0].matmul_t(&v[1], ta, tb), 30);
        }
    }
    let a = rand_f64(410, &[2, 1, 3, 4], -1.0, 1.0);
    let b = rand_f64(411, &[3, 4, 5], -1.0, 1.0);
    gradcheck(410, &[a, b], |v| v[0].matmul(&v[1]), 40);
}

#[test]
fn shape_ops() {
    let x = rand_f64(500, &[2, 3, 5], -1.0, 1.0);
    let one = std::slice::from_ref(&x);
    gradcheck(500, one, |v| v[0].reshape([-1, 5]), 30);
    gradcheck(501, one, |v| v[0].permute(&[2, 0, 1]), 30);
    gradcheck(502, &[rand_f64(502, &[3, 1], -1.0, 1.0)], |v| v[0].broadcast_to([2, 3, 4]), 30);
    gradcheck(503, &[x.clone(), rand_f64(503, &[2, 4, 5], -1.0, 1.0)], |v| Tensor::concat(&[&v[0], &v[1]], 1), 30);
    gradcheck(504, &[x.clone(), rand_f64(504, &[2, 3, 5], -1.0, 1.0)], |v| Tensor::stack(&[&v[0], &v[1]], 0), 30);
    gradcheck(505, one, |v| v[0].slice(&[SliceArg::full(), SliceArg::new(None, None, -2), (1..4).into()]), 30);
    let idx = Tensor::from_vec(vec![2i64, 0, 2, 1, 2], [5]).unwrap();
    gradcheck(506, one, |v| v[0].gather(&idx, 1), 30);
    gradcheck(507, one, |v| v[0].expand_dims(1).squeeze(&[1]), 30);
    gradcheck(508, one, |v| v[0].softmax(-1), 30);
    gradcheck(509, one, |v| v[0].log_softmax(0), 30);
    gradcheck(510, &[rand_f64(510, &[783], -3.0, 3.0)], |v| v[0].softmax(0), 60);
}

/// The compositions: pads (mirrored elements get the sum of their copies' gradients),
/// tile, repeat, reverse, split and the statistics reductions.
#[test]
fn arranging_ops_and_statistics() {
    let x = rand_f64(520, &[3, 4, 5], -1.0, 1.0);
    let one = std::slice::from_ref(&x);
    for (seed, mode) in [(521, PadMode::Constant(0.5)), (522, PadMode::Reflect), (523, PadMode::Symmetric)] {
        gradcheck(seed, one, |v| v[0].pad(&[(1, 2), (0, 0), (3, 4)], mode), 40);
    }
    gradcheck(524, one, |v| v[0].tile(&[2, 1, 3]), 40);
    gradcheck(525, one, |v| v[0].repeat(3, 1), 40);
    gradcheck(526, one, |v| v[0].reverse(&[0, 2]), 40);
    gradcheck(527, one, |v| &v[0].split(&[1, 3], 1)[1] * &v[0].chunks(2, 1)[0].sum(1, true), 40);
    gradcheck(528, one, |v| v[0].variance(&[0, 2][..], true), 40);
    gradcheck(529, one, |v| v[0].std(1, false), 40);
    gradcheck(530, one, |v| v[0].norm(Axes::All, false), 40);
    gradcheck(531, one, |v| v[0].l2_normalize(-1, 1e-12), 40);
    for (seed, exclusive, reverse) in [(532, false, false), (533, true, false), (534, false, true), (535, true, true)] {
        gradcheck(seed, one, |v| v[0].cumsum_with(1, CumsumOptions { exclusive, reverse }).square(), 40);
    }
    // Running products (values away from zero: the finite differences of a product
    // through a zero are the rule's own special case, checked in tests/cumprod.rs).
    let far = away_from_zero(545, &[3, 4, 5]);
    for (seed, exclusive, reverse) in [(546, false, false), (547, true, false), (548, false, true), (549, true, true)] {
        gradcheck(seed, std::slice::from_ref(&far), |v| v[0].cumprod_with(1, CumsumOptions { exclusive, reverse }), 40);
    }
    // Its second derivative: d/dx of the tape's first derivative.
    let first = |v: &[Tensor]| {
        let t = GradientTape::new();
        t.watch(&v[0]);
        let y = v[0].cumprod(2).square().sum_all();
        t.gradient(&y, &[&v[0]])[0].clone().unwrap()
    };
    gradcheck(550, std::slice::from_ref(&far), first, 30);
    let ids = Tensor::from_vec(vec![2i64, 0, 2], [3]).unwrap();
    gradcheck(551, std::slice::from_ref(&far), |v| v[0].unsorted_segment_prod(&ids, 3), 40);
    let (a, b) = (rand_f64(536, &[2, 3, 4], -1.0, 1.0), rand_f64(537, &[4, 3], -1.0, 1.0));
    let pair = [a, b];
    gradcheck(538, &pair, |v| Tensor::einsum("bij,jk->bki", &[&v[0], &v[1]]), 40);
    gradcheck(539, &pair, |v| Tensor::einsum("bij,ji->b", &[&v[0], &v[1]]), 40);
    gradcheck(540, &pair, |v| Tensor::einsum("bij,ji,bkj->ik", &[&v[0], &v[1], &v[0]]), 40);
    gradcheck(543, one, |v| v[0].clip_by_norm(0.5, &[1, 2][..]), 40);
    gradcheck(544, &pair, |v| Tensor::clip_by_global_norm(&[&v[0], &v[1]], 0.7).0[1].clone(), 40);
    let sq = rand_f64(541, &[2, 4, 4], -1.0, 1.0);
    gradcheck(542, std::slice::from_ref(&sq), |v| Tensor::einsum("bii->bi", &[&v[0]]).square(), 40);
}

/// The shape of `conv2d`'s output for these operands.
fn v_out(xs: [usize; 4], fs: [usize; 4], st: [usize; 2], pad: Padding) -> [usize; 4] {
    let out = |i: usize, k: usize, s: usize| if pad == Padding::Same { i.div_ceil(s) } else { (i - k) / s + 1 };
    [xs[0], out(xs[1], fs[0], st[0]), out(xs[2], fs[1], st[1]), fs[3]]
}

#[test]
fn conv_and_pooling() {
    for (k, &(xs, fs, st, pad)) in
        [([1, 5, 5, 1], [3, 3, 1, 1], [1, 1], Padding::Valid), ([2, 6, 5, 3], [3, 2, 3, 2], [2, 1], Padding::Same)]
            .iter()
            .enumerate()
    {
        let s = 600 + k as u64;
        gradcheck(
            s,
            &[rand_f64(s, &xs, -1.0, 1.0), rand_f64(s + 1, &fs, -1.0, 1.0)],
            |v| v[0].conv2d(&v[1], st, pad),
            40,
        );
        // The transposed conv of a conv-output-shaped input, with the same filter.
        let (ys, ft) = (v_out(xs, fs, st, pad), fs);
        gradcheck(
            s + 3,
            &[rand_f64(s + 3, &ys, -1.0, 1.0), rand_f64(s + 4, &ft, -1.0, 1.0)],
            |v| v[0].conv2d_transpose(&v[1], st, pad),
            40,
        );
        // Depthwise: the filter [kh, kw, channels, multiplier 2].
        let fd = [fs[0], fs[1], xs[3], 2];
        gradcheck(
            s + 5,
            &[rand_f64(s + 5, &xs, -1.0, 1.0), rand_f64(s + 6, &fd, -1.0, 1.0)],
            |v| v[0].depthwise_conv2d(&v[1], st, pad),
            40,
        );
        let x = rand_f64(s + 2, &xs, -1.0, 1.0);
        gradcheck(s, std::slice::from_ref(&x), |v| v[0].max_pool2d([2, 2], [2, 1], pad), 40);
        gradcheck(s, std::slice::from_ref(&x), |v| v[0].avg_pool2d([2, 3], [1, 2], pad), 40);
    }
}

#[test]
fn tensorflow_gradient_conventions() {
    let g = |f: &dyn Fn(&Tensor) -> Tensor, x: &Tensor| {
        let tape = GradientTape::new();
        tape.watch(x);
        let y = f(x).sum_all();
        f64s(tape.gradient(&y, &[x])[0].as_ref().unwrap())
    };
    let x = Tensor::from_vec(vec![0.0f64, -1.0, 2.0], [3]).unwrap();
    assert_eq!(g(&|x| x.relu(), &x), vec![0.0, 0.0, 1.0], "relu'(0) = 0");
    assert_eq!(g(&|x| x.abs(), &x), vec![0.0, -1.0, 1.0], "abs'(0) = 0");
    assert_eq!(g(&|x| x.floor(), &x), vec![0.0; 3]);
    // maximum/minimum: a tie's whole gradient goes to the left operand.
    let a = Tensor::from_vec(vec![1.0f64, 2.0], [2]).unwrap();
    let b = Tensor::from_vec(vec![1.0f64, 3.0], [2]).unwrap();
    let tape = GradientTape::persistent();
    tape.watch(&a);
    tape.watch(&b);
    let m = a.maximum(&b).sum_all();
    let gs = tape.gradient(&m, &[&a, &b]);
    assert_eq!((f64s(gs[0].as_ref().unwrap()), f64s(gs[1].as_ref().unwrap())), (vec![1.0, 0.0], vec![0.0, 1.0]));
    // reduce max splits a tie evenly.
    let t = Tensor::from_vec(vec![3.0f64, 1.0, 3.0], [3]).unwrap();
    assert_eq!(g(&|x| x.max(0, false), &t), vec![0.5, 0.0, 0.5]);
    // pow: d/dy is 0 where the base is <= 0.
    let base = Tensor::from_vec(vec![-2.0f64, 0.0, 2.0], [3]).unwrap();
    let e = Tensor::from_vec(vec![2.0f64, 2.0, 2.0], [3]).unwrap();
    let tape = GradientTape::new();
    tape.watch(&e);
    let p = base.pow(&e).sum_all();
    let ge = f64s(tape.gradient(&p, &[&e])[0].as_ref().unwrap());
    assert_eq!(ge[..2], [0.0, 0.0]);
    assert!((ge[2] - 4.0 * 2f64.ln()).abs() < 1e-12);
    // prod with zeros.
    let z = Tensor::from_vec(vec![2.0f64, 0.0, 3.0, 0.0, 0.0, 5.0], [2, 3]).unwrap();
    assert_eq!(g(&|x| x.prod(1, false), &z), vec![0.0, 6.0, 0.0, 0.0, 0.0, 0.0]);
    // duplicate gather indices accumulate.
    let p = Tensor::from_vec(vec![1.0f64, 2.0, 3.0], [3]).unwrap();
    let idx = Tensor::from_vec(vec![0i32, 0, 2, 0], [4]).unwrap();
    assert_eq!(g(&|x| x.gather(&idx, 0), &p), vec![3.0, 0.0, 1.0]);
    // max-pool gives a tie to the first maximum of the window (row-major).
    let img = Tensor::from_vec(vec![5.0f64, 5.0, 5.0, 5.0], [1, 2, 2, 1]).unwrap();
    assert_eq!(g(&|x| x.max_pool2d([2, 2], [2, 2], Padding::Valid), &img), vec![1.0, 0.0, 0.0, 0.0]);
    // gradients are summed over broadcast dims.
    let bias = Tensor::from_vec(vec![0.5f64, -0.5], [2]).unwrap();
    let ones = Tensor::ones([4, 2], DType::F64);
    assert_eq!(g(&|b| &ones + b, &bias), vec![4.0, 4.0]);
}

#[test]
fn variables_persistent_nested_and_unconnected() {
    let w = Variable::new(Tensor::from_vec(vec![3.0f64], [1]).unwrap(), "w");
    let frozen = Variable::with_trainable(Tensor::from_vec(vec![2.0f64], [1]).unwrap(), "f", false);
    let x = Tensor::from_vec(vec![2.0f64], [1]).unwrap();
    let outer = GradientTape::new();
    outer.watch(&x);
    let inner = GradientTape::new();
    inner.watch(&x);
    let y = (&x * &x * &x * &w).sum_all(); // w·x³
    let dy = inner.gradient(&y, &[&x])[0].clone().unwrap(); // 3w·x²
    assert_eq!(f64s(&dy), vec![36.0]);
    let d2 = outer.gradient(&dy, &[&x])[0].clone().unwrap(); // 6w·x
    assert_eq!(f64s(&d2), vec![36.0]);

    let tape = GradientTape::persistent();
    let loss = (&w.read() * &frozen).sum_all();
    let unrelated = Tensor::from_vec(vec![1.0f64], [1]).unwrap();
    let g1 = tape.gradient(&loss, &[&w]);
    let g2 = tape.gradient(&loss, &[&w]);
    assert_eq!(f64s(g1[0].as_ref().unwrap()), vec![2.0]);
    assert_eq!(f64s(g2[0].as_ref().unwrap()), vec![2.0]);
    assert!(tape.gradient(&loss, &[&frozen])[0].is_none(), "non-trainable variables are not watched");
    assert!(tape.gradient(&loss, &[&unrelated])[0].is_none(), "unconnected source → None");

    let once = GradientTape::new();
    let l = (&w * 2.0).sum_all();
    let _ = once.gradient(&l, &[&w]);
    let msg = panic_message(std::panic::AssertUnwindSafe(|| {
        let _ = once.gradient(&l, &[&w]);
    }));
    assert!(msg.contains("non-persistent GradientTape can compute gradients only once"), "{msg}");
}

#[test]
fn second_derivatives_of_activations() {
    for (i, f) in [
        (|x: &Tensor| x.tanh()) as fn(&Tensor) -> Tensor,
        |x: &Tensor| x.sigmoid(),
        |x: &Tensor| x.sin(),
        |x: &Tensor| x.softplus(),
        |x: &Tensor| x.exp(),
    ]
    .iter()
    .enumerate()
    {
        // d/dx of the tape's first derivative, checked by finite differences of it.
        let first = |v: &[Tensor]| {
            let t = GradientTape::new();
            t.watch(&v[0]);
            let y = f(&v[0]).sum_all();
            t.gradient(&y, &[&v[0]])[0].clone().unwrap()
        };
        gradcheck(700 + i as u64, &[away_from_zero(700 + i as u64, &[50])], first, 25);
    }
}

/// softmax and log_softmax carry TensorFlow's gradients as recorded steps of their own;
/// those gradients are made of ops a nested tape records, so second derivatives work:
/// d/dx of the tape's first derivative, checked by finite differences of it.
#[test]
fn second_derivatives_through_softmax_and_log_softmax() {
    let w = rand_f64(720, &[4, 7], 0.5, 1.5);
    for (i, axis) in [(0u64, -1i64), (1, 0)] {
        for log in [false, true] {
            let w = w.clone();
            let first = move |v: &[Tensor]| {
                let t = GradientTape::new();
                t.watch(&v[0]);
                let y = if log { v[0].log_softmax(axis) } else { v[0].softmax(axis) };
                let loss = (&y * &w).sum_all();
                t.gradient(&loss, &[&v[0]])[0].clone().unwrap()
            };
            let seed = 721 + 2 * i + u64::from(log);
            gradcheck(seed, &[rand_f64(seed, &[4, 7], -2.0, 2.0)], first, 28);
        }
    }
}

#[test]
fn unwatched_inputs_get_no_gradient_and_cost_nothing() {
    let w = Variable::new(rand_f64(800, &[3, 2], -1.0, 1.0), "w");
    let x = rand_f64(801, &[4, 3], -1.0, 1.0);
    let tape = GradientTape::new();
    let loss = x.matmul(&w.read()).square().sum_all();
    let g = tape.gradient(&loss, &[&x]);
    assert!(g[0].is_none(), "x was not watched: no gradient (TensorFlow returns None too)");
    // Traced: the backward pass of a dense layer has exactly one matmul (for w), none for x.
    let w2 = w.clone();
    let f = function("dense_grad", move |(x,): (Tensor,)| {
        let tape = GradientTape::new();
        let loss = x.matmul(&w2.read()).square().sum_all();
        tape.gradient(&loss, &[&w2])[0].clone().unwrap()
    });
    f.call((x,));
    let ir = f.concrete_functions()[0].ir_text();
    assert_eq!(ir.matches("matmul[").count(), 2, "forward + dL/dw only:\n{ir}");
}

/// floormod's gradient is TensorFlow's, (1, −⌊a/b⌋): checked by central differences at
/// points where a/b = k + f with f in [0.2, 0.8] (away from the jumps at integers),
/// either sign, with broadcasting.
#[test]
fn floormod_differentiates_between_its_jumps() {
    for (k, &n) in SIZES.iter().enumerate() {
        let s = 300 + k as u64;
        let b = &rand_f64(s, &[n], 0.5, 3.0) * &rand_f64(s + 1, &[n], -1.0, 1.0).sign();
        let q = &rand_f64(s + 2, &[2, n], -20.0, 20.0).floor() + &rand_f64(s + 3, &[2, n], 0.2, 0.8);
        let a = &q * &b;
        gradcheck(s, &[a, b], |v| &v[0] % &v[1], 40);
    }
}

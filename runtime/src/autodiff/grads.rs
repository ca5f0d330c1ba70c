//! Gradient of every differentiable op, written with public ops only (so a tape that
//! records the backward pass — a nested tape, later a trace — sees ordinary ops).
//!
//! Conventions follow TensorFlow: gradients are summed back over broadcast dims;
//! `maximum`/`minimum` give a tie's whole gradient to the left operand; reduce max/min
//! split it evenly among tied elements; relu′(0) = abs′(0) = 0; sign/floor/ceil have zero
//! gradient; pow's gradient w.r.t. the exponent is 0 where the base ≤ 0; duplicate gather
//! indices accumulate; prod's gradient handles zeros; max-pool routes to the first
//! maximum of each window.

use crate::ops::{apply, BinaryOp, Op, ReduceOp, UnaryOp};
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Sums `g` down to `shape` over the dims broadcasting added or stretched: first the
/// stretched dims (keeping them as 1), then the added leading dims (dropping them) —
/// no reshape, so it works when dims are known only at run time.
pub(crate) fn unbroadcast(g: &Tensor, shape: &Shape) -> Tensor {
    if g.shape() == shape {
        return g.clone();
    }
    let extra = g.rank() - shape.rank();
    let stretched: Vec<i64> =
        (extra..g.rank()).filter(|&i| shape[i - extra] == 1 && g.dims()[i] != 1).map(|i| i as i64).collect();
    let g = if stretched.is_empty() { g.clone() } else { g.sum(stretched, true) };
    if extra == 0 {
        g
    } else {
        g.sum((0..extra as i64).collect::<Vec<_>>(), false)
    }
}

/// `g` broadcast to `x`'s shape (a multiplication by ones when that shape is known only
/// at run time; `v * 1` is exact, so both give the same bits).
fn broadcast_like(g: &Tensor, x: &Tensor) -> Tensor {
    if x.shape().is_fully_known() {
        g.broadcast_to(x.shape())
    } else {
        g * &Tensor::ones_like(x)
    }
}

fn zeros(x: &Tensor) -> Option<Tensor> {
    Some(Tensor::zeros_like(x))
}

/// Whether gradients flow through `op` at all (a stopped gradient, an index, a draw or
/// a fill has none, whatever its inputs): the ops whose `backward` arm answers `None`.
pub(crate) fn differentiable(op: &Op) -> bool {
    !matches!(
        op,
        Op::ArgReduce { .. }
            | Op::Argsort { .. }
            | Op::OneHot { .. }
            | Op::Random(_)
            | Op::StopGradient
            | Op::Fill { .. }
    )
}

/// Gradients of `op` for inputs `x` given output `y` and its gradient `g`; the costly
/// rules skip inputs whose `needed` flag is false (they lead to no source).
pub(crate) fn backward(op: &Op, x: &[&Tensor], y: &Tensor, g: &Tensor, needed: &[bool]) -> Vec<Option<Tensor>> {
    let need = |i: usize| needed.get(i).copied().unwrap_or(true);
    match op {
        Op::Unary(u) => vec![unary(*u, x[0], y, g)],
        Op::Binary(b) => {
            let mut gs = binary(*b, x[0], x[1], y, g, [need(0), need(1)]);
            gs.resize(2, None);
            gs
        }
        Op::Select => {
            let (c, a, b) = (x[0], x[1], x[2]);
            let zero = Tensor::zeros([], g.dtype());
            vec![
                None,
                Some(unbroadcast(&g.select(c, &zero), a.shape())),
                Some(unbroadcast(&zero.select(c, g), b.shape())),
            ]
        }
        Op::Cast(_) => vec![(x[0].dtype().is_float() && g.dtype().is_float()).then(|| g.cast(x[0].dtype()))],
        Op::Reduce { op, axes, keepdims } => vec![Some(reduce(*op, x[0], y, g, axes, *keepdims))],
        // Element i enters the sums after it (before it, reversed): its gradient sums
        // the output gradients there, the same running sum the other way.
        Op::Cumsum { axis, exclusive, reverse } => {
            let options = crate::ops::CumsumOptions { exclusive: *exclusive, reverse: !reverse };
            vec![Some(g.cumsum_with(*axis as i64, options))]
        }
        Op::Cumprod { axis, exclusive, reverse } => {
            vec![x[0].dtype().is_float().then(|| cumprod_grad(x[0], y, g, *axis, (*exclusive, *reverse)))]
        }
        // The ops `differentiable` names.
        Op::ArgReduce { .. }
        | Op::Argsort { .. }
        | Op::OneHot { .. }
        | Op::Random(_)
        | Op::StopGradient
        | Op::Fill { .. } => {
            vec![None; x.len()]
        }
        Op::MatMul { transpose_a: ta, transpose_b: tb } => {
            let (a, b) = (x[0], x[1]);
            let da = need(0).then(|| match (ta, tb) {
                (false, false) => g.matmul_t(b, false, true),
                (false, true) => g.matmul(b),
                (true, false) => b.matmul_t(g, false, true),
                (true, true) => b.matmul_t(g, true, true),
            });
            let db = need(1).then(|| match (ta, tb) {
                (false, false) => a.matmul_t(g, true, false),
                (false, true) => g.matmul_t(a, true, false),
                (true, false) => a.matmul(g),
                (true, true) => g.matmul_t(a, true, true),
            });
            vec![da.map(|d| unbroadcast(&d, a.shape())), db.map(|d| unbroadcast(&d, b.shape()))]
        }
        Op::Reshape(_) => vec![Some(g.reshape_to(x[0].shape()))],
        Op::Permute(p) => {
            let mut inv = vec![0i64; p.len()];
            for (i, &a) in p.iter().enumerate() {
                inv[a] = i as i64;
            }
            vec![Some(g.permute(&inv))]
        }
        Op::BroadcastTo(_) => vec![Some(unbroadcast(g, x[0].shape()))],
        Op::Concat { axis } => {
            let mut off = 0;
            x.iter()
                .map(|t| {
                    let n = t.dims()[*axis];
                    let s = g.narrow(*axis as i64, off, n);
                    off += n;
                    Some(s)
                })
                .collect()
        }
        // (Backprop joins a tensor's slices' gradients first: `accumulate`.)
        Op::Slice(s) => vec![Some(super::accumulate::slice_gradient(x[0].shape(), s, g))],
        Op::SliceGrad { slice, .. } => vec![Some(apply(Op::Slice(slice.clone()), &[g]))],
        Op::Gather { axis } => {
            let size = x[0].dims()[*axis];
            vec![Some(apply(Op::ScatterAdd { axis: *axis, size }, &[g, x[1]])), None]
        }
        Op::ScatterAdd { axis, size } => vec![Some(scatter_add_grad(g, x[1], *axis, *size)), None],
        Op::ScatterMax { axis, size } | Op::ScatterMin { axis, size } => {
            vec![Some(scatter_extreme_grad(g, x, y, *axis, *size)), None]
        }
        Op::ScatterProd { axis, size } => {
            vec![x[0].dtype().is_float().then(|| scatter_prod_grad(g, x, y, *axis, *size)), None]
        }
        Op::Conv2d(p) => vec![
            need(0).then(|| apply(Op::Conv2dBackpropInput { params: *p, input: x[0].shape().clone() }, &[g, x[1]])),
            need(1).then(|| apply(Op::Conv2dBackpropFilter { params: *p, filter: x[1].shape().clone() }, &[x[0], g])),
        ],
        // dx = col2im(dy·Wᵀ): linear in dy and W.
        Op::Conv2dBackpropInput { params, .. } => vec![
            Some(apply(Op::Conv2d(*params), &[g, x[1]])),
            Some(apply(Op::Conv2dBackpropFilter { params: *params, filter: x[1].shape().clone() }, &[g, x[0]])),
        ],
        // dW = im2col(x)ᵀ·dy: linear in x and dy.
        Op::Conv2dBackpropFilter { params, .. } => vec![
            Some(apply(Op::Conv2dBackpropInput { params: *params, input: x[0].shape().clone() }, &[x[1], g])),
            Some(apply(Op::Conv2d(*params), &[x[0], g])),
        ],
        Op::MaxPool2d(p) => vec![Some(apply(Op::MaxPool2dGrad(*p), &[x[0], g]))],
        // The routing is piecewise constant in x; linear in dy (adjoint: pick at argmax).
        Op::MaxPool2dGrad(p) => vec![zeros(x[0]), Some(apply(Op::MaxPool2dGradGrad(*p), &[x[0], g]))],
        Op::MaxPool2dGradGrad(p) => vec![zeros(x[0]), Some(apply(Op::MaxPool2dGrad(*p), &[x[0], g]))],
        Op::AvgPool2d(p) => vec![Some(apply(Op::AvgPool2dGrad { params: *p, input: x[0].shape().clone() }, &[g]))],
        Op::AvgPool2dGrad { params, .. } => vec![Some(apply(Op::AvgPool2d(*params), &[g]))],
    }
}

fn unary(op: UnaryOp, x: &Tensor, y: &Tensor, g: &Tensor) -> Option<Tensor> {
    Some(match op {
        UnaryOp::Neg => -g,
        UnaryOp::Abs => g * &x.sign(),
        UnaryOp::Sign | UnaryOp::Floor | UnaryOp::Ceil => return zeros(x),
        UnaryOp::Exp => g * y,
        UnaryOp::Log => g / x,
        UnaryOp::Sqrt => (g / y) * 0.5,
        UnaryOp::Rsqrt => g * &(&y.square() * y) * -0.5,
        UnaryOp::Square => g * &(x * 2.0),
        UnaryOp::Tanh => g * &(1.0 - &y.square()),
        UnaryOp::Sigmoid => g * &(y * &(1.0 - y)),
        UnaryOp::Relu => g.select(&x.gt(0.0), 0.0),
        UnaryOp::Softplus => g * &x.sigmoid(),
        UnaryOp::Sin => g * &x.cos(),
        UnaryOp::Cos => -(g * &x.sin()),
        UnaryOp::Erf => g * &(x.square().neg().exp() * std::f64::consts::FRAC_2_SQRT_PI),
        UnaryOp::LogicalNot => return None,
    })
}

fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, y: &Tensor, g: &Tensor, need: [bool; 2]) -> Vec<Option<Tensor>> {
    let (sa, sb) = (a.shape(), b.shape());
    // Each side is computed only when needed.
    let both = |da: &dyn Fn() -> Tensor, db: &dyn Fn() -> Tensor| {
        vec![need[0].then(|| unbroadcast(&da(), sa)), need[1].then(|| unbroadcast(&db(), sb))]
    };
    match op {
        BinaryOp::Add => both(&|| g.clone(), &|| g.clone()),
        BinaryOp::Sub => both(&|| g.clone(), &|| -g),
        BinaryOp::Mul => both(&|| g * b, &|| g * a),
        BinaryOp::Div => both(&|| g / b, &|| -(g * &(y / b))),
        BinaryOp::Pow => both(&|| g * &(b * &a.pow(&(b - 1.0))), &|| {
            let safe_log = a.select(&a.gt(0.0), 1.0).log();
            g * &(y * &safe_log)
        }),
        BinaryOp::Maximum | BinaryOp::Minimum => {
            let left = if op == BinaryOp::Maximum { a.ge(b) } else { a.le(b) };
            let zero = Tensor::zeros([], g.dtype());
            both(&|| g.select(&left, &zero), &|| zero.select(&left, g))
        }
        BinaryOp::FloorDiv => vec![Some(Tensor::zeros_like(a)), Some(Tensor::zeros_like(b))],
        // TensorFlow's FloorMod gradient: (g, −g·⌊a/b⌋).
        BinaryOp::Mod => both(&|| g.clone(), &|| -(g * &a.floordiv(b))),
        _ => vec![None, None],
    }
}

fn reduce(op: ReduceOp, x: &Tensor, y: &Tensor, g: &Tensor, axes: &[usize], keepdims: bool) -> Tensor {
    let kept = crate::ops::reduce::reduced_shape(x.shape(), axes, true);
    let gk = if keepdims { g.clone() } else { g.reshape_to(&kept) };
    let yk = || if keepdims { y.clone() } else { y.reshape_to(&kept) };
    let ax: Vec<i64> = axes.iter().map(|&a| a as i64).collect();
    match op {
        ReduceOp::Sum => broadcast_like(&gk, x),
        ReduceOp::Mean => {
            let known = axes.iter().all(|&a| x.dims()[a] != crate::shape::UNKNOWN);
            let scaled = if known {
                let n: usize = axes.iter().map(|&a| x.dims()[a]).product();
                &gk / n as f64
            } else {
                // The count is known only at run time: Σ 1 over the axes (exact).
                &gk / &Tensor::ones_like(x).sum(ax.clone(), true)
            };
            broadcast_like(&scaled, x)
        }
        ReduceOp::Max | ReduceOp::Min => {
            let mask = x.eq(yk()).cast(x.dtype());
            let count = mask.sum(ax, true);
            &(&mask * &gk) / &count
        }
        ReduceOp::Prod => {
            // ∂/∂x_i Π x = Π_{j≠i} x_j, computed without dividing by zero: with z zeros
            // along the axes, the gradient is prod_nonzero/x_i (z = 0), prod_nonzero at the
            // zero (z = 1), 0 elsewhere.
            let is_zero = x.eq(0.0);
            let z = is_zero.cast(x.dtype()).sum(ax.clone(), true);
            let nonzero = Tensor::where_(&is_zero, 1.0, x);
            let p = nonzero.prod(ax, true);
            let no_zero = &p / &nonzero;
            let one_zero = p.select(&z.eq(1.0), 0.0);
            let d = no_zero.select(&z.eq(0.0), Tensor::where_(&is_zero, &one_zero, 0.0));
            &d * &gk
        }
    }
}

/// The gradient of a scatter-add: `g` gathered at the indices, and 0 for the slices the
/// scatter dropped (indices outside `[0, size)`: the negative ids of a segment sum).
fn scatter_add_grad(g: &Tensor, ids: &Tensor, axis: usize, size: usize) -> Tensor {
    let (picked, inside) = gather_inside(g, ids, axis, size);
    Tensor::where_(&inside, &picked, 0.0)
}

/// `g` gathered at `ids` along `axis` (an id outside `0..size` reads row 0), and
/// whether each id is inside, shaped to broadcast against the gathered values.
fn gather_inside(g: &Tensor, ids: &Tensor, axis: usize, size: usize) -> (Tensor, Tensor) {
    let inside = ids.ge(0i64).logical_and(ids.lt(size as i64));
    let safe = Tensor::where_(&inside, ids, 0i64);
    let picked = apply(Op::Gather { axis }, &[g, &safe]);
    let dims: Vec<usize> = std::iter::repeat_n(1, axis)
        .chain(ids.dims().iter().copied())
        .chain(std::iter::repeat_n(1, g.rank() - axis - 1))
        .collect();
    (picked, inside.reshape_to(&Shape::from(dims)))
}

/// The gradient of a segment max (or min) `y`: each segment's gradient shared equally
/// by the updates equal to its extreme (TensorFlow's rule for ties); 0 for the others
/// and for dropped ids.
fn scatter_extreme_grad(g: &Tensor, x: &[&Tensor], y: &Tensor, axis: usize, size: usize) -> Tensor {
    let (upd, ids) = (x[0], x[1]);
    let (extreme, inside) = gather_inside(y, ids, axis, size);
    let chosen = upd.eq(&extreme).logical_and(&inside);
    let ties = apply(Op::ScatterAdd { axis, size }, &[&chosen.cast(g.dtype()), ids]).maximum(1.0);
    let (share, _) = gather_inside(&(g / &ties), ids, axis, size);
    Tensor::where_(&chosen, &share, 0.0)
}

/// The gradient of a segment product `y` (TensorFlow's rule, zeros included): each
/// update gets its segment's gradient times the product of the segment's other updates —
/// `y / x` where the segment holds no zero; for the segment's only zero, the product of
/// its nonzero updates; 0 for every update of a segment with a zero that is not that
/// zero, and for dropped ids.
fn scatter_prod_grad(g: &Tensor, x: &[&Tensor], y: &Tensor, axis: usize, size: usize) -> Tensor {
    let (upd, ids) = (x[0], x[1]);
    let segment = |t: &Tensor| gather_inside(t, ids, axis, size).0;
    let is_zero = upd.eq(0.0);
    let zeros = apply(Op::ScatterAdd { axis, size }, &[&is_zero.cast(upd.dtype()), ids]);
    let nonzero = Tensor::where_(&is_zero, Tensor::ones_like(upd), upd);
    let nonzero_prod = apply(Op::ScatterProd { axis, size }, &[&nonzero, ids]);
    let (gy, inside) = gather_inside(&(g * y), ids, axis, size);
    let (zeros, g_at) = (segment(&zeros), segment(g));
    // A nonzero update: g·y/x (y is 0 when the segment holds a zero, and so is this).
    let plain = &gy / &nonzero;
    let only_zero = is_zero.logical_and(zeros.eq(1.0));
    let at_zero = Tensor::where_(&only_zero, &g_at * &segment(&nonzero_prod), 0.0);
    Tensor::where_(&inside, Tensor::where_(&is_zero, &at_zero, &plain), 0.0)
}

/// The gradient of a running product `y` of `x` along `axis` (with its `exclusive` and
/// `reverse` options), exact where `x` holds zeros. Element j enters the products
/// after it: its gradient is `Σ_i g_i · Π_{k in i's product, k ≠ j} x_k`. Before a
/// line's first zero that is `Σ_i g_i y_i / x_j` (the sums of `g·y` the other way, as
/// TensorFlow computes it everywhere); at the first zero, the same sums over the products
/// of `x` with that zero read as 1; after it, every product holds the zero: 0.
fn cumprod_grad(x: &Tensor, y: &Tensor, g: &Tensor, axis: usize, (exclusive, reverse): (bool, bool)) -> Tensor {
    use crate::ops::CumsumOptions;
    let a = axis as i64;
    let later = |v: &Tensor| v.cumsum_with(a, CumsumOptions { exclusive, reverse: !reverse });
    let is_zero = x.eq(0.0);
    let zeros_before = is_zero.cast(x.dtype()).cumsum_with(a, CumsumOptions { exclusive: true, reverse });
    let first_zero = is_zero.logical_and(zeros_before.eq(0.0));
    let past_first = zeros_before.gt(0.0);
    let safe = Tensor::where_(&is_zero, Tensor::ones_like(x), x);
    let before_zero = later(&(g * y)) / &safe;
    let without_it =
        Tensor::where_(&first_zero, Tensor::ones_like(x), x).cumprod_with(a, CumsumOptions { exclusive, reverse });
    let at_zero = later(&(g * &without_it));
    Tensor::where_(&past_first, Tensor::zeros_like(x), Tensor::where_(&first_zero, &at_zero, &before_zero))
}

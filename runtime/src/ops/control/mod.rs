//! Control flow on tensor values: `cond`, `while_loop`, `tf_range` / `for_range`.
//!
//! Eagerly these are plain Rust control flow that reads the predicate's value. While a
//! function is traced, `cond` traces both branches into the `then` / `else` regions of a
//! `cond` node and `while_loop` traces its condition and body once into a `while` node,
//! so the graph holds one loop however many trips it makes at run time. Effects inside
//! (variable assigns, `tf_print!`) become effects of the regions and run exactly when
//! and as often as they would eagerly.
//!
//! Gradients: eagerly the tape sees the ops of the branch or trips that ran. Traced, a
//! `cond` is differentiated as a whole: its gradient is another `cond` whose branches
//! recompute their forward branch and differentiate it (`grad.rs`). A traced
//! `while_loop` is differentiable when `maximum_iterations` bounds it: while a tape
//! records, it is traced as that many guarded steps, each a `cond`, so every trip's
//! values are kept for the backward pass. Without a bound, asking for the gradient is a
//! clear error.

pub(crate) mod grad;
mod range;

use std::panic::Location;

pub use range::{for_range, tf_range, RangeBound, TfRange};

use crate::autodiff;
use crate::dtype::DType;
use crate::error::OpError;
use crate::ir::{NodeKind, ValueType};
use crate::shape::{Shape, UNKNOWN};
use crate::tensor::Tensor;
use crate::trace::function::FunctionOutput;
use crate::trace::{self, TracedRegion};

/// Options of [`while_loop_with`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WhileOptions {
    /// Stop after this many trips even if the condition still holds (TensorFlow's
    /// `maximum_iterations`). Needed to differentiate a traced loop.
    pub maximum_iterations: Option<u64>,
    /// One shape per loop variable (in flattening order) that its value may take on any
    /// trip; unknown dims (`Shape::with_unknown`) let that dim change between trips.
    /// Without it a loop variable must keep its shape.
    pub shape_invariants: Option<Vec<Shape>>,
}

impl WhileOptions {
    pub fn new() -> WhileOptions {
        WhileOptions::default()
    }

    pub fn maximum_iterations(mut self, n: u64) -> WhileOptions {
        self.maximum_iterations = Some(n);
        self
    }

    pub fn shape_invariants(mut self, shapes: Vec<Shape>) -> WhileOptions {
        self.shape_invariants = Some(shapes);
        self
    }
}

pub(crate) fn flatten<T: FunctionOutput>(v: &T) -> (Vec<Tensor>, Vec<usize>) {
    let (mut ts, mut lens) = (Vec::new(), Vec::new());
    v.flatten(&mut ts, &mut lens);
    (ts, lens)
}

pub(crate) fn rebuild<T: FunctionOutput>(ts: Vec<Tensor>, lens: &[usize], op: &'static str, loc: &Location<'_>) -> T {
    T::rebuild(&mut crate::trace::function::Outputs::from_vec(ts).into_iter(), &mut lens.iter())
        .unwrap_or_else(|| OpError::new(op, "internal: the value's structure changed while it was traced").raise(loc))
}

/// Checks that `pred` is a scalar bool.
pub(crate) fn check_predicate(op: &'static str, pred: &Tensor, loc: &Location<'_>) {
    if pred.dtype() != DType::Bool || pred.rank() != 0 {
        OpError::new(
            op,
            format!(
                "needs a scalar bool predicate, got {}{}; reduce it to one element first (e.g. \
                 `x.sum_all().gt(0.0)`)",
                pred.dtype(),
                pred.shape()
            ),
        )
        .raise(loc)
    }
}

/// The value of a concrete scalar bool.
pub(crate) fn truth(op: &'static str, pred: &Tensor, loc: &Location<'_>) -> bool {
    if pred.is_symbolic() {
        trace::escaped(op).raise(loc)
    }
    // A predicate on a device is read back to the host.
    pred.to(crate::device::Device::Cpu)
        .and_then(|p| p.to_scalar::<bool>())
        .unwrap_or_else(|e| OpError::new(op, e.to_string()).raise(loc))
}

/// `then_fn()` if `pred` holds, else `else_fn()` (TensorFlow's `tf.cond`).
///
/// Eagerly (or when `pred` is a concrete tensor) only the chosen branch runs. While
/// tracing with a symbolic `pred`, both branches are traced into one `cond` node and the
/// branch is chosen at run time; they must return the same structure of tensors with the
/// same dtypes and ranks (dims that differ become unknown).
///
/// ```
/// use tensorjit_runtime::{ops::control::cond, Tensor};
/// let x = Tensor::from_vec(vec![3.0f32, -1.0], [2]).unwrap();
/// let y = cond(&x.sum_all().gt(0.0), || &x * 2.0, || -&x);
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![6.0, -2.0]);
/// ```
#[track_caller]
pub fn cond<T: FunctionOutput>(pred: &Tensor, then_fn: impl FnOnce() -> T, else_fn: impl FnOnce() -> T) -> T {
    cond_at(pred, then_fn, else_fn, Location::caller())
}

pub(crate) fn cond_at<T: FunctionOutput>(
    pred: &Tensor,
    then_fn: impl FnOnce() -> T,
    else_fn: impl FnOnce() -> T,
    loc: &'static Location<'static>,
) -> T {
    check_predicate("cond", pred, loc);
    if !pred.is_symbolic() {
        return if truth("cond", pred, loc) { then_fn() } else { else_fn() };
    }
    if !trace::is_tracing() {
        trace::escaped("cond").raise(loc)
    }
    let (a, b) = {
        let _pause = autodiff::pause();
        (Branch::trace(then_fn, loc), Branch::trace(else_fn, loc))
    };
    let lens = a.lens.clone();
    let outs = emit_cond(pred, a, b, loc);
    rebuild(outs, &lens, "cond", loc)
}

/// A traced branch: its region, the types it yields and its structure.
pub(crate) struct Branch {
    pub(crate) traced: TracedRegion,
    types: Vec<ValueType>,
    lens: Vec<usize>,
}

impl Branch {
    /// Closes the open region, yielding `outputs` (flattened, with no `Vec` lengths).
    pub(crate) fn close(outputs: &[Tensor], loc: &Location<'_>) -> Branch {
        let types = outputs.iter().map(trace::value_type).collect();
        let traced = trace::end_region(outputs).unwrap_or_else(|e| e.raise(loc));
        Branch { traced, types, lens: Vec::new() }
    }

    fn trace<T: FunctionOutput>(f: impl FnOnce() -> T, loc: &Location<'_>) -> Branch {
        trace::begin_region(&[]);
        let (ts, lens) = flatten(&f());
        Branch { lens, ..Branch::close(&ts, loc) }
    }
}

/// The type both branches' k-th outputs fit: same dtype and rank; dims that differ
/// become unknown.
fn merge(k: usize, a: &ValueType, b: &ValueType, loc: &Location<'_>) -> ValueType {
    if a.dtype != b.dtype || a.shape.rank() != b.shape.rank() {
        OpError::new(
            "cond",
            format!(
                "output {k} is {a} in the then branch but {b} in the else branch; both branches must return \
                 tensors of the same dtype and rank"
            ),
        )
        .raise(loc)
    }
    let dims: Vec<usize> =
        a.shape.iter().zip(b.shape.iter()).map(|(&x, &y)| if x == y { x } else { UNKNOWN }).collect();
    ValueType { dtype: a.dtype, shape: Shape::from(dims) }
}

/// Emits the `cond` node of two traced branches (and its gradient record).
pub(crate) fn emit_cond(pred: &Tensor, a: Branch, b: Branch, loc: &'static Location<'static>) -> Vec<Tensor> {
    if a.lens != b.lens || a.types.len() != b.types.len() {
        OpError::new(
            "cond",
            format!(
                "the then branch returns {} tensors but the else branch {} (or their Vec lengths differ); both \
                 branches must return the same structure",
                a.types.len(),
                b.types.len()
            ),
        )
        .raise(loc)
    }
    let types: Vec<ValueType> =
        a.types.iter().zip(&b.types).enumerate().map(|(k, (x, y))| merge(k, x, y, loc)).collect();
    let regions = vec![a.traced.region.clone(), b.traced.region.clone()];
    let outs = trace::push_control(NodeKind::Cond, &[pred], regions, &types).unwrap_or_else(|e| e.raise(loc));
    if autodiff::recording() {
        grad::record_cond(pred, &a.traced, &b.traced, &outs, loc);
    }
    outs
}

/// Runs `body_fn` while `cond_fn` holds (TensorFlow's `tf.while_loop`) and returns the
/// final loop variables. See [`while_loop_with`].
///
/// ```
/// use tensorjit_runtime::{ops::control::while_loop, Tensor};
/// let x = Tensor::ones([4], tensorjit_runtime::DType::F32);
/// let y = while_loop(|x: &Tensor| x.sum_all().lt(100.0), |x| &x * 2.0, x);
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![32.0; 4]);
/// ```
#[track_caller]
pub fn while_loop<S: FunctionOutput>(cond_fn: impl FnMut(&S) -> Tensor, body_fn: impl FnMut(S) -> S, vars: S) -> S {
    while_loop_at(cond_fn, body_fn, vars, &WhileOptions::default(), Location::caller())
}

/// [`while_loop`] with options (`maximum_iterations`, `shape_invariants`).
///
/// Loop variables are any structure of tensors ([`FunctionOutput`]: a tensor, tuples,
/// `Vec`s). Eagerly it is a Rust loop. While tracing, the condition and the body are
/// traced once each into a `while` node: the body must return the loop variables with
/// the same structure, dtypes and shapes (or shapes its `shape_invariants` accept).
#[track_caller]
pub fn while_loop_with<S: FunctionOutput>(
    cond_fn: impl FnMut(&S) -> Tensor,
    body_fn: impl FnMut(S) -> S,
    vars: S,
    options: &WhileOptions,
) -> S {
    while_loop_at(cond_fn, body_fn, vars, options, Location::caller())
}

pub(crate) fn while_loop_at<S: FunctionOutput>(
    mut cond_fn: impl FnMut(&S) -> Tensor,
    mut body_fn: impl FnMut(S) -> S,
    vars: S,
    options: &WhileOptions,
    loc: &'static Location<'static>,
) -> S {
    if !trace::is_tracing() {
        let (mut vars, mut trips) = (vars, 0u64);
        while options.maximum_iterations.is_none_or(|m| trips < m) {
            let c = cond_fn(&vars);
            check_predicate("while_loop", &c, loc);
            if !truth("while_loop", &c, loc) {
                break;
            }
            vars = body_fn(vars);
            trips += 1;
        }
        return vars;
    }
    if let (true, Some(n)) = (autodiff::recording(), options.maximum_iterations) {
        return unrolled(cond_fn, body_fn, vars, n, loc);
    }
    let (init, lens) = flatten(&vars);
    drop(vars);
    let types = loop_types(&init, options, loc);
    let (cond_r, body_r) = {
        let _pause = autodiff::pause();
        let params = trace::begin_region(&types).unwrap_or_default();
        let c = cond_fn(&rebuild(params, &lens, "while_loop", loc));
        check_predicate("while_loop", &c, loc);
        let cond_r = trace::end_region(&[c]).unwrap_or_else(|e| e.raise(loc));
        let params = trace::begin_region(&types).unwrap_or_default();
        let (next, next_lens) = flatten(&body_fn(rebuild(params, &lens, "while_loop", loc)));
        check_body(&types, &lens, &next, &next_lens, loc);
        (cond_r, trace::end_region(&next).unwrap_or_else(|e| e.raise(loc)))
    };
    let outs = emit_while(&init, &types, (cond_r, body_r), options.maximum_iterations, loc);
    rebuild(outs, &lens, "while_loop", loc)
}

/// Emits the `while` node of traced condition and body regions over loop variables
/// `init` of types `types` (and, under a recording tape, its gradient record).
pub(crate) fn emit_while(
    init: &[Tensor],
    types: &[ValueType],
    (cond, body): (TracedRegion, TracedRegion),
    max_iterations: Option<u64>,
    loc: &'static Location<'static>,
) -> Vec<Tensor> {
    let regions = vec![cond.region.clone(), body.region.clone()];
    let refs: Vec<&Tensor> = init.iter().collect();
    let kind = NodeKind::While { max_iterations };
    let outs = trace::push_control(kind, &refs, regions, types).unwrap_or_else(|e| e.raise(loc));
    if autodiff::recording() {
        grad::record_unbounded_while(init, &[&cond, &body], &outs, loc);
    }
    outs
}

/// The types of the loop variables: their initial types, or the shape invariants.
pub(crate) fn loop_types(init: &[Tensor], options: &WhileOptions, loc: &Location<'_>) -> Vec<ValueType> {
    let Some(inv) = &options.shape_invariants else { return init.iter().map(trace::value_type).collect() };
    if inv.len() != init.len() {
        OpError::new("while_loop", format!("{} shape invariants given for {} loop variables", inv.len(), init.len()))
            .raise(loc)
    }
    init.iter()
        .zip(inv)
        .enumerate()
        .map(|(k, (t, s))| {
            if !s.accepts(t.shape()) {
                OpError::new(
                    "while_loop",
                    format!(
                        "loop variable {k} starts with shape {} which its shape invariant {s} does not accept",
                        t.shape()
                    ),
                )
                .raise(loc)
            }
            ValueType { dtype: t.dtype(), shape: s.clone() }
        })
        .collect()
}

pub(crate) fn check_body(
    types: &[ValueType],
    lens: &[usize],
    next: &[Tensor],
    next_lens: &[usize],
    loc: &Location<'_>,
) {
    if next.len() != types.len() || next_lens != lens {
        OpError::new(
            "while_loop",
            format!(
                "the body returns {} tensors for {} loop variables (or their Vec lengths changed); it must return \
                 the loop variables with the same structure",
                next.len(),
                types.len()
            ),
        )
        .raise(loc)
    }
    for (k, (ty, t)) in types.iter().zip(next).enumerate() {
        if t.dtype() != ty.dtype {
            OpError::new(
                "while_loop",
                format!(
                    "loop variable {k} is {ty} before the loop but {} after one trip; cast it in the body",
                    trace::value_type(t)
                ),
            )
            .raise(loc)
        }
        if !ty.shape.accepts(t.shape()) {
            OpError::new(
                "while_loop",
                format!(
                    "loop variable {k} has shape {} before the loop but {} after one trip; pass \
                     `WhileOptions::new().shape_invariants(..)` with an unknown dim (`Shape::with_unknown`) where \
                     it may change",
                    ty.shape,
                    t.shape()
                ),
            )
            .raise(loc)
        }
    }
}

/// A loop bounded by `n` trips traced as `n` guarded steps (each a `cond`), so that a
/// recording tape can differentiate it: every trip's values stay in the graph.
fn unrolled<S: FunctionOutput>(
    mut cond_fn: impl FnMut(&S) -> Tensor,
    mut body_fn: impl FnMut(S) -> S,
    vars: S,
    n: u64,
    loc: &'static Location<'static>,
) -> S {
    let (mut state, lens) = flatten(&vars);
    drop(vars);
    let mut active: Option<Tensor> = None;
    for _ in 0..n {
        let c = cond_fn(&rebuild(state.clone(), &lens, "while_loop", loc));
        check_predicate("while_loop", &c, loc);
        let c = match active {
            Some(a) => a.logical_and(&c),
            None => c,
        };
        let types: Vec<ValueType> = state.iter().map(trace::value_type).collect();
        let (go, stay) = (state.clone(), state);
        state = cond_at(
            &c,
            || {
                let (next, next_lens) = flatten(&body_fn(rebuild(go, &lens, "while_loop", loc)));
                check_body(&types, &lens, &next, &next_lens, loc);
                next
            },
            || stay,
            loc,
        );
        active = Some(c);
    }
    rebuild(state, &lens, "while_loop", loc)
}

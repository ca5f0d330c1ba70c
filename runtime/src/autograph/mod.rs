//! The run-time half of AutoGraph: what `#[tf_function]` rewrites `if`, `while` and
//! `for … in tf_range(..)` into (the macro crate holds the rewriting itself).
//!
//! A converted `if c { … } else { … }` evaluates `c` once and matches on `test`: a
//! `bool` runs the user's own Rust `if` (no overhead, exact Rust semantics); a `Tensor`
//! drives an [`If`]: eagerly it reads the predicate and runs one branch, while tracing
//! it records both branches into a `cond` node. The variables the branches assign
//! travel through as one [`AutoState`] tuple. Loops work the same way with [`While`].
//! Constructs that cannot be converted when the condition is a tensor (an early
//! `return` deep inside a branch, `break` out of a Rust loop, `?`) go through
//! [`static_only_jump`] / [`static_only_return`], whose trait bounds make them a
//! compile error naming the construct when the condition is a `Tensor`.

mod state;

use std::panic::Location;

pub use state::{AutoState, Carried, Probe, StateTuple, ViaAutoState, ViaOpaque};

use crate::autodiff::{self, Pause};
use crate::dtype::DType;
use crate::error::OpError;
use crate::ir::ValueType;
use crate::ops::control::{self, Branch, WhileOptions};
use crate::tensor::Tensor;
use crate::trace;

/// A condition, classified by its type.
pub enum Test {
    /// A Rust `bool`: plain Rust control flow.
    Static(bool),
    /// A tensor: `cond` / `while_loop` when traced, a branch on its value when eager.
    Tensor(Tensor),
}

/// What may stand in a converted `if` / `while` condition.
#[diagnostic::on_unimplemented(
    message = "the condition of a converted `if`/`while` must be a `bool` or a scalar bool `Tensor`, not `{Self}`",
    label = "not a bool or a Tensor"
)]
pub trait Condition {
    fn test(self) -> Test;
}

impl Condition for bool {
    #[inline(always)]
    fn test(self) -> Test {
        Test::Static(self)
    }
}
impl Condition for &bool {
    #[inline(always)]
    fn test(self) -> Test {
        Test::Static(*self)
    }
}
impl Condition for Tensor {
    fn test(self) -> Test {
        Test::Tensor(self)
    }
}
impl Condition for &Tensor {
    fn test(self) -> Test {
        Test::Tensor(self.clone())
    }
}

/// Classifies a condition.
#[inline(always)]
pub fn test(c: impl Condition) -> Test {
    c.test()
}

/// The tensor of a condition inside a converted loop (a `bool` becomes a constant).
pub fn to_tensor(c: impl Condition) -> Tensor {
    match c.test() {
        Test::Static(b) => Tensor::scalar(b),
        Test::Tensor(t) => t,
    }
}

/// The type of a loop's condition, for checking the `break`s and `continue`s under it.
pub struct Marker<T>(std::marker::PhantomData<T>);

impl<T> Clone for Marker<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Marker<T> {}

/// The marker of a condition's type (never reads it).
#[inline(always)]
pub fn marker<T>(_: &T) -> Marker<T> {
    Marker(std::marker::PhantomData)
}

/// Pairs (loop condition, `if` condition) under which a `break` / `continue` may stay a
/// Rust jump: the `if` is on a `bool`, or the loop's condition is a tensor (then this copy
/// of the body is the Rust arm that never runs; the tensor arm converts the jump).
#[diagnostic::on_unimplemented(
    message = "AutoGraph cannot convert a `break`/`continue` under a Tensor condition that leaves a Rust loop (`loop`, \
               `while` on a bool, or `for` over a Rust iterator; those are unrolled while tracing)",
    label = "this condition is a Tensor inside a Rust loop",
    note = "loop with `while <tensor condition>` or `for i in tf_range(..)` instead, or make the condition a Rust \
            `bool`"
)]
pub trait JumpAllowed {}
impl<C> JumpAllowed for (Tensor, C) {}
impl<C> JumpAllowed for (&Tensor, C) {}
impl JumpAllowed for (bool, bool) {}
impl JumpAllowed for (bool, &bool) {}
impl JumpAllowed for (&bool, bool) {}
impl JumpAllowed for (&bool, &bool) {}

/// The value of an `if` condition whose branches `break` / `continue` a Rust loop.
#[inline(always)]
pub fn static_only_jump<L, C: Condition>(_: Marker<L>, c: C) -> bool
where
    (L, C): JumpAllowed,
{
    matches!(c.test(), Test::Static(true))
}

/// The value of a condition in the Rust arm of a converted `while` (a tensor never
/// reaches it).
#[inline(always)]
pub fn static_value(c: impl Condition) -> bool {
    matches!(c.test(), Test::Static(true))
}

/// Marks `while` conditions whose loop AutoGraph cannot convert.
#[diagnostic::on_unimplemented(
    message = "AutoGraph cannot convert this `while` on a Tensor condition: its body has a `return`, `?`, a labelled \
               `break`/`continue`, or a `break`/`continue` inside a `match`",
    label = "this condition is a `{Self}`",
    note = "compute a flag in the body instead (`done = Tensor::scalar(true)`) and test it in the loop condition"
)]
pub trait StaticLoop {}
impl StaticLoop for bool {}
impl StaticLoop for &bool {}

/// The condition of a loop that can only run as a Rust loop.
#[inline(always)]
pub fn static_loop<C: Condition + StaticLoop>(c: C) -> bool {
    matches!(c.test(), Test::Static(true))
}

/// Marks conditions around a `return` or `?` that AutoGraph cannot convert.
#[diagnostic::on_unimplemented(
    message = "AutoGraph cannot convert a `return`, `?` or labelled `break`/`continue` inside this `if` when its \
               condition is a Tensor",
    label = "this condition is a `{Self}`",
    note = "an early `return` is converted only as the last statement of an `if` branch in the function's outermost \
            block; compute the result in both branches and return it after the `if`"
)]
pub trait StaticReturn {}
impl StaticReturn for bool {}
impl StaticReturn for &bool {}

/// The condition's value, when the block around it can only run as Rust control flow.
#[inline(always)]
pub fn static_only_return<C: Condition + StaticReturn>(c: C) -> bool {
    matches!(c.test(), Test::Static(true))
}

/// A `break` / `continue` flag of a converted loop.
pub fn flag(b: bool) -> Tensor {
    Tensor::scalar(b)
}

/// `!brk && !cont`: whether the rest of a loop body runs.
pub fn proceed(brk: &Tensor, cont: &Tensor) -> Tensor {
    brk.logical_or(cont).logical_not()
}

/// `!brk && c`: a loop condition with its break flag.
pub fn unbroken(brk: &Tensor, c: Tensor) -> Tensor {
    brk.logical_not().logical_and(c)
}

fn tensors_of<S: AutoState>(s: &S) -> Vec<Tensor> {
    let mut v = Vec::new();
    s.tensors(&mut v);
    v
}

fn with<S: AutoState>(s: S, ts: Vec<Tensor>) -> S {
    s.with_tensors(&mut ts.into_iter())
}

fn name(names: &[&str], k: Option<usize>) -> String {
    match k.and_then(|k| names.get(k)) {
        Some(n) if *n == "__tj_out" => "the value of the `if` expression".to_string(),
        Some(n) => format!("`{n}`"),
        None => "a variable".to_string(),
    }
}

enum IfMode<R> {
    Eager { take_then: bool },
    Traced { pred: Tensor, pause: Option<Pause>, then: Option<Box<(Branch, R)>>, other: Option<Box<(Branch, R)>> },
}

/// A converted `if` on a tensor (see the module docs): `S` is the tuple of the variables
/// the branches assign, `R` that tuple plus the `if`'s value. The macro drives it:
/// `run_then` → the branch → `end_then`, `run_else` → the branch → `end_else`, `finish`.
pub struct If<S: StateTuple + Clone, R: StateTuple> {
    state: Option<S>,
    result: Option<R>,
    mode: IfMode<R>,
    names: &'static [&'static str],
    loc: &'static Location<'static>,
}

/// The error for a variable whose type cannot go through a traced branch or loop.
fn opaque_error(what: &str, names: &[&str], k: usize, ty: &str, loc: &Location<'_>) -> ! {
    OpError::new(
        "autograph",
        format!(
            "{} (of type `{ty}`) is assigned inside {what} on a Tensor condition, which is traced; only tensors, \
             numbers, bools, strings and tuples / Vecs / Options of those can be carried through it — compute it \
             outside, or branch on a Rust bool",
            name(names, Some(k))
        ),
    )
    .raise(loc)
}

impl<S: StateTuple + Clone, R: StateTuple> If<S, R> {
    /// Starts a converted `if` on `pred` with the assigned variables' current values.
    #[track_caller]
    pub fn new(pred: Tensor, state: S, names: &'static [&'static str]) -> If<S, R> {
        let loc = Location::caller();
        control::check_predicate("if", &pred, loc);
        let mode = if pred.is_symbolic() {
            if !trace::is_tracing() {
                trace::escaped("if").raise(loc)
            }
            IfMode::Traced { pred, pause: Some(autodiff::pause()), then: None, other: None }
        } else {
            IfMode::Eager { take_then: control::truth("if", &pred, loc) }
        };
        If { state: Some(state), result: None, mode, names, loc }
    }

    fn start(&mut self, then: bool) -> Option<S> {
        match &self.mode {
            IfMode::Eager { take_then } if *take_then == then => self.state.take(),
            IfMode::Eager { .. } => None,
            IfMode::Traced { .. } => {
                if let Some((k, ty)) = self.state.as_ref().and_then(|s| s.first_opaque()) {
                    opaque_error("an `if`", self.names, k, ty, self.loc)
                }
                trace::begin_region(&[]);
                self.state.clone()
            }
        }
    }

    fn end(&mut self, r: R, then: bool) {
        match &mut self.mode {
            IfMode::Eager { .. } => self.result = Some(r),
            IfMode::Traced { then: t, other, .. } => {
                let branch = Branch::close(&tensors_of(&r), self.loc);
                *(if then { t } else { other }) = Some(Box::new((branch, r)));
            }
        }
    }

    /// The state for the `then` branch, if it runs.
    pub fn run_then(&mut self) -> Option<S> {
        self.start(true)
    }
    pub fn end_then(&mut self, r: R) {
        self.end(r, true)
    }
    /// The state for the `else` branch (identity when the `if` has none), if it runs.
    pub fn run_else(&mut self) -> Option<S> {
        self.start(false)
    }
    pub fn end_else(&mut self, r: R) {
        self.end(r, false)
    }

    /// The assigned variables and the value after the `if`.
    pub fn finish(self) -> R {
        let loc = self.loc;
        fn missing(loc: &Location<'_>) -> ! {
            OpError::new("if", "internal: a branch did not finish").raise(loc)
        }
        match self.mode {
            IfMode::Eager { .. } => self.result.unwrap_or_else(|| missing(loc)),
            IfMode::Traced { pred, mut pause, then, other } => {
                let (a, ra) = *then.unwrap_or_else(|| missing(loc));
                let (b, rb) = *other.unwrap_or_else(|| missing(loc));
                pause.take();
                if let Some((k, ty)) = ra.first_opaque() {
                    opaque_error("an `if`", self.names, k, ty, loc)
                }
                if let Some(k) = ra.first_difference(&rb) {
                    OpError::new(
                        "if",
                        format!(
                            "{} is not a tensor but gets different values in the two branches of an `if` on a \
                             Tensor condition; only tensors can differ between traced branches (make it a Tensor, \
                             e.g. `Tensor::scalar(..)`, or branch on a bool)",
                            name(self.names, Some(k))
                        ),
                    )
                    .raise(loc)
                }
                with(ra, control::emit_cond(&pred, a, b, loc))
            }
        }
    }
}

enum WhileMode {
    Eager {
        trips: u64,
    },
    /// Tracing: which region is open, and the loop variables' types.
    Traced {
        stage: Stage,
        types: Vec<ValueType>,
        pause: Option<Pause>,
        cond: Option<trace::TracedRegion>,
    },
}

#[derive(PartialEq)]
enum Stage {
    Start,
    Cond,
    Body,
    Done,
}

/// A converted `while` on a tensor (and `for … in tf_range(..)`): the macro drives it as
/// `while let Some(s) = w.cond_state() { let c = …; let Some(s) = w.body_state(c, s) else
/// { break }; …; w.end_body(s) }` then `w.finish()`.
pub struct While<S: StateTuple + Clone> {
    state: Option<S>,
    /// The condition's value for the first trip, already evaluated (eager only).
    first: Option<Tensor>,
    init: Option<S>,
    mode: WhileMode,
    max: Option<u64>,
    names: &'static [&'static str],
    loc: &'static Location<'static>,
}

impl<S: StateTuple + Clone> While<S> {
    /// Starts a converted loop with the assigned variables' current values.
    #[track_caller]
    pub fn new(state: S, names: &'static [&'static str]) -> While<S> {
        While::with_options(state, names, WhileOptions::default())
    }

    #[track_caller]
    pub fn with_options(state: S, names: &'static [&'static str], options: WhileOptions) -> While<S> {
        let loc = Location::caller();
        let mode = if trace::is_tracing() {
            let init = tensors_of(&state);
            let types = control::loop_types(&init, &options, loc);
            WhileMode::Traced { stage: Stage::Start, types, pause: None, cond: None }
        } else {
            WhileMode::Eager { trips: 0 }
        };
        While { init: None, first: None, state: Some(state), mode, max: options.maximum_iterations, names, loc }
    }

    /// A loop whose condition has already been evaluated once, on the initial values:
    /// eagerly that value decides the first trip (so the condition runs exactly as often
    /// as in Rust); tracing evaluates it again inside the loop's condition region.
    #[track_caller]
    pub fn with_first(first: Tensor, state: S, names: &'static [&'static str]) -> While<S> {
        let mut w = While::with_options(state, names, WhileOptions::default());
        if matches!(w.mode, WhileMode::Eager { .. }) {
            w.first = Some(first);
        }
        w
    }

    /// The already evaluated first condition, once (eager only).
    pub fn take_first(&mut self) -> Option<Tensor> {
        self.first.take()
    }

    /// The loop variables for evaluating the condition; `None` once the loop is done.
    pub fn cond_state(&mut self) -> Option<S> {
        match &mut self.mode {
            WhileMode::Eager { trips } => {
                if self.max.is_some_and(|m| *trips >= m) {
                    return None;
                }
                self.state.take()
            }
            WhileMode::Traced { stage, types, pause, .. } => {
                if *stage != Stage::Start {
                    return None;
                }
                if let Some((k, ty)) = self.state.as_ref().and_then(|s| s.first_opaque()) {
                    opaque_error("a loop", self.names, k, ty, self.loc)
                }
                *stage = Stage::Cond;
                *pause = Some(autodiff::pause());
                let params = trace::begin_region(types).unwrap_or_default();
                let init = self.state.take()?;
                self.init = Some(init.clone());
                Some(with(init, params))
            }
        }
    }

    /// Given the condition's value and the loop variables `cond_state` lent: the loop
    /// variables for the body, or `None` to leave.
    pub fn body_state(&mut self, c: impl crate::autograph::Condition, s: S) -> Option<S> {
        let c = to_tensor(c);
        control::check_predicate("while", &c, self.loc);
        match &mut self.mode {
            WhileMode::Eager { .. } => {
                if control::truth("while", &c, self.loc) {
                    Some(s)
                } else {
                    self.state = Some(s);
                    None
                }
            }
            WhileMode::Traced { stage, types, cond, .. } => {
                *stage = Stage::Body;
                *cond = Some(trace::end_region(&[c]).unwrap_or_else(|e| e.raise(self.loc)));
                let params = trace::begin_region(types).unwrap_or_default();
                self.init.clone().map(|s| with(s, params))
            }
        }
    }

    /// The loop variables at the end of a trip.
    pub fn end_body(&mut self, s: S) {
        let loc = self.loc;
        match &mut self.mode {
            WhileMode::Eager { trips } => {
                *trips += 1;
                self.state = Some(s);
            }
            WhileMode::Traced { stage, types, pause, cond } => {
                *stage = Stage::Done;
                let init = self.init.take().unwrap_or_else(|| s.clone());
                if let Some(k) = init.first_difference(&s) {
                    OpError::new(
                        "while",
                        format!(
                            "{} is not a tensor but changes in the body of a loop on a Tensor condition; only \
                             tensors can change between traced trips (make it a Tensor, e.g. `Tensor::scalar(0)`)",
                            name(self.names, Some(k))
                        ),
                    )
                    .raise(loc)
                }
                let next = tensors_of(&s);
                let lens: Vec<usize> = Vec::new();
                control::check_body(types, &lens, &next, &lens, loc);
                let body = trace::end_region(&next).unwrap_or_else(|e| e.raise(loc));
                pause.take();
                let cond = cond.take().unwrap_or_else(|| OpError::new("while", "internal: no condition").raise(loc));
                let outs = control::emit_while(&tensors_of(&init), types, (cond, body), self.max, loc);
                self.state = Some(with(init, outs));
            }
        }
    }

    /// The loop variables after the loop.
    pub fn finish(self) -> S {
        let loc = self.loc;
        self.state.unwrap_or_else(|| OpError::new("while", "internal: the loop did not finish").raise(loc))
    }
}

/// The dtype of a flag (for the macro's type annotations).
pub const FLAG_DTYPE: DType = DType::Bool;

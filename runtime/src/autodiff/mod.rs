//! Reverse-mode automatic differentiation: `GradientTape`, as in TensorFlow.
//!
//! A tape records, from its creation until `gradient` (or `stop_recording`, or drop),
//! every op whose inputs it tracks: tensors it was asked to `watch`, values of trainable
//! variables read while it records (watched automatically), and results of recorded ops.
//! Tapes are per thread. Gradients are computed with public ops (`grads.rs`), so a tape
//! that is still recording while another computes gradients records that computation —
//! nested tapes give higher derivatives.

mod accumulate;
mod grads;

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::rc::Rc;

use crate::error::OpError;
use crate::ops::Op;
use crate::tensor::{Tensor, TensorId};
use crate::variable::{Variable, VariableId};

/// The backward rule of a recorded op with several outputs (control flow): output
/// gradients (`None` where none flowed) and which inputs need one → input gradients.
pub(crate) type CustomBackward = dyn Fn(&[Option<Tensor>], &[bool]) -> Vec<Option<Tensor>>;

enum Rule {
    Op(Op),
    Custom(Rc<CustomBackward>),
}

struct Record {
    rule: Rule,
    inputs: Vec<Tensor>,
    outputs: Vec<Tensor>,
}

struct TapeState {
    persistent: bool,
    watch_variables: bool,
    recording: Cell<bool>,
    used: Cell<bool>,
    tracked: RefCell<HashSet<TensorId>>,
    records: RefCell<Vec<Rc<Record>>>,
    /// Tensors read from each variable while recording.
    variable_reads: RefCell<HashMap<VariableId, Vec<Tensor>>>,
    /// Keeps watched tensors alive (their ids stay unique anyway).
    watched: RefCell<Vec<Tensor>>,
}

thread_local! {
    static TAPES: RefCell<Vec<Rc<TapeState>>> = const { RefCell::new(Vec::new()) };
    static RECORDING: Cell<usize> = const { Cell::new(0) };
}

/// Whether any tape on this thread is recording (the dispatch path's one check).
#[inline(always)]
pub(crate) fn recording() -> bool {
    RECORDING.with(|c| c.get() > 0)
}

fn set_recording(state: &TapeState, on: bool) {
    if state.recording.replace(on) != on {
        RECORDING.with(|c| if on { c.set(c.get() + 1) } else { c.set(c.get() - 1) });
    }
}

/// Adds a record (built at most once, shared) to every recording tape that tracks one of
/// the inputs (`ids`); those tapes then track the outputs.
fn record_on_tapes(ids: impl Iterator<Item = TensorId> + Clone, outputs: &[TensorId], make: impl FnOnce() -> Record) {
    TAPES.with(|tapes| {
        let tapes = tapes.borrow();
        let mut make = Some(make);
        let mut rec: Option<Rc<Record>> = None;
        for t in tapes.iter().filter(|t| t.recording.get()) {
            let mut tracked = t.tracked.borrow_mut();
            if !ids.clone().any(|x| tracked.contains(&x)) {
                continue;
            }
            tracked.extend(outputs.iter().copied());
            if rec.is_none() {
                rec = make.take().map(|f| Rc::new(f()));
            }
            if let Some(r) = &rec {
                t.records.borrow_mut().push(r.clone());
            }
        }
    });
}

/// Called by the dispatch path for every op while some tape records.
pub(crate) fn record(op: Op, inputs: &[&Tensor], output: &Tensor) {
    record_on_tapes(inputs.iter().map(|t| t.id), &[output.id], || Record {
        rule: Rule::Op(op),
        inputs: inputs.iter().map(|&t| t.clone()).collect(),
        outputs: vec![output.clone()],
    });
}

/// Records an op with a custom backward rule (control flow) on every recording tape that
/// tracks one of `inputs`.
pub(crate) fn record_custom(inputs: &[Tensor], outputs: &[Tensor], backward: Rc<CustomBackward>) {
    let ids: Vec<TensorId> = outputs.iter().map(|o| o.id).collect();
    record_on_tapes(inputs.iter().map(|t| t.id), &ids, || Record {
        rule: Rule::Custom(backward),
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
    });
}

/// Whether a recording tape tracks any of `inputs`.
pub(crate) fn any_tracked(inputs: &[Tensor]) -> bool {
    recording()
        && TAPES.with(|tapes| {
            tapes.borrow().iter().filter(|t| t.recording.get()).any(|t| {
                let tracked = t.tracked.borrow();
                inputs.iter().any(|x| tracked.contains(&x.id))
            })
        })
}

/// Pauses every recording tape until the guard drops (ops traced inside a control-flow
/// region are differentiated through the region's own rule, not op by op). Tapes created
/// while paused record normally.
pub(crate) struct Pause(Vec<Rc<TapeState>>);

pub(crate) fn pause() -> Pause {
    if !recording() {
        return Pause(Vec::new());
    }
    let paused: Vec<Rc<TapeState>> = TAPES.with(|t| t.borrow().iter().filter(|s| s.recording.get()).cloned().collect());
    for s in &paused {
        set_recording(s, false);
    }
    Pause(paused)
}

impl Drop for Pause {
    fn drop(&mut self) {
        for s in &self.0 {
            set_recording(s, true);
        }
    }
}

/// Gradients of several targets, each seeded with its own output gradient, with respect
/// to `sources` (tensors), from a tape that has recorded them (used by control-flow
/// gradients).
pub(crate) fn seeded_gradients(
    tape: &GradientTape,
    seeds: Vec<(Tensor, Tensor)>,
    sources: &[Tensor],
) -> Vec<Option<Tensor>> {
    let s = &tape.state;
    set_recording(s, false);
    let records: Vec<Rc<Record>> = s.records.borrow().clone();
    let live = leading_from(&records, sources.iter().map(|t| t.id), &s.tracked.borrow());
    let grads = backprop(&records, seeds, &live);
    sources.iter().map(|t| grads.get(&t.id).cloned()).collect()
}

/// Called when a variable's value is read while some tape records.
pub(crate) fn variable_read(var: &Variable, value: &Tensor) {
    TAPES.with(|tapes| {
        for t in tapes.borrow().iter().filter(|t| t.recording.get() && t.watch_variables && var.trainable()) {
            t.tracked.borrow_mut().insert(value.id);
            let mut reads = t.variable_reads.borrow_mut();
            let list = reads.entry(var.id()).or_default();
            if !list.iter().any(|x| x.id == value.id) {
                list.push(value.clone());
            }
        }
    });
}

/// What a gradient can be taken with respect to: a tensor or a variable.
pub trait Source {
    #[doc(hidden)]
    fn source_kind(&self) -> SourceKind<'_>;
}

#[doc(hidden)]
pub enum SourceKind<'a> {
    Tensor(&'a Tensor),
    Variable(&'a Variable),
}

impl Source for Tensor {
    fn source_kind(&self) -> SourceKind<'_> {
        SourceKind::Tensor(self)
    }
}
impl Source for Variable {
    fn source_kind(&self) -> SourceKind<'_> {
        SourceKind::Variable(self)
    }
}
impl<S: Source + ?Sized> Source for &S {
    fn source_kind(&self) -> SourceKind<'_> {
        (**self).source_kind()
    }
}

/// Records ops for reverse-mode differentiation (TensorFlow's `tf.GradientTape`).
///
/// ```
/// use tensorjit_runtime::{GradientTape, Tensor, Variable};
/// let w = Variable::new(Tensor::from_vec(vec![3.0f32], [1]).unwrap(), "w");
/// let tape = GradientTape::new();
/// let y = (&w * &w).sum_all(); // variables are watched automatically
/// let g = tape.gradient(&y, &[&w]);
/// assert_eq!(g[0].as_ref().unwrap().to_vec::<f32>().unwrap(), vec![6.0]);
/// ```
pub struct GradientTape {
    state: Rc<TapeState>,
}

impl Default for GradientTape {
    fn default() -> Self {
        GradientTape::new()
    }
}

impl GradientTape {
    fn start(persistent: bool, watch_variables: bool) -> GradientTape {
        let state = Rc::new(TapeState {
            persistent,
            watch_variables,
            recording: Cell::new(false),
            used: Cell::new(false),
            tracked: RefCell::default(),
            records: RefCell::default(),
            variable_reads: RefCell::default(),
            watched: RefCell::default(),
        });
        set_recording(&state, true);
        TAPES.with(|t| t.borrow_mut().push(state.clone()));
        GradientTape { state }
    }

    /// A tape that records until its one `gradient` call (or until dropped).
    pub fn new() -> GradientTape {
        GradientTape::start(false, true)
    }

    /// A tape that can be asked for gradients several times.
    pub fn persistent() -> GradientTape {
        GradientTape::start(true, true)
    }

    /// A tape that does not watch variables automatically (only what is `watch`ed).
    pub fn without_variable_watching(persistent: bool) -> GradientTape {
        GradientTape::start(persistent, false)
    }

    /// Tracks `t` so that gradients with respect to it can be taken.
    pub fn watch(&self, t: &Tensor) {
        self.state.tracked.borrow_mut().insert(t.id);
        self.state.watched.borrow_mut().push(t.clone());
    }

    /// Tracks a variable's current value (for non-trainable variables, or tapes made
    /// `without_variable_watching`).
    pub fn watch_variable(&self, v: &Variable) {
        let value = v.value_untracked();
        self.watch(&value);
        self.state.variable_reads.borrow_mut().entry(v.id()).or_default().push(value);
    }

    /// Stops recording (ops after this are not differentiated).
    pub fn stop_recording(&self) {
        set_recording(&self.state, false);
    }

    /// Whether the tape is recording.
    pub fn is_recording(&self) -> bool {
        self.state.recording.get()
    }

    /// Gradients of `target` (summed over its elements) with respect to each source; `None`
    /// for a source the target does not depend on (or of an integer dtype).
    #[track_caller]
    pub fn gradient<S: Source>(&self, target: &Tensor, sources: &[S]) -> Vec<Option<Tensor>> {
        self.gradient_with(target, sources, None)
    }

    /// [`gradient`](Self::gradient) seeded with `output_gradient` (same shape as `target`)
    /// instead of ones.
    #[track_caller]
    pub fn gradient_with<S: Source>(
        &self,
        target: &Tensor,
        sources: &[S],
        output_gradient: Option<&Tensor>,
    ) -> Vec<Option<Tensor>> {
        let s = &self.state;
        if s.used.get() && !s.persistent {
            OpError::new(
                "gradient",
                "a non-persistent GradientTape can compute gradients only once; create it with GradientTape::persistent()",
            )
            .raise(Location::caller())
        }
        if let Some(g) = output_gradient {
            if g.shape() != target.shape() || g.dtype() != target.dtype() {
                OpError::new("gradient", "output_gradient must have the target's dtype and shape")
                    .with_operands([(target.dtype(), target.shape()), (g.dtype(), g.shape())])
                    .raise(Location::caller())
            }
        }
        s.used.set(true);
        let was_recording = s.recording.get();
        set_recording(s, false);
        let records: Vec<Rc<Record>> = s.records.borrow().clone();
        let seed = output_gradient.cloned().unwrap_or_else(|| Tensor::ones_like(target));
        let live = {
            let reads = s.variable_reads.borrow();
            let ids = sources.iter().flat_map(|src| match src.source_kind() {
                SourceKind::Tensor(t) => vec![t.id],
                SourceKind::Variable(v) => reads.get(&v.id()).into_iter().flatten().map(|t| t.id).collect(),
            });
            leading_from(&records, ids, &s.tracked.borrow())
        };
        let grads = backprop(&records, vec![(target.clone(), seed)], &live);
        if s.persistent && was_recording {
            set_recording(s, true);
        }
        sources
            .iter()
            .map(|src| match src.source_kind() {
                SourceKind::Tensor(t) => grads.get(&t.id).cloned(),
                SourceKind::Variable(v) => {
                    let reads = s.variable_reads.borrow();
                    let parts: Vec<&Tensor> =
                        reads.get(&v.id()).into_iter().flatten().filter_map(|t| grads.get(&t.id)).collect();
                    parts.into_iter().fold(None, |acc: Option<Tensor>, g| {
                        Some(match acc {
                            None => g.clone(),
                            Some(a) => &a + g,
                        })
                    })
                }
            })
            .collect()
    }
}

/// The tensors a gradient must reach: the requested sources the tape tracks (an
/// unwatched one gets no gradient, as in TensorFlow) and every recorded result computed
/// from one of them through a differentiable op. A tensor the tape tracks but
/// that leads to no requested source — the other variables of a model when gradients
/// are asked for some, the max a softmax subtracts under `stop_gradient` — gets no
/// gradient, so its backward ops are never run.
fn leading_from(
    records: &[Rc<Record>],
    sources: impl Iterator<Item = TensorId>,
    tracked: &HashSet<TensorId>,
) -> HashSet<TensorId> {
    let mut live: HashSet<TensorId> = sources.filter(|id| tracked.contains(id)).collect();
    for rec in records {
        let passes = match &rec.rule {
            Rule::Op(op) => grads::differentiable(op),
            Rule::Custom(_) => true,
        };
        if passes && rec.inputs.iter().any(|x| live.contains(&x.id)) {
            live.extend(rec.outputs.iter().map(|o| o.id));
        }
    }
    live
}

/// Reverse accumulation over the records. Gradients are only computed for inputs in
/// `live` (see [`leading_from`]): an input that leads to no source (an unwatched batch
/// of data, a label, a stopped gradient) costs nothing, and a record none of whose
/// inputs does is skipped.
fn backprop(
    records: &[Rc<Record>],
    seeds: Vec<(Tensor, Tensor)>,
    live: &HashSet<TensorId>,
) -> HashMap<TensorId, Tensor> {
    let mut grads = accumulate::Accumulator::default();
    for (target, seed) in seeds {
        if target.dtype().is_float() {
            grads.add(target.id, seed);
        }
    }
    for rec in records.iter().rev() {
        let needed: Vec<bool> = rec.inputs.iter().map(|x| x.dtype().is_float() && live.contains(&x.id)).collect();
        if !needed.contains(&true) {
            continue;
        }
        let gs = match &rec.rule {
            // A slice's gradient waits for its siblings (see `accumulate`).
            Rule::Op(Op::Slice(slice)) => {
                if let Some(g) = grads.get(rec.outputs[0].id) {
                    grads.add_slice(rec.inputs[0].id, &rec.inputs[0], slice, g);
                }
                continue;
            }
            Rule::Op(op) => {
                let Some(g) = grads.get(rec.outputs[0].id) else { continue };
                let inputs: Vec<&Tensor> = rec.inputs.iter().collect();
                grads::backward(op, &inputs, &rec.outputs[0], &g, &needed)
            }
            Rule::Custom(f) => {
                let gy: Vec<Option<Tensor>> = rec.outputs.iter().map(|o| grads.get(o.id)).collect();
                if gy.iter().all(Option::is_none) {
                    continue;
                }
                f(&gy, &needed)
            }
        };
        for ((x, gx), need) in rec.inputs.iter().zip(gs).zip(&needed) {
            if let (Some(gx), true) = (gx, need) {
                grads.add(x.id, gx);
            }
        }
    }
    grads.finish()
}

impl Drop for GradientTape {
    fn drop(&mut self) {
        set_recording(&self.state, false);
        // try_with: the thread-local may already be gone during thread teardown.
        let _ = TAPES.try_with(|t| t.borrow_mut().retain(|s| !Rc::ptr_eq(s, &self.state)));
    }
}

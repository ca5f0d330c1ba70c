//! `Function`: a traced function with its signature-keyed cache of concrete functions.
//!
//! A call computes the signature of its arguments (tensors → [`TensorSpec`], variables →
//! [`VariableSpec`], other values → themselves), looks it up, and on a miss traces the
//! body once with symbolic arguments into a graph (a [`ConcreteFunction`]). Each
//! signature is traced once even when many threads call at once; calls from many
//! threads are safe. The body runs as plain eager code instead when
//! `config::run_functions_eagerly` is on (or the function's own `run_eagerly` option),
//! when a `GradientTape` is recording on the calling thread (so the tape sees the ops),
//! and when the call happens inside another trace (the body is inlined into the outer
//! graph).

use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

pub use super::args::{
    ArgSpec, ArgVec, FunctionArgs, FunctionOutput, OutputIter, Outputs, Signature, Static, TensorSpec, VariableSpec,
};
use rustc_hash::FxHashMap;

use super::backend::{active_backend, Executable};
use crate::error::Error;
use crate::ir::{verify, Graph};
use crate::tensor::Tensor;
use crate::variable::Variable;
use crate::Device;
use crate::{autodiff, config, trace};

/// `x: f32[128,784] → f32[64,784]` for the first argument that differs.
fn describe_change(old: &[ArgSpec], new: &[ArgSpec], names: &[String]) -> String {
    let name = |i: usize| names.get(i).cloned().unwrap_or_else(|| format!("argument {i}"));
    for (i, (a, b)) in old.iter().zip(new).enumerate() {
        if a != b {
            return format!("{}: {a} → {b}", name(i));
        }
    }
    format!("the number of arguments changed: {} → {}", old.len(), new.len())
}

/// One trace of a function: its signature and graph.
pub struct ConcreteFunction {
    pub signature: Signature,
    pub graph: Graph,
    /// 0 for the function's first trace, 1 for the next, …
    pub trace_index: usize,
    output_lens: Vec<usize>,
    /// The compiled form (freed with the concrete function); `None` = the interpreter.
    executable: Option<Box<dyn Executable>>,
    backend: &'static str,
}

impl ConcreteFunction {
    /// What the backend compiled (optimised IR and fused kernels); empty on the
    /// interpreter.
    pub fn compiled_text(&self) -> String {
        self.executable.as_ref().map(|e| e.describe()).unwrap_or_default()
    }

    /// The executor of this trace: the backend's name, or `"interpreter"`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Runs this trace on `inputs` and `bound` variables.
    fn run(&self, inputs: &[&Tensor], bound: &[&Variable]) -> Result<Outputs, Error> {
        match &self.executable {
            Some(e) => e.run(inputs, bound),
            None => super::backend::interpret_refs(&self.graph, inputs, bound),
        }
    }

    /// The device this trace runs on (its tensor arguments').
    pub fn device(&self) -> crate::device::Device {
        self.signature.device().unwrap_or_default()
    }

    /// The IR text of this trace.
    pub fn ir_text(&self) -> String {
        self.graph.to_string()
    }

    /// The graph in Graphviz DOT form (variables labelled with their names).
    pub fn dot(&self) -> String {
        crate::ir::to_dot(&self.graph)
    }
}

/// A cache entry: the concrete function (traced once, however many threads wait for
/// it) and when it was last used (for LRU eviction).
struct Entry {
    /// The (possibly generalised) signature this entry is traced for.
    key: Signature,
    cell: OnceLock<Result<Arc<ConcreteFunction>, Error>>,
    last_used: AtomicU64,
}

type Slot = Arc<Entry>;

/// The settings of a function.
struct Options {
    arg_names: Vec<String>,
    cache_size: usize,
    input_signature: Option<Vec<TensorSpec>>,
    reduce_retracing: bool,
}

/// Default bound of a function's cache of concrete functions.
pub const DEFAULT_CACHE_SIZE: usize = 64;

struct Inner<A, R> {
    name: String,
    body: Box<dyn Fn(A) -> R + Send + Sync>,
    cache: RwLock<FxHashMap<Signature, Slot>>,
    traces: AtomicUsize,
    /// 0 = follow the global switch, 1 = traced, 2 = eager (read on every call).
    run_eagerly: AtomicU8,
    /// Options read only off the cache-hit path (on a miss, a trace, a warning).
    options: RwLock<Options>,
    /// Bit i set = the (i+1)-th most recent call traced (last 10 calls).
    history: AtomicU32,
    warned: AtomicBool,
    clock: AtomicU64,
    last_traced: std::sync::Mutex<Option<Signature>>,
}

/// A function traced once per input signature and run from its graph afterwards
/// (TensorFlow's `tf.function`). Cheap to clone (shares the cache).
pub struct Function<A, R> {
    inner: Arc<Inner<A, R>>,
}

impl<A, R> Clone for Function<A, R> {
    fn clone(&self) -> Self {
        Function { inner: self.inner.clone() }
    }
}

/// Wraps `body` as a traced [`Function`]. Its argument is a tuple of the arguments:
///
/// ```
/// use tensorjit_runtime::{function, Tensor};
/// let f = function("affine", |(x, b): (Tensor, Tensor)| &x * 2.0 + &b);
/// let x = Tensor::from_vec(vec![1.0f32, 2.0], [2]).unwrap();
/// let y = f.call((x.clone(), Tensor::scalar(1.0f32)));
/// assert_eq!(y.to_vec::<f32>().unwrap(), vec![3.0, 5.0]);
/// assert_eq!(f.tracing_count(), 1);
/// ```
pub fn function<A, R, F>(name: &str, body: F) -> Function<A, R>
where
    A: FunctionArgs,
    R: FunctionOutput,
    F: Fn(A) -> R + Send + Sync + 'static,
{
    Function {
        inner: Arc::new(Inner {
            name: name.to_string(),
            body: Box::new(body),
            cache: RwLock::new(FxHashMap::default()),
            traces: AtomicUsize::new(0),
            run_eagerly: AtomicU8::new(0),
            options: RwLock::new(Options {
                arg_names: Vec::new(),
                cache_size: DEFAULT_CACHE_SIZE,
                input_signature: None,
                reduce_retracing: false,
            }),
            history: AtomicU32::new(0),
            warned: AtomicBool::new(false),
            clock: AtomicU64::new(0),
            last_traced: std::sync::Mutex::new(None),
        }),
    }
}

/// Ends a trace when dropped (also when the body panics mid-trace).
struct TraceGuard(bool);

impl TraceGuard {
    fn finish(mut self) -> Option<Graph> {
        self.0 = false;
        trace::end()
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if self.0 {
            trace::end();
        }
    }
}

impl<A: FunctionArgs, R: FunctionOutput> Function<A, R> {
    /// Options apply to every clone of the function (they share one cache).
    fn configure(self, f: impl FnOnce(&mut Options)) -> Self {
        f(&mut self.inner.options.write().unwrap_or_else(|p| p.into_inner()));
        self
    }

    /// This function with its own run-eagerly setting (overrides the global switch).
    pub fn with_run_eagerly(self, on: bool) -> Self {
        self.inner.run_eagerly.store(if on { 2 } else { 1 }, Ordering::SeqCst);
        self
    }

    /// Names of the arguments, used by the retracing warning (`#[tf_function]` sets them).
    pub fn with_arg_names(self, names: &[&str]) -> Self {
        let names = names.iter().map(|s| s.to_string()).collect();
        self.configure(|o| o.arg_names = names)
    }

    /// Fixes the specs of the tensor arguments (in order); `None` dims accept any size, so
    /// one trace serves them all. A call that does not fit is an error naming the
    /// argument (`Err` from `try_call`, a panic from `call`).
    pub fn with_input_signature(self, specs: Vec<TensorSpec>) -> Self {
        self.configure(|o| o.input_signature = Some(specs))
    }

    /// After a retrace, generalises the dims that changed to unknown, so a dimension that
    /// keeps changing costs one more trace instead of one per value.
    pub fn with_reduce_retracing(self, on: bool) -> Self {
        self.configure(|o| o.reduce_retracing = on)
    }

    /// Bounds the cache to `n` concrete functions (least recently used evicted first).
    pub fn with_cache_size(self, n: usize) -> Self {
        self.configure(|o| o.cache_size = n.max(1))
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many times the body has been traced.
    pub fn tracing_count(&self) -> usize {
        self.inner.traces.load(Ordering::SeqCst)
    }

    /// The concrete functions in the cache, in the order they were traced.
    pub fn concrete_functions(&self) -> Vec<Arc<ConcreteFunction>> {
        let cache = self.inner.cache.read().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<Arc<ConcreteFunction>> =
            cache.values().filter_map(|s| s.cell.get().and_then(|r| r.as_ref().ok()).cloned()).collect();
        all.sort_by_key(|c| c.trace_index);
        all.dedup_by_key(|c| c.trace_index);
        all
    }

    fn runs_eagerly(&self) -> bool {
        match self.inner.run_eagerly.load(Ordering::Relaxed) {
            1 => false,
            2 => true,
            _ => config::functions_run_eagerly(),
        }
    }

    /// Calls the function; panics with the error of a failing call.
    #[track_caller]
    pub fn call(&self, args: A) -> R {
        match self.try_call(args) {
            Ok(r) => r,
            Err(e) => panic!("tensorjit: {}: {e}\n  at {}", self.inner.name, Location::caller()),
        }
    }

    /// Calls the function, returning call-time errors.
    pub fn try_call(&self, args: A) -> Result<R, Error> {
        if self.runs_eagerly() || trace::is_tracing() || autodiff::recording() {
            return Ok((self.inner.body)(args));
        }
        let mut spec = ArgVec::new();
        args.spec(&mut spec);
        let (mut tensors, mut vars) = (ArgVec::new(), ArgVec::new());
        args.inputs(&mut tensors, &mut vars);
        if vars.len() > 1 {
            super::args::mark_aliases(&mut spec, &vars);
        }
        // The steady state: a traced entry — one lookup, one reference count, and a plain
        // store of the LRU clock (recency only needs to be approximate).
        let now = self.inner.clock.load(Ordering::Relaxed).wrapping_add(1);
        self.inner.clock.store(now, Ordering::Relaxed);
        // One lookup: the traced entry itself on the steady-state path, else its slot.
        let found = {
            let cache = self.inner.cache.read().unwrap_or_else(|p| p.into_inner());
            cache.get(spec.as_slice()).map(|s| {
                s.last_used.store(now, Ordering::Relaxed);
                match s.cell.get() {
                    Some(Ok(cf)) => Ok(cf.clone()),
                    _ => Err(s.clone()),
                }
            })
        };
        let (cf, traced_now) = match found {
            Some(Ok(cf)) => (cf, false),
            hit => {
                let slot: Slot = match hit {
                    Some(Err(s)) => s,
                    _ => {
                        let key = self.key_for(&spec)?;
                        self.insert(key, &spec)
                    }
                };
                slot.last_used.store(now, Ordering::Relaxed);
                let mut traced_now = false;
                let cf = slot
                    .cell
                    .get_or_init(|| {
                        traced_now = true;
                        self.trace(&args, slot.key.clone())
                    })
                    .clone()?;
                (cf, traced_now)
            }
        };
        self.note_call(traced_now, &spec);
        let outs = cf.run(&tensors, &vars)?;
        R::rebuild(&mut outs.into_iter(), &mut cf.output_lens.iter())
            .ok_or_else(|| Error::Internal("the results do not match the traced structure".into()))
    }

    /// The signature to trace a call of exact signature `spec` with: the input_signature
    /// (checked), a cached or generalised one under reduce_retracing, else `spec` itself.
    fn key_for(&self, spec: &[ArgSpec]) -> Result<Signature, Error> {
        let i = &self.inner;
        let o = i.options.read().unwrap_or_else(|p| p.into_inner());
        if let Some(sig) = &o.input_signature {
            let mut want = sig.iter();
            let mut key = Vec::with_capacity(spec.len());
            for (n, a) in spec.iter().enumerate() {
                match a {
                    ArgSpec::Tensor(t) => {
                        let name = o.arg_names.get(n).cloned().unwrap_or_else(|| format!("argument {n}"));
                        let w = want.next().ok_or_else(|| {
                            Error::Function(format!(
                                "{}: {name} is a tensor beyond the {} of the input_signature",
                                i.name,
                                sig.len()
                            ))
                        })?;
                        // A tensor on any device fits a spec with no device of its own
                        // (traced for that device).
                        if !w.admits(t) {
                            let on = |d: Device| if d == Device::Cpu { String::new() } else { format!(" on {d}") };
                            return Err(Error::Function(format!(
                                "{}: {name} is {}{}{}, the input_signature expects {}{}{}",
                                i.name,
                                t.dtype,
                                t.shape,
                                on(t.device),
                                w.dtype,
                                w.shape,
                                on(w.device)
                            )));
                        }
                        key.push(ArgSpec::Tensor(TensorSpec { device: t.device, ..w.clone() }));
                    }
                    other => key.push(other.clone()),
                }
            }
            if want.next().is_some() {
                return Err(Error::Function(format!(
                    "{}: fewer tensor arguments than the input_signature's {}",
                    i.name,
                    sig.len()
                )));
            }
            return Ok(Signature(key));
        }
        if o.reduce_retracing {
            let cache = i.cache.read().unwrap_or_else(|p| p.into_inner());
            let fits = |k: &Signature| k.0.len() == spec.len() && k.0.iter().zip(spec).all(|(a, b)| a.accepts(b));
            if let Some(e) = cache.values().find(|e| fits(&e.key)) {
                return Ok(e.key.clone());
            }
            let last = i.last_traced.lock().unwrap_or_else(|p| p.into_inner()).clone();
            if let Some(prev) = last.filter(|p| p.0.len() == spec.len()) {
                let general: Option<Vec<ArgSpec>> = prev.0.iter().zip(spec).map(|(a, b)| a.generalize(b)).collect();
                if let Some(g) = general {
                    return Ok(Signature(g));
                }
            }
        }
        Ok(Signature(spec.to_vec()))
    }

    /// The entry for `key` (created empty if new), also registered under the exact `spec`
    /// so the next call with it is a plain hit. Evicts the least recently used entry
    /// when the cache is full (its graph — later its compiled code — is freed with it).
    fn insert(&self, key: Signature, spec: &[ArgSpec]) -> Slot {
        let mut cache = self.inner.cache.write().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = cache.get(spec) {
            return s.clone();
        }
        let slot = match cache.get(&key) {
            Some(s) => s.clone(),
            None => {
                let cap = self.inner.options.read().unwrap_or_else(|p| p.into_inner()).cache_size;
                if cache.len() >= cap {
                    let oldest =
                        cache.iter().min_by_key(|(_, e)| e.last_used.load(Ordering::Relaxed)).map(|(k, _)| k.clone());
                    if let Some(k) = oldest {
                        cache.remove(&k);
                    }
                }
                let s = Arc::new(Entry { key: key.clone(), cell: OnceLock::new(), last_used: AtomicU64::new(0) });
                cache.insert(key.clone(), s.clone());
                s
            }
        };
        if key.0.as_slice() != spec {
            cache.insert(Signature(spec.to_vec()), slot.clone());
        }
        slot
    }

    /// Tracks how many of the last 10 calls traced; at 5, warns once (through `tracing`)
    /// naming the argument that changed and the fix.
    fn note_call(&self, traced: bool, spec: &[ArgSpec]) {
        let i = &self.inner;
        // Steady state (no trace among the last 10 calls): nothing to record.
        if !traced && i.history.load(Ordering::Relaxed) == 0 {
            return;
        }
        let bit = traced as u32;
        let prev = i.history.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |h| Some(((h << 1) | bit) & 0x3ff));
        let hist = ((prev.unwrap_or(0) << 1) | bit) & 0x3ff;
        if !traced {
            return;
        }
        let mut last = i.last_traced.lock().unwrap_or_else(|p| p.into_inner());
        let names = i.options.read().unwrap_or_else(|p| p.into_inner()).arg_names.clone();
        let change = last.as_ref().map(|old| describe_change(&old.0, spec, &names));
        *last = Some(Signature(spec.to_vec()));
        drop(last);
        if hist.count_ones() >= 5 && !i.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                target: "tensorjit::retracing",
                "function `{}` retraced {} times in its last 10 calls ({}); every retrace re-runs the Rust body and \
                 builds a new graph. Fix: give it an input_signature with None for \
                 the dims that vary, or enable reduce_retracing",
                i.name,
                hist.count_ones(),
                change.unwrap_or_else(|| "the signature changed".into())
            );
        }
    }

    fn trace(&self, args: &A, signature: Signature) -> Result<Arc<ConcreteFunction>, Error> {
        let trace_index = self.inner.traces.fetch_add(1, Ordering::SeqCst);
        let device = signature.device()?;
        trace::begin(&self.inner.name, device);
        let guard = TraceGuard(true);
        let out = (self.inner.body)(args.symbolize(&mut signature.0.iter()));
        if let Some(e) = out.trace_error() {
            return Err(Error::Function(format!(
                "{}: the body returned an error while being traced: {e}",
                self.inner.name
            )));
        }
        let (mut flat, mut lens) = (Vec::new(), Vec::new());
        out.flatten(&mut flat, &mut lens);
        trace::set_results(&flat)?;
        let graph = guard.finish().ok_or_else(|| Error::Internal("trace stack is empty".into()))?;
        verify(&graph)
            .map_err(|e| Error::Internal(format!("traced graph of {} is invalid: {e}\n{graph}", self.inner.name)))?;
        let (executable, backend) = match active_backend() {
            Some(b) => match b.compile_on(&graph, device)? {
                Some(e) => {
                    let name = e.name().unwrap_or(b.name());
                    (Some(e), name)
                }
                None => (None, "interpreter"),
            },
            None => (None, "interpreter"),
        };
        Ok(Arc::new(ConcreteFunction { signature, graph, trace_index, output_lens: lens, executable, backend }))
    }
}

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

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

use super::interp;
use crate::device::Device;
use crate::dtype::DType;
use crate::error::Error;
use crate::ir::{verify, Graph};
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::variable::Variable;
use crate::{autodiff, config, trace};

/// Type of a tensor argument.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    pub dtype: DType,
    pub shape: Shape,
    pub device: Device,
}

/// Type of a variable argument (bound per call: one trace serves every variable of it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VariableSpec {
    pub dtype: DType,
    pub shape: Shape,
    pub device: Device,
}

/// A static (non-tensor) argument, keyed by value.
pub struct StaticKey(Box<dyn DynKey>);

trait DynKey: Send + Sync {
    fn hash_into(&self, h: &mut dyn Hasher);
    fn eq_dyn(&self, other: &dyn Any) -> bool;
    fn as_any(&self) -> &dyn Any;
    fn clone_box(&self) -> Box<dyn DynKey>;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<T: Hash + Eq + Clone + fmt::Debug + Send + Sync + 'static> DynKey for T {
    fn hash_into(&self, mut h: &mut dyn Hasher) {
        self.hash(&mut h)
    }
    fn eq_dyn(&self, other: &dyn Any) -> bool {
        other.downcast_ref::<T>().is_some_and(|o| o == self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn DynKey> {
        Box::new(self.clone())
    }
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl Clone for StaticKey {
    fn clone(&self) -> Self {
        StaticKey(self.0.clone_box())
    }
}
impl PartialEq for StaticKey {
    fn eq(&self, o: &Self) -> bool {
        self.0.eq_dyn(o.0.as_any())
    }
}
impl Eq for StaticKey {}
impl Hash for StaticKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_any().type_id().hash(state);
        self.0.hash_into(state);
    }
}
impl fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.debug(f)
    }
}

/// One argument's part of a signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ArgSpec {
    Tensor(TensorSpec),
    Variable(VariableSpec),
    Static(StaticKey),
}

impl fmt::Display for ArgSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgSpec::Tensor(t) => write!(f, "Tensor({}{})", t.dtype, t.shape),
            ArgSpec::Variable(v) => write!(f, "Variable({}{})", v.dtype, v.shape),
            ArgSpec::Static(k) => write!(f, "{k:?}"),
        }
    }
}

/// A call's signature: the specs of its flattened arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature(pub Vec<ArgSpec>);

// Lookups by a borrowed slice (hashes as the Vec does), so a cache hit builds no Vec.
impl std::borrow::Borrow<[ArgSpec]> for Signature {
    fn borrow(&self) -> &[ArgSpec] {
        &self.0
    }
}

/// Inline storage for the specs/inputs of a call: no heap allocation for up to 8.
pub type ArgVec<T> = smallvec::SmallVec<[T; 8]>;

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|a| a.to_string()).collect();
        write!(f, "({})", parts.join(", "))
    }
}

/// The arguments of a traced function: tensors, variables, static values, and tuples /
/// `Vec`s / `Option`s / arrays of those.
pub trait FunctionArgs: Sized {
    /// Appends this argument's specs to the signature.
    fn spec(&self, out: &mut ArgVec<ArgSpec>);
    /// Appends the call-time inputs (tensors, then variables, in order).
    fn inputs(&self, tensors: &mut ArgVec<Tensor>, variables: &mut ArgVec<Variable>);
    /// The value the body sees while tracing: tensors become graph parameters, variables
    /// are bound as resource parameters, static values stay as they are.
    fn symbolize(&self) -> Self;
}

impl FunctionArgs for Tensor {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Tensor(TensorSpec {
            dtype: self.dtype(),
            shape: self.shape().clone(),
            device: self.device(),
        }));
    }
    fn inputs(&self, tensors: &mut ArgVec<Tensor>, _: &mut ArgVec<Variable>) {
        tensors.push(self.clone());
    }
    fn symbolize(&self) -> Self {
        trace::param(self.dtype(), self.shape().clone()).unwrap_or_else(|| self.clone())
    }
}

impl FunctionArgs for Variable {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Variable(VariableSpec {
            dtype: self.dtype(),
            shape: self.shape().clone(),
            device: Device::Cpu,
        }));
    }
    fn inputs(&self, _: &mut ArgVec<Tensor>, variables: &mut ArgVec<Variable>) {
        variables.push(self.clone());
    }
    fn symbolize(&self) -> Self {
        trace::bind_variable_param(self);
        self.clone()
    }
}

/// Wraps any `Hash + Eq + Clone + Debug` value as a static argument: part of the cache
/// key (a new value retraces), passed to the body as it is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Static<T>(pub T);

impl<T: Hash + Eq + Clone + fmt::Debug + Send + Sync + 'static> FunctionArgs for Static<T> {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Static(StaticKey(Box::new(self.0.clone()))));
    }
    fn inputs(&self, _: &mut ArgVec<Tensor>, _: &mut ArgVec<Variable>) {}
    fn symbolize(&self) -> Self {
        self.clone()
    }
}

macro_rules! static_args {
    ($($t:ty),*) => {$(
        impl FunctionArgs for $t {
            fn spec(&self, out: &mut ArgVec<ArgSpec>) {
                out.push(ArgSpec::Static(StaticKey(Box::new(self.clone()))));
            }
            fn inputs(&self, _: &mut ArgVec<Tensor>, _: &mut ArgVec<Variable>) {}
            fn symbolize(&self) -> Self {
                self.clone()
            }
        }
    )*};
}
static_args!(bool, char, i8, i16, i32, i64, u8, u16, u32, u64, usize, isize, String, &'static str, ());

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: FunctionArgs),+> FunctionArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn spec(&self, out: &mut ArgVec<ArgSpec>) {
                let ($($name,)+) = self;
                $($name.spec(out);)+
            }
            #[allow(non_snake_case)]
            fn inputs(&self, t: &mut ArgVec<Tensor>, v: &mut ArgVec<Variable>) {
                let ($($name,)+) = self;
                $($name.inputs(t, v);)+
            }
            #[allow(non_snake_case)]
            fn symbolize(&self) -> Self {
                let ($($name,)+) = self;
                ($($name.symbolize(),)+)
            }
        }
    };
}
tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
tuple_args!(A, B, C, D, E);
tuple_args!(A, B, C, D, E, F);
tuple_args!(A, B, C, D, E, F, G);
tuple_args!(A, B, C, D, E, F, G, H);

impl<T: FunctionArgs> FunctionArgs for Vec<T> {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Static(StaticKey(Box::new(("len", self.len())))));
        self.iter().for_each(|x| x.spec(out));
    }
    fn inputs(&self, t: &mut ArgVec<Tensor>, v: &mut ArgVec<Variable>) {
        self.iter().for_each(|x| x.inputs(t, v));
    }
    fn symbolize(&self) -> Self {
        self.iter().map(|x| x.symbolize()).collect()
    }
}

impl<T: FunctionArgs> FunctionArgs for Option<T> {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Static(StaticKey(Box::new(("some", self.is_some())))));
        if let Some(x) = self {
            x.spec(out);
        }
    }
    fn inputs(&self, t: &mut ArgVec<Tensor>, v: &mut ArgVec<Variable>) {
        if let Some(x) = self {
            x.inputs(t, v);
        }
    }
    fn symbolize(&self) -> Self {
        self.as_ref().map(|x| x.symbolize())
    }
}

/// What a traced function returns: `()`, a tensor, tuples and `Vec`s of those.
pub trait FunctionOutput: Sized {
    /// Appends the tensors (and the lengths of `Vec`s, to rebuild the structure).
    fn flatten(&self, tensors: &mut Vec<Tensor>, lens: &mut Vec<usize>);
    /// Rebuilds the value from tensors in `flatten`'s order.
    fn rebuild(tensors: &mut std::vec::IntoIter<Tensor>, lens: &mut std::slice::Iter<'_, usize>) -> Option<Self>;
}

impl FunctionOutput for () {
    fn flatten(&self, _: &mut Vec<Tensor>, _: &mut Vec<usize>) {}
    fn rebuild(_: &mut std::vec::IntoIter<Tensor>, _: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
        Some(())
    }
}

impl FunctionOutput for Tensor {
    fn flatten(&self, tensors: &mut Vec<Tensor>, _: &mut Vec<usize>) {
        tensors.push(self.clone());
    }
    fn rebuild(tensors: &mut std::vec::IntoIter<Tensor>, _: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
        tensors.next()
    }
}

impl<T: FunctionOutput> FunctionOutput for Vec<T> {
    fn flatten(&self, tensors: &mut Vec<Tensor>, lens: &mut Vec<usize>) {
        lens.push(self.len());
        self.iter().for_each(|x| x.flatten(tensors, lens));
    }
    fn rebuild(tensors: &mut std::vec::IntoIter<Tensor>, lens: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
        let n = *lens.next()?;
        (0..n).map(|_| T::rebuild(tensors, lens)).collect()
    }
}

macro_rules! tuple_out {
    ($($name:ident),+) => {
        impl<$($name: FunctionOutput),+> FunctionOutput for ($($name,)+) {
            #[allow(non_snake_case)]
            fn flatten(&self, t: &mut Vec<Tensor>, l: &mut Vec<usize>) {
                let ($($name,)+) = self;
                $($name.flatten(t, l);)+
            }
            fn rebuild(t: &mut std::vec::IntoIter<Tensor>, l: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
                Some(($($name::rebuild(t, l)?,)+))
            }
        }
    };
}
tuple_out!(A);
tuple_out!(A, B);
tuple_out!(A, B, C);
tuple_out!(A, B, C, D);
tuple_out!(A, B, C, D, E);
tuple_out!(A, B, C, D, E, F);

/// One trace of a function: its signature and graph.
pub struct ConcreteFunction {
    pub signature: Signature,
    pub graph: Graph,
    output_lens: Vec<usize>,
}

impl ConcreteFunction {
    /// The IR text of this trace.
    pub fn ir_text(&self) -> String {
        self.graph.to_string()
    }
}

type Slot = Arc<OnceLock<Result<Arc<ConcreteFunction>, Error>>>;

struct Inner<A, R> {
    name: String,
    body: Box<dyn Fn(A) -> R + Send + Sync>,
    cache: RwLock<HashMap<Signature, Slot>>,
    traces: AtomicUsize,
    run_eagerly: Option<bool>,
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
            cache: RwLock::new(HashMap::new()),
            traces: AtomicUsize::new(0),
            run_eagerly: None,
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
    /// This function with its own run-eagerly setting (overrides the global switch).
    pub fn with_run_eagerly(self, on: bool) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|_| panic!("with_run_eagerly before the first clone"));
        Function { inner: Arc::new(Inner { run_eagerly: Some(on), ..inner }) }
    }

    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// How many times the body has been traced.
    pub fn tracing_count(&self) -> usize {
        self.inner.traces.load(Ordering::SeqCst)
    }

    /// The concrete functions traced so far.
    pub fn concrete_functions(&self) -> Vec<Arc<ConcreteFunction>> {
        let cache = self.inner.cache.read().unwrap_or_else(|p| p.into_inner());
        cache.values().filter_map(|s| s.get().and_then(|r| r.as_ref().ok()).cloned()).collect()
    }

    fn runs_eagerly(&self) -> bool {
        self.inner.run_eagerly.unwrap_or_else(config::functions_run_eagerly)
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
        let hit = self.inner.cache.read().unwrap_or_else(|p| p.into_inner()).get(spec.as_slice()).cloned();
        let sig = || Signature(spec.to_vec());
        let slot: Slot = match hit {
            Some(s) => s,
            None => {
                let mut cache = self.inner.cache.write().unwrap_or_else(|p| p.into_inner());
                cache.entry(sig()).or_default().clone()
            }
        };
        let cf = slot.get_or_init(|| self.trace(&args, sig())).clone()?;
        let (mut tensors, mut vars) = (ArgVec::new(), ArgVec::new());
        args.inputs(&mut tensors, &mut vars);
        let outs = interp::execute(&cf.graph, &tensors, &vars)?;
        R::rebuild(&mut outs.into_iter(), &mut cf.output_lens.iter())
            .ok_or_else(|| Error::Internal("the results do not match the traced structure".into()))
    }

    fn trace(&self, args: &A, signature: Signature) -> Result<Arc<ConcreteFunction>, Error> {
        self.inner.traces.fetch_add(1, Ordering::SeqCst);
        trace::begin(&self.inner.name);
        let guard = TraceGuard(true);
        let out = (self.inner.body)(args.symbolize());
        let (mut flat, mut lens) = (Vec::new(), Vec::new());
        out.flatten(&mut flat, &mut lens);
        trace::set_results(&flat)?;
        let graph = guard.finish().ok_or_else(|| Error::Internal("trace stack is empty".into()))?;
        verify(&graph)
            .map_err(|e| Error::Internal(format!("traced graph of {} is invalid: {e}\n{graph}", self.inner.name)))?;
        Ok(Arc::new(ConcreteFunction { signature, graph, output_lens: lens }))
    }
}

//! How arguments and results of traced functions are flattened: tensors → specs and
//! graph parameters, variables → resource parameters, other values → static keys.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};

use crate::device::Device;
use crate::dtype::DType;
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::trace;
use crate::variable::Variable;

/// Type of a tensor argument. In an `input_signature` dims may be unknown (`None`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TensorSpec {
    pub dtype: DType,
    pub shape: Shape,
    pub device: Device,
}

impl TensorSpec {
    /// A spec with optional dims: `TensorSpec::new(DType::F32, &[None, Some(784)])`.
    pub fn new(dtype: DType, dims: &[Option<usize>]) -> TensorSpec {
        TensorSpec { dtype, shape: Shape::with_unknown(dims), device: Device::Cpu }
    }

    /// The same spec on `device` (`TensorSpec::new(..).on(Device::Cuda(0))`). In an
    /// `input_signature`, a spec naming a GPU takes tensors on that GPU only; one with
    /// no device (the CPU, as `new` makes it) takes tensors on any device, traced for
    /// theirs.
    pub fn on(mut self, device: Device) -> TensorSpec {
        self.device = device;
        self
    }

    /// Whether a tensor of spec `t` fits this one.
    pub fn accepts(&self, t: &TensorSpec) -> bool {
        self.dtype == t.dtype && self.device == t.device && self.shape.accepts(&t.shape)
    }

    /// Whether a tensor of spec `t` fits this spec of an `input_signature` (see
    /// [`on`](Self::on): a spec with no device takes tensors on any device).
    pub(crate) fn admits(&self, t: &TensorSpec) -> bool {
        let device_ok = self.device == Device::Cpu || self.device == t.device;
        self.dtype == t.dtype && self.shape.accepts(&t.shape) && device_ok
    }
}

/// Type of a variable argument (bound per call: one trace serves every variable of it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VariableSpec {
    pub dtype: DType,
    pub shape: Shape,
    pub device: Device,
    /// The earlier variable argument (by position among the variable arguments) this
    /// one is the same variable as: a trace where two arguments are one variable (an
    /// assignment through one is seen by reads through the other) serves only calls
    /// with the same aliasing.
    pub alias: Option<u32>,
}

/// Sets each variable spec's `alias` from the variables bound to the call (in the
/// order the arguments list them).
pub(crate) fn mark_aliases(spec: &mut [ArgSpec], vars: &[&Variable]) {
    let mut k = 0;
    for a in spec.iter_mut() {
        if let ArgSpec::Variable(v) = a {
            let id = vars.get(k).map(|x| x.id());
            v.alias = vars[..k.min(vars.len())].iter().position(|w| Some(w.id()) == id).map(|j| j as u32);
            k += 1;
        }
    }
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
    /// A primitive static value (bool, char, integer, float bits, a `Vec` length, an
    /// `Option`'s presence), kept inline: no allocation on the cache-hit path.
    Value {
        kind: &'static str,
        bits: u64,
    },
    /// Any other static value.
    Static(StaticKey),
}

impl ArgSpec {
    /// Whether an argument of spec `actual` can run a trace made for `self` (tensor dims
    /// unknown in `self` match any size; everything else must be equal).
    pub fn accepts(&self, actual: &ArgSpec) -> bool {
        match (self, actual) {
            (ArgSpec::Tensor(a), ArgSpec::Tensor(b)) => a.accepts(b),
            (a, b) => a == b,
        }
    }

    /// `self` and `other` with every tensor dim that differs made unknown, when they have
    /// the same structure (kinds, dtypes, ranks, statics); else `None`.
    pub fn generalize(&self, other: &ArgSpec) -> Option<ArgSpec> {
        match (self, other) {
            (ArgSpec::Tensor(a), ArgSpec::Tensor(b))
                if a.dtype == b.dtype && a.device == b.device && a.shape.rank() == b.shape.rank() =>
            {
                let dims: Vec<usize> = a
                    .shape
                    .iter()
                    .zip(b.shape.iter())
                    .map(|(&x, &y)| if x == y { x } else { crate::shape::UNKNOWN })
                    .collect();
                Some(ArgSpec::Tensor(TensorSpec { dtype: a.dtype, shape: Shape::from(dims), device: a.device }))
            }
            (a, b) if a == b => Some(a.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for ArgSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgSpec::Tensor(t) => write!(f, "Tensor({}{})", t.dtype, t.shape),
            ArgSpec::Variable(v) => match v.alias {
                Some(j) => write!(f, "Variable({}{}, same as variable argument {j})", v.dtype, v.shape),
                None => write!(f, "Variable({}{})", v.dtype, v.shape),
            },
            ArgSpec::Static(k) => write!(f, "{k:?}"),
            ArgSpec::Value { kind, bits } => match *kind {
                "f32" => write!(f, "{:?}", f32::from_bits(*bits as u32)),
                "f64" => write!(f, "{:?}", f64::from_bits(*bits)),
                "bool" => write!(f, "{}", *bits != 0),
                "char" => write!(f, "{:?}", char::from_u32(*bits as u32).unwrap_or('?')),
                "len" => write!(f, "len={bits}"),
                "some" => f.write_str(if *bits != 0 { "Some" } else { "None" }),
                "i8" | "i16" | "i32" | "i64" | "isize" => write!(f, "{}", *bits as i64),
                _ => write!(f, "{bits}"),
            },
        }
    }
}

/// A call's signature: the specs of its flattened arguments.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signature(pub Vec<ArgSpec>);

impl Signature {
    /// The one device of the tensor and variable arguments (CPU when there are none;
    /// rank-0 CPU tensors join any device). Arguments on two devices are an error.
    pub fn device(&self) -> Result<Device, crate::error::Error> {
        let mut at: Option<Device> = None;
        for a in &self.0 {
            let (d, scalar) = match a {
                ArgSpec::Tensor(t) => (t.device, t.shape.rank() == 0),
                ArgSpec::Variable(v) => (v.device, false),
                _ => continue,
            };
            if d == Device::Cpu && scalar {
                continue;
            }
            match at {
                Some(x) if x != d => {
                    return Err(crate::error::Error::Function(format!(
                        "a traced function runs on one device, but its arguments are on {x} and {d}; move \
                         them with `.to(device)`"
                    )))
                }
                _ => at = Some(d),
            }
        }
        Ok(at.unwrap_or_default())
    }
}

// Lookups by a borrowed slice (hashes as the Vec does), so a cache hit builds no Vec.
impl std::borrow::Borrow<[ArgSpec]> for Signature {
    fn borrow(&self) -> &[ArgSpec] {
        &self.0
    }
}

/// Inline storage for the specs/inputs of a call: no heap allocation for up to 8.
pub type ArgVec<T> = smallvec::SmallVec<[T; 8]>;

/// The flat tensors a concrete function returns (inline for the usual one or two: a
/// call allocates no list).
pub type Outputs = smallvec::SmallVec<[Tensor; 2]>;
/// Consumed by [`FunctionOutput::rebuild`].
pub type OutputIter = smallvec::IntoIter<[Tensor; 2]>;

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
    fn inputs<'a>(&'a self, tensors: &mut ArgVec<&'a Tensor>, variables: &mut ArgVec<&'a Variable>);
    /// The value the body sees while tracing: tensors become graph parameters (typed by
    /// the next spec of `specs`, whose dims may be unknown), variables are bound as
    /// resource parameters, static values stay as they are. Consumes exactly the specs
    /// `spec` produced.
    fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self;
}

impl FunctionArgs for Tensor {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Tensor(TensorSpec {
            dtype: self.dtype(),
            shape: self.shape().clone(),
            device: self.device(),
        }));
    }
    fn inputs<'a>(&'a self, tensors: &mut ArgVec<&'a Tensor>, _: &mut ArgVec<&'a Variable>) {
        tensors.push(self);
    }
    fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
        let shape = match specs.next() {
            Some(ArgSpec::Tensor(t)) => t.shape.clone(),
            _ => self.shape().clone(),
        };
        trace::param(self.dtype(), shape).unwrap_or_else(|| self.clone())
    }
}

impl FunctionArgs for Variable {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Variable(VariableSpec {
            dtype: self.dtype(),
            shape: self.shape().clone(),
            device: self.device(),
            alias: None,
        }));
    }
    fn inputs<'a>(&'a self, _: &mut ArgVec<&'a Tensor>, variables: &mut ArgVec<&'a Variable>) {
        variables.push(self);
    }
    fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
        specs.next();
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
    fn inputs<'a>(&'a self, _: &mut ArgVec<&'a Tensor>, _: &mut ArgVec<&'a Variable>) {}
    fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
        specs.next();
        self.clone()
    }
}

macro_rules! static_args {
    ($($t:ty),*) => {$(
        impl FunctionArgs for $t {
            fn spec(&self, out: &mut ArgVec<ArgSpec>) {
                out.push(ArgSpec::Static(StaticKey(Box::new(self.clone()))));
            }
            fn inputs<'a>(&'a self, _: &mut ArgVec<&'a Tensor>, _: &mut ArgVec<&'a Variable>) {}
            fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
                specs.next();
                self.clone()
            }
        }
    )*};
}
static_args!(String, &'static str, ());

/// Primitive statics keyed inline by their bits.
macro_rules! value_args {
    ($($t:ty => |$v:ident| $bits:expr),*) => {$(
        impl FunctionArgs for $t {
            fn spec(&self, out: &mut ArgVec<ArgSpec>) {
                let $v = *self;
                out.push(ArgSpec::Value { kind: stringify!($t), bits: $bits });
            }
            fn inputs<'a>(&'a self, _: &mut ArgVec<&'a Tensor>, _: &mut ArgVec<&'a Variable>) {}
            fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
                specs.next();
                *self
            }
        }
    )*};
}
value_args!(
    bool => |v| v as u64, char => |v| v as u64,
    i8 => |v| v as i64 as u64, i16 => |v| v as i64 as u64, i32 => |v| v as i64 as u64, i64 => |v| v as u64,
    isize => |v| v as i64 as u64, u8 => |v| v as u64, u16 => |v| v as u64, u32 => |v| v as u64, u64 => |v| v,
    usize => |v| v as u64,
    // Floats are keyed by their bits (as a Python float passed to tf.function is keyed by value).
    f32 => |v| v.to_bits() as u64, f64 => |v| v.to_bits()
);

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: FunctionArgs),+> FunctionArgs for ($($name,)+) {
            #[allow(non_snake_case)]
            fn spec(&self, out: &mut ArgVec<ArgSpec>) {
                let ($($name,)+) = self;
                $($name.spec(out);)+
            }
            #[allow(non_snake_case)]
            fn inputs<'a>(&'a self, t: &mut ArgVec<&'a Tensor>, v: &mut ArgVec<&'a Variable>) {
                let ($($name,)+) = self;
                $($name.inputs(t, v);)+
            }
            #[allow(non_snake_case)]
            fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
                let ($($name,)+) = self;
                ($($name.symbolize(specs),)+)
            }
        }
    };
}

/// Implements both traits for tuples up to arity 8.
macro_rules! for_tuples {
    ($($m:ident),*) => {$(
        $m!(A);
        $m!(A, B);
        $m!(A, B, C);
        $m!(A, B, C, D);
        $m!(A, B, C, D, E);
        $m!(A, B, C, D, E, F);
        $m!(A, B, C, D, E, F, G);
        $m!(A, B, C, D, E, F, G, H);
    )*};
}

impl<T: FunctionArgs> FunctionArgs for Vec<T> {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Value { kind: "len", bits: self.len() as u64 });
        self.iter().for_each(|x| x.spec(out));
    }
    fn inputs<'a>(&'a self, t: &mut ArgVec<&'a Tensor>, v: &mut ArgVec<&'a Variable>) {
        self.iter().for_each(|x| x.inputs(t, v));
    }
    fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
        specs.next();
        self.iter().map(|x| x.symbolize(specs)).collect()
    }
}

impl<T: FunctionArgs, const N: usize> FunctionArgs for [T; N] {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        self.iter().for_each(|x| x.spec(out));
    }
    fn inputs<'a>(&'a self, t: &mut ArgVec<&'a Tensor>, v: &mut ArgVec<&'a Variable>) {
        self.iter().for_each(|x| x.inputs(t, v));
    }
    fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
        std::array::from_fn(|i| self[i].symbolize(specs))
    }
}

impl<T: FunctionArgs> FunctionArgs for Option<T> {
    fn spec(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Value { kind: "some", bits: self.is_some() as u64 });
        if let Some(x) = self {
            x.spec(out);
        }
    }
    fn inputs<'a>(&'a self, t: &mut ArgVec<&'a Tensor>, v: &mut ArgVec<&'a Variable>) {
        if let Some(x) = self {
            x.inputs(t, v);
        }
    }
    fn symbolize(&self, specs: &mut std::slice::Iter<'_, ArgSpec>) -> Self {
        specs.next();
        self.as_ref().map(|x| x.symbolize(specs))
    }
}

/// What a traced function returns: `()`, a tensor, tuples and `Vec`s of those.
pub trait FunctionOutput: Sized {
    /// Appends the tensors (and the lengths of `Vec`s, to rebuild the structure).
    fn flatten(&self, tensors: &mut Vec<Tensor>, lens: &mut Vec<usize>);
    /// Rebuilds the value from tensors in `flatten`'s order.
    fn rebuild(tensors: &mut OutputIter, lens: &mut std::slice::Iter<'_, usize>) -> Option<Self>;
    /// The error a body returned while it was traced (`Err` of a `Result` result).
    fn trace_error(&self) -> Option<String> {
        None
    }
}

/// A `Result` result: `Ok` values are traced; an `Err` returned while tracing fails the
/// trace (the call returns it as `tensorjit::Error::Function`).
impl<T: FunctionOutput, E: fmt::Debug> FunctionOutput for Result<T, E> {
    fn flatten(&self, tensors: &mut Vec<Tensor>, lens: &mut Vec<usize>) {
        if let Ok(t) = self {
            t.flatten(tensors, lens);
        }
    }
    fn rebuild(tensors: &mut OutputIter, lens: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
        T::rebuild(tensors, lens).map(Ok)
    }
    fn trace_error(&self) -> Option<String> {
        self.as_ref().err().map(|e| format!("{e:?}"))
    }
}

impl FunctionOutput for () {
    fn flatten(&self, _: &mut Vec<Tensor>, _: &mut Vec<usize>) {}
    fn rebuild(_: &mut OutputIter, _: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
        Some(())
    }
}

impl FunctionOutput for Tensor {
    fn flatten(&self, tensors: &mut Vec<Tensor>, _: &mut Vec<usize>) {
        tensors.push(self.clone());
    }
    fn rebuild(tensors: &mut OutputIter, _: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
        tensors.next()
    }
}

impl<T: FunctionOutput> FunctionOutput for Vec<T> {
    fn flatten(&self, tensors: &mut Vec<Tensor>, lens: &mut Vec<usize>) {
        lens.push(self.len());
        self.iter().for_each(|x| x.flatten(tensors, lens));
    }
    fn rebuild(tensors: &mut OutputIter, lens: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
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
            fn rebuild(t: &mut OutputIter, l: &mut std::slice::Iter<'_, usize>) -> Option<Self> {
                Some(($($name::rebuild(t, l)?,)+))
            }
        }
    };
}

for_tuples!(tuple_args, tuple_out);

//! `AutoState`: the variables an AutoGraph-converted `if` or loop assigns, carried
//! through it as one value (a tuple of them).

use crate::tensor::Tensor;
use crate::variable::Variable;

/// A value that can be branch or loop state: its tensors flow through the `cond` /
/// `while` node; everything else ("statics": integers, bools, strings, lengths of
/// `Vec`s) must come out of every branch and trip unchanged when the condition is a
/// tensor (they exist only while tracing).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is assigned inside an `if`/`while`/`for` that #[tf_function] converts, but it cannot be carried \
               through a tensor branch or loop",
    label = "assigned inside the converted block",
    note = "branch and loop state may be tensors, numbers, bools, strings, and tuples / Vecs / Options of those; \
            assign other values outside the block, or turn AutoGraph off with #[tf_function(autograph = false)]"
)]
pub trait AutoState {
    /// Appends the tensors, in a fixed order.
    fn tensors(&self, out: &mut Vec<Tensor>);
    /// The same value with its tensors replaced, in `tensors`' order.
    fn with_tensors(self, it: &mut dyn Iterator<Item = Tensor>) -> Self;
    /// Whether the non-tensor parts are equal.
    fn same_statics(&self, other: &Self) -> bool;
    /// The type name of a value that cannot be carried at all (see [`Carried`]).
    fn opaque(&self) -> Option<&'static str> {
        None
    }
}

impl AutoState for Tensor {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        out.push(self.clone());
    }
    fn with_tensors(self, it: &mut dyn Iterator<Item = Tensor>) -> Self {
        it.next().unwrap_or(self)
    }
    fn same_statics(&self, _: &Self) -> bool {
        true
    }
}

/// Variables are shared handles: assigning another handle inside a tensor branch is
/// not supported (assign the variable's value with `assign` instead).
impl AutoState for Variable {
    fn tensors(&self, _: &mut Vec<Tensor>) {}
    fn with_tensors(self, _: &mut dyn Iterator<Item = Tensor>) -> Self {
        self
    }
    fn same_statics(&self, other: &Self) -> bool {
        self.id() == other.id()
    }
}

/// Non-tensor values: no tensors; equal when `$same` says so.
macro_rules! static_state {
    ($same:expr; $($t:ty),*) => {$(
        impl AutoState for $t {
            fn tensors(&self, _: &mut Vec<Tensor>) {}
            fn with_tensors(self, _: &mut dyn Iterator<Item = Tensor>) -> Self {
                self
            }
            fn same_statics(&self, other: &Self) -> bool {
                let same: fn(&$t, &$t) -> bool = $same;
                same(self, other)
            }
        }
    )*};
}
static_state!(|a, b| a == b; (), bool, char, i8, i16, i32, i64, i128, isize, u8, u16, u32, u64, u128, usize, String, &'static str);
// Floats compare by bits (a NaN that stays NaN is unchanged).
static_state!(|a, b| a.to_bits() == b.to_bits(); f32, f64);

impl<T: AutoState> AutoState for Vec<T> {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        self.iter().for_each(|x| x.tensors(out));
    }
    fn with_tensors(self, it: &mut dyn Iterator<Item = Tensor>) -> Self {
        self.into_iter().map(|x| x.with_tensors(it)).collect()
    }
    fn same_statics(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().zip(other).all(|(a, b)| a.same_statics(b))
    }
}

impl<T: AutoState> AutoState for Option<T> {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        if let Some(x) = self {
            x.tensors(out);
        }
    }
    fn with_tensors(self, it: &mut dyn Iterator<Item = Tensor>) -> Self {
        self.map(|x| x.with_tensors(it))
    }
    fn same_statics(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.same_statics(b),
            (None, None) => true,
            _ => false,
        }
    }
}

/// The state tuples the macro builds: also says which element differs.
pub trait StateTuple: AutoState {
    /// Index of the first element whose statics differ.
    fn first_difference(&self, other: &Self) -> Option<usize>;
    /// Index and type of the first element that cannot be carried.
    fn first_opaque(&self) -> Option<(usize, &'static str)>;
}

macro_rules! tuple_state {
    ($($name:ident $idx:tt),*) => {
        impl<$($name: AutoState),*> AutoState for ($($name,)*) {
            fn tensors(&self, out: &mut Vec<Tensor>) {
                $(self.$idx.tensors(out);)*
            }
            fn with_tensors(self, it: &mut dyn Iterator<Item = Tensor>) -> Self {
                ($(self.$idx.with_tensors(it),)*)
            }
            fn same_statics(&self, other: &Self) -> bool {
                true $(&& self.$idx.same_statics(&other.$idx))*
            }
        }
        impl<$($name: AutoState),*> StateTuple for ($($name,)*) {
            fn first_difference(&self, other: &Self) -> Option<usize> {
                $(if !self.$idx.same_statics(&other.$idx) { return Some($idx); })*
                None
            }
            fn first_opaque(&self) -> Option<(usize, &'static str)> {
                $(if let Some(t) = self.$idx.opaque() { return Some(($idx, t)); })*
                None
            }
        }
    };
}
tuple_state!(A 0);
tuple_state!(A 0, B 1);
tuple_state!(A 0, B 1, C 2);
tuple_state!(A 0, B 1, C 2, D 3);
tuple_state!(A 0, B 1, C 2, D 3, E 4);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14);
tuple_state!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11, M 12, N 13, O 14, P 15);

/// `()` as a state tuple (a block that assigns nothing).
impl StateTuple for () {
    fn first_difference(&self, _: &Self) -> Option<usize> {
        None
    }
    fn first_opaque(&self) -> Option<(usize, &'static str)> {
        None
    }
}

/// One variable of the state the macro builds: the value with its [`AutoState`]
/// operations when its type has them, or "opaque" when it does not. Whether it has them
/// is decided at the macro's call site, where the type is concrete ([`Probe`]), so a
/// converted block compiles for any variable type and only a tensor condition around an
/// opaque one is an error (at run time, naming it). In the Rust (`bool`) arm the value
/// just passes through.
pub struct Carried<T> {
    value: T,
    ops: Option<Ops<T>>,
}

struct Ops<T> {
    tensors: fn(&T, &mut Vec<Tensor>),
    with_tensors: fn(T, &mut dyn Iterator<Item = Tensor>) -> T,
    same: fn(&T, &T) -> bool,
    clone: fn(&T) -> T,
}

impl<T> Clone for Ops<T> {
    fn clone(&self) -> Self {
        Ops { tensors: self.tensors, with_tensors: self.with_tensors, same: self.same, clone: self.clone }
    }
}

impl<T> Carried<T> {
    pub fn into_inner(self) -> T {
        self.value
    }
}

/// Cloning happens only when a tensor condition is traced, after `first_opaque` has
/// rejected opaque values; an opaque clone is therefore unreachable in correct use.
impl<T> Clone for Carried<T> {
    fn clone(&self) -> Self {
        match &self.ops {
            Some(ops) => Carried { value: (ops.clone)(&self.value), ops: Some(ops.clone()) },
            None => panic!(
                "tensorjit: a value of type `{}` cannot be carried through an `if`/loop on a Tensor condition",
                std::any::type_name::<T>()
            ),
        }
    }
}

impl<T> AutoState for Carried<T> {
    fn tensors(&self, out: &mut Vec<Tensor>) {
        if let Some(ops) = &self.ops {
            (ops.tensors)(&self.value, out)
        }
    }
    fn with_tensors(self, it: &mut dyn Iterator<Item = Tensor>) -> Self {
        match self.ops {
            Some(ops) => Carried { value: (ops.with_tensors)(self.value, it), ops: Some(ops) },
            None => self,
        }
    }
    fn same_statics(&self, other: &Self) -> bool {
        self.ops.as_ref().is_some_and(|ops| (ops.same)(&self.value, &other.value))
    }
    fn opaque(&self) -> Option<&'static str> {
        self.ops.is_none().then(std::any::type_name::<T>)
    }
}

/// Wraps a value for [`ViaAutoState::carry`] / [`ViaOpaque::carry`]: the macro calls
/// `(&Probe::new(x)).carry()`, which picks the first when `x: AutoState + Clone` (method
/// resolution tries `&Probe` before `&&Probe`).
pub struct Probe<T>(std::cell::Cell<Option<T>>);

impl<T> Probe<T> {
    pub fn new(v: T) -> Probe<T> {
        Probe(std::cell::Cell::new(Some(v)))
    }
    fn take(&self) -> T {
        match self.0.take() {
            Some(v) => v,
            None => panic!("tensorjit: internal: a probe was used twice"),
        }
    }
}

pub trait ViaAutoState<T> {
    fn carry(&self) -> Carried<T>;
}
impl<T: AutoState + Clone> ViaAutoState<T> for Probe<T> {
    fn carry(&self) -> Carried<T> {
        let ops = Ops {
            tensors: T::tensors,
            with_tensors: |v, it| v.with_tensors(it),
            same: T::same_statics,
            clone: T::clone,
        };
        Carried { value: self.take(), ops: Some(ops) }
    }
}

pub trait ViaOpaque<T> {
    fn carry(&self) -> Carried<T>;
}
impl<T> ViaOpaque<T> for &Probe<T> {
    fn carry(&self) -> Carried<T> {
        Carried { value: self.take(), ops: None }
    }
}

//! `&self` of a traced method: the instance's fields enter the signature by *identity*
//! (variables and tensors by id, other values by value), and the body reads them as
//! captured resources and constants. Ids are never reused, so each instance gets its own
//! traces and a dropped instance can never be mistaken for a new one at the same
//! address. `#[derive(FunctionArgs)]` implements this for a struct.

use super::args::{ArgSpec, ArgVec};
use crate::tensor::Tensor;
use crate::variable::Variable;

/// A field of a struct passed as `&self` to a traced method.
pub trait InstanceField {
    /// Appends the keys identifying this field's value.
    fn key(&self, out: &mut ArgVec<ArgSpec>);
}

impl InstanceField for Variable {
    fn key(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Value { kind: "variable", bits: self.id().as_u64() });
    }
}

impl InstanceField for Tensor {
    fn key(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Value { kind: "tensor", bits: self.id().as_u64() });
    }
}

impl<T: InstanceField> InstanceField for Vec<T> {
    fn key(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Value { kind: "len", bits: self.len() as u64 });
        self.iter().for_each(|x| x.key(out));
    }
}

impl<T: InstanceField> InstanceField for Option<T> {
    fn key(&self, out: &mut ArgVec<ArgSpec>) {
        out.push(ArgSpec::Value { kind: "some", bits: self.is_some() as u64 });
        if let Some(x) = self {
            x.key(out);
        }
    }
}

impl<T: InstanceField, const N: usize> InstanceField for [T; N] {
    fn key(&self, out: &mut ArgVec<ArgSpec>) {
        self.iter().for_each(|x| x.key(out));
    }
}

/// Plain values are keyed by value, as static arguments are.
macro_rules! by_value {
    ($($t:ty),*) => {$(
        impl InstanceField for $t {
            fn key(&self, out: &mut ArgVec<ArgSpec>) {
                super::args::FunctionArgs::spec(self, out);
            }
        }
    )*};
}
by_value!(bool, char, i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64, String, &'static str, ());

impl<T: std::hash::Hash + Eq + Clone + std::fmt::Debug + Send + Sync + 'static> InstanceField
    for super::args::Static<T>
{
    fn key(&self, out: &mut ArgVec<ArgSpec>) {
        super::args::FunctionArgs::spec(self, out);
    }
}

/// Skips the specs of an instance when the body is traced: the instance is passed as it
/// is (its fields are captured, not parameters).
pub fn skip_keys<T: InstanceField>(x: &T, specs: &mut std::slice::Iter<'_, ArgSpec>) {
    let mut n = ArgVec::new();
    x.key(&mut n);
    for _ in 0..n.len() {
        specs.next();
    }
}

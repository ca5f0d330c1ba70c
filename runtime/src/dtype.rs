//! Element types.

use std::fmt;

use crate::buffer::Buffer;

/// The element type of a tensor. No implicit promotion happens between dtypes: mixing
/// two in one op is an error naming both (as in TensorFlow); use [`crate::Tensor::cast`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    F32,
    F64,
    I32,
    I64,
    Bool,
}

impl DType {
    pub const ALL: [DType; 5] = [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool];

    /// The short name used in messages and in the IR text form (`f32`, `i64`, `bool`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
            DType::I32 => "i32",
            DType::I64 => "i64",
            DType::Bool => "bool",
        }
    }

    /// The enum variant's name (`F32`), for messages that show Rust code to write.
    pub fn variant_name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F64 => "F64",
            DType::I32 => "I32",
            DType::I64 => "I64",
            DType::Bool => "Bool",
        }
    }

    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }

    pub fn is_int(self) -> bool {
        matches!(self, DType::I32 | DType::I64)
    }

    /// Numeric = float or integer (everything but `bool`).
    pub fn is_numeric(self) -> bool {
        self != DType::Bool
    }

    /// Bytes per element.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::F32 | DType::I32 => 4,
            DType::F64 | DType::I64 => 8,
            DType::Bool => 1,
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A Rust type that can be the element of a tensor.
pub trait Element: Copy + Send + Sync + fmt::Debug + fmt::Display + PartialOrd + Default + 'static {
    const DTYPE: DType;
    /// Lossy conversion used for printing and for scalars taking a tensor's dtype.
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
    fn slice(buf: &Buffer) -> Option<&[Self]>;
    fn into_buffer(v: Vec<Self>) -> Buffer;
}

macro_rules! element {
    ($t:ty, $variant:ident, |$v:ident| $from:expr, |$s:ident| $to:expr) => {
        impl Element for $t {
            const DTYPE: DType = DType::$variant;
            #[inline]
            fn to_f64(self) -> f64 {
                let $s = self;
                $to
            }
            #[inline]
            fn from_f64($v: f64) -> Self {
                $from
            }
            #[inline]
            fn slice(buf: &Buffer) -> Option<&[Self]> {
                match buf {
                    Buffer::$variant(v) => Some(v),
                    _ => None,
                }
            }
            #[inline]
            fn into_buffer(v: Vec<Self>) -> Buffer {
                Buffer::$variant(v)
            }
        }
    };
}

element!(f32, F32, |v| v as f32, |s| s as f64);
element!(f64, F64, |v| v, |s| s);
element!(i32, I32, |v| v as i32, |s| s as f64);
element!(i64, I64, |v| v as i64, |s| s as f64);
element!(bool, Bool, |v| v != 0.0, |s| if s { 1.0 } else { 0.0 });

/// A Rust number used as an operand (`&x * 2.0`). It takes the dtype of the tensor it
/// meets, like JAX's weak types: `&x * 2.0` on an f32 tensor stays f32.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Float(f64),
    Int(i64),
    Bool(bool),
}

impl Scalar {
    /// The value as f64 (exact for every value the conversions below accept).
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Float(v) => v,
            Scalar::Int(v) => v as f64,
            Scalar::Bool(b) => b as u8 as f64,
        }
    }

    /// Whether this scalar can take `dtype` without changing its value class: a float
    /// with a fractional part cannot become an integer, a number cannot become a bool.
    pub fn fits(self, dtype: DType) -> bool {
        match (self, dtype) {
            (Scalar::Bool(_), DType::Bool) => true,
            (Scalar::Bool(_), _) | (_, DType::Bool) => false,
            (Scalar::Float(v), d) if d.is_int() => v.fract() == 0.0,
            _ => true,
        }
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Float(v) => write!(f, "{v:?}"),
            Scalar::Int(v) => write!(f, "{v}"),
            Scalar::Bool(v) => write!(f, "{v}"),
        }
    }
}

macro_rules! scalar_from {
    ($($t:ty => $variant:ident as $as:ty),*) => {$(
        impl From<$t> for Scalar {
            fn from(v: $t) -> Scalar {
                Scalar::$variant(v as $as)
            }
        }
    )*};
}
scalar_from!(f32 => Float as f64, f64 => Float as f64, i32 => Int as i64, i64 => Int as i64, u8 => Int as i64, u32 => Int as i64, usize => Int as i64);

impl From<bool> for Scalar {
    fn from(v: bool) -> Scalar {
        Scalar::Bool(v)
    }
}

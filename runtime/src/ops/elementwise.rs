//! Elementwise ops: unary math, binary arithmetic/comparison/logic with NumPy
//! broadcasting, `where_`, `cast`.

use std::panic::Location;

use super::{apply, needs, Op, Operand};
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::Shape;
use crate::tensor::Tensor;

/// Unary elementwise primitives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Abs,
    Sign,
    Exp,
    Log,
    Sqrt,
    Rsqrt,
    Square,
    Tanh,
    Sigmoid,
    Relu,
    Softplus,
    Sin,
    Cos,
    /// The error function (GELU's exact form).
    Erf,
    Floor,
    Ceil,
    LogicalNot,
}

impl UnaryOp {
    /// Every variant (for parsers and exhaustive tests).
    pub const ALL: [UnaryOp; 18] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Rsqrt,
        UnaryOp::Square,
        UnaryOp::Tanh,
        UnaryOp::Sigmoid,
        UnaryOp::Relu,
        UnaryOp::Softplus,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Erf,
        UnaryOp::Floor,
        UnaryOp::Ceil,
        UnaryOp::LogicalNot,
    ];

    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Square => "square",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Erf => "erf",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
            UnaryOp::LogicalNot => "logical_not",
        }
    }

    /// Ops defined on floats only (transcendentals, rounding).
    fn float_only(self) -> bool {
        !matches!(
            self,
            UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Square | UnaryOp::Relu | UnaryOp::LogicalNot
        )
    }
}

/// Binary elementwise primitives (NumPy broadcasting, both operands of one dtype).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    /// True division on floats; floor division on integers (as `floordiv`).
    Div,
    FloorDiv,
    /// The remainder of `FloorDiv`, with the divisor's sign (`tf.math.floormod`, `%`).
    Mod,
    Pow,
    Maximum,
    Minimum,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LogicalAnd,
    LogicalOr,
}

impl BinaryOp {
    /// Every variant (for parsers and exhaustive tests).
    pub const ALL: [BinaryOp; 17] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::FloorDiv,
        BinaryOp::Mod,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::LogicalAnd,
        BinaryOp::LogicalOr,
    ];

    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::FloorDiv => "floordiv",
            BinaryOp::Mod => "floormod",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "equal",
            BinaryOp::Ne => "not_equal",
            BinaryOp::Lt => "less",
            BinaryOp::Le => "less_equal",
            BinaryOp::Gt => "greater",
            BinaryOp::Ge => "greater_equal",
            BinaryOp::LogicalAnd => "logical_and",
            BinaryOp::LogicalOr => "logical_or",
        }
    }

    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge)
    }

    pub fn is_logical(self) -> bool {
        matches!(self, BinaryOp::LogicalAnd | BinaryOp::LogicalOr)
    }
}

pub(crate) fn infer_unary(op: UnaryOp, x: &Tensor) -> Result<(DType, Shape), OpError> {
    let d = x.dtype();
    if op == UnaryOp::LogicalNot {
        if d != DType::Bool {
            return Err(needs(op.name(), "a bool tensor", d, "; compare first (e.g. `x.ne(0.0)`)"));
        }
    } else if op.float_only() && !d.is_float() {
        return Err(needs(op.name(), "a float tensor (f32 or f64)", d, "; cast it first (`.cast(DType::F32)`)"));
    } else if d == DType::Bool {
        return Err(needs(op.name(), "a numeric tensor", d, "; cast it first"));
    }
    Ok((d, x.shape().clone()))
}

fn broadcast_shapes(op: &'static str, a: &Shape, b: &Shape) -> Result<Shape, OpError> {
    Shape::broadcast(a, b).ok_or_else(|| OpError::new(op, format!("shapes {a} and {b} cannot be broadcast together")))
}

pub(crate) fn infer_binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<(DType, Shape), OpError> {
    let (da, db) = (a.dtype(), b.dtype());
    if da != db {
        return Err(OpError::new(
            op.name(),
            format!("dtype mismatch: {da} vs {db}; tensorjit never promotes implicitly — cast one operand (`.cast(DType::{})`)", da.variant_name()),
        ));
    }
    if op.is_logical() && da != DType::Bool {
        return Err(needs(op.name(), "bool tensors", da, ""));
    }
    if !op.is_logical() && !matches!(op, BinaryOp::Eq | BinaryOp::Ne) && da == DType::Bool {
        return Err(needs(op.name(), "numeric tensors", da, "; cast it first"));
    }
    let shape = broadcast_shapes(op.name(), a.shape(), b.shape())?;
    let out = if op.is_comparison() { DType::Bool } else { da };
    Ok((out, shape))
}

pub(crate) fn infer_select(c: &Tensor, a: &Tensor, b: &Tensor) -> Result<(DType, Shape), OpError> {
    if c.dtype() != DType::Bool {
        return Err(needs("where", "a bool condition", c.dtype(), ""));
    }
    if a.dtype() != b.dtype() {
        return Err(OpError::new(
            "where",
            format!("the branches have different dtypes: {} vs {}", a.dtype(), b.dtype()),
        ));
    }
    let s = broadcast_shapes("where", c.shape(), a.shape())?;
    let s = broadcast_shapes("where", &s, b.shape())?;
    Ok((a.dtype(), s))
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {$(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self) -> Tensor {
                apply(Op::Unary(UnaryOp::$op), &[self])
            }
        )*}
    };
}

unary_methods! {
    /// −x.
    neg => Neg,
    /// |x|.
    abs => Abs,
    /// −1, 0 or 1 (NaN stays NaN).
    sign => Sign,
    /// e^x (math.rs algorithm).
    exp => Exp,
    /// Natural logarithm.
    log => Log,
    sqrt => Sqrt,
    /// 1/√x (a correctly rounded sqrt, then a division).
    rsqrt => Rsqrt,
    /// x·x.
    square => Square,
    tanh => Tanh,
    /// 1/(1+e^{−x}).
    sigmoid => Sigmoid,
    /// max(x, 0); NaN stays NaN.
    relu => Relu,
    /// ln(1+e^x), computed stably.
    softplus => Softplus,
    sin => Sin,
    cos => Cos,
    /// The error function, (2/√π)∫₀ˣ e^(−t²) dt (`tf.math.erf`).
    erf => Erf,
    floor => Floor,
    ceil => Ceil,
    /// Elementwise `!` of a bool tensor.
    logical_not => LogicalNot,
}

impl Tensor {
    /// Runs a binary op with `rhs` converted to this tensor's dtype when it is a scalar.
    #[track_caller]
    #[inline]
    pub(crate) fn binary(&self, op: BinaryOp, rhs: impl Operand) -> Tensor {
        match rhs.into_tensor(self.dtype(), op.name()) {
            Ok(r) => apply(Op::Binary(op), &[self, &r]),
            Err(e) => e.with_operands([(self.dtype(), self.shape())]).raise(Location::caller()),
        }
    }

    /// `scalar op tensor`, the scalar taking the tensor's dtype.
    #[track_caller]
    pub(crate) fn binary_rev(lhs: impl Operand, op: BinaryOp, rhs: &Tensor) -> Tensor {
        match lhs.into_tensor(rhs.dtype(), op.name()) {
            Ok(l) => apply(Op::Binary(op), &[&l, rhs]),
            Err(e) => e.with_operands([(rhs.dtype(), rhs.shape())]).raise(Location::caller()),
        }
    }

    /// `where_(cond, a, b)`: elements of `a` where `cond` holds, else of `b`
    /// (three-way broadcasting). `a` or `b` may be Rust scalars.
    #[track_caller]
    pub fn where_(cond: &Tensor, a: impl Operand, b: impl Operand) -> Tensor {
        // Scalars take the dtype of the tensor branch (f32/i32/bool when both are scalars).
        let ((da, sa), (db, _)) = (a.natural_dtype(), b.natural_dtype());
        let like = if sa { da } else { db };
        let (a, b) = match (a.into_tensor(like, "where"), b.into_tensor(like, "where")) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => e.raise(Location::caller()),
        };
        apply(Op::Select, &[cond, &a, &b])
    }

    /// `where_` whose branches are tensors (`self` where `cond`, else `other`).
    #[track_caller]
    pub fn select(&self, cond: &Tensor, other: impl Operand) -> Tensor {
        match other.into_tensor(self.dtype(), "where") {
            Ok(o) => apply(Op::Select, &[cond, self, &o]),
            Err(e) => e.raise(Location::caller()),
        }
    }

    /// Each element limited to [`lo`, `hi`] (`tf.clip_by_value`, `torch.clamp`):
    /// `minimum(maximum(x, lo), hi)` — NaN stays NaN, `lo > hi` gives `hi` (NumPy), and
    /// the gradient passes where lo ≤ x ≤ hi (TensorFlow's).
    #[track_caller]
    pub fn clip(&self, lo: impl Operand, hi: impl Operand) -> Tensor {
        self.maximum(lo).minimum(hi)
    }

    /// Converts to `dtype` (`as` semantics: float → int truncates toward zero and
    /// saturates, NaN → 0; bool ↔ number via 0/1).
    #[track_caller]
    pub fn cast(&self, dtype: DType) -> Tensor {
        if self.dtype() == dtype {
            return self.clone();
        }
        apply(Op::Cast(dtype), &[self])
    }
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {$(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(&self, rhs: impl Operand) -> Tensor {
                self.binary(BinaryOp::$op, rhs)
            }
        )*}
    };
}

binary_methods! {
    add => Add,
    sub => Sub,
    mul => Mul,
    /// Float division; on integers, floor division (toward −∞) like `floordiv`.
    div => Div,
    /// ⌊a / b⌋ (toward −∞). Integer division by zero gives 0.
    floordiv => FloorDiv,
    /// x − ⌊x / y⌋·y, with y's sign (`tf.math.floormod`, Python's `%`; also the `%`
    /// operator). Floats: exact (C's `fmod`, then + y where the signs differ; a zero
    /// remainder keeps x's sign, as TensorFlow's), `y = 0` gives NaN; integers: `y = 0`
    /// gives 0 (NumPy), never a trap.
    floormod => Mod,
    /// a^b (IEEE `pow` special cases; integers: negative exponents give 0 unless |a| = 1).
    pow => Pow,
    /// Elementwise maximum; NaN propagates; on ties the left operand is the result.
    maximum => Maximum,
    minimum => Minimum,
    /// Elementwise `==` → bool.
    eq => Eq,
    ne => Ne,
    lt => Lt,
    le => Le,
    gt => Gt,
    ge => Ge,
    logical_and => LogicalAnd,
    logical_or => LogicalOr,
}

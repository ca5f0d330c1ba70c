//! Target-independent lowering of fused kernels: the primitive operations every code
//! generator provides ([`Lower`]), and, written once on top of them, each kernel op and
//! the runtime's f32 transcendentals (`math.rs`). Cranelift (`codegen`) and PTX (`ptx`)
//! implement `Lower`; both therefore compute the same operation sequence — the eager
//! kernels' bits on the CPU, and the same algorithms on the GPU.

mod math;

use tensorjit_runtime::ops::{BinaryOp, UnaryOp};

use crate::kernel::{Expr, Kernel};

/// A float comparison. All are ordered (false when either side is NaN) except `Ne`
/// (Rust's `!=`: true when either is NaN) and `Unordered` (either is NaN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cc {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Unordered,
}

/// The primitives of a code generator. `V` is a value: an f32, an i32 (the bits of
/// one) or a comparison mask, as each method says.
pub trait Lower {
    type V: Copy;
    fn fconst(&mut self, v: f32) -> Self::V;
    fn iconst(&mut self, v: i32) -> Self::V;
    /// IEEE round-to-nearest arithmetic, never fused into FMA (but where `fma` says).
    fn fadd(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn fsub(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn fmul(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn fdiv(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// `a·b + c` rounded once (IEEE fusedMultiplyAdd: the runtime's `mul_add`).
    fn fma(&mut self, a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    fn fsqrt(&mut self, a: Self::V) -> Self::V;
    fn fneg(&mut self, a: Self::V) -> Self::V;
    fn fabs(&mut self, a: Self::V) -> Self::V;
    fn iadd(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn isub(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn band(&mut self, a: Self::V, b: Self::V) -> Self::V;
    fn bor(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// Arithmetic shift right by `n`.
    fn sshr(&mut self, a: Self::V, n: u8) -> Self::V;
    fn shl(&mut self, a: Self::V, n: u8) -> Self::V;
    /// The bits of an f32 as an i32.
    fn bits_of(&mut self, x: Self::V) -> Self::V;
    /// The f32 with the bits of an i32.
    fn float_of(&mut self, x: Self::V) -> Self::V;
    /// The i32's value as an f32 (round to nearest).
    fn int_to_float(&mut self, x: Self::V) -> Self::V;
    fn fcmp(&mut self, cc: Cc, a: Self::V, b: Self::V) -> Self::V;
    fn mask_or(&mut self, a: Self::V, b: Self::V) -> Self::V;
    /// `mask ? a : b` on floats.
    fn sel(&mut self, mask: Self::V, a: Self::V, b: Self::V) -> Self::V;
    /// `mask ? a : b` on integers.
    fn sel_int(&mut self, mask: Self::V, a: Self::V, b: Self::V) -> Self::V;

    /// `a / b` correctly rounded, for the operands of `tanh`'s `2 / (e + 1)` (e ∈ [1,
    /// e^20]) and `sigmoid`'s `{1, e} / (1 + e)` (e ∈ [0, 1]) only, or NaN: moderate
    /// numbers, for which a target may leave out the checks its general division makes
    /// for huge, tiny and special operands (the GPU's: `ptx::division`, verified for
    /// every operand of both). A plain division by default.
    fn fdiv_moderate(&mut self, a: Self::V, b: Self::V) -> Self::V {
        self.fdiv(a, b)
    }

    /// `mag` with the sign bit of `sign` (bitwise, as the runtime's `copysign`).
    fn copysign(&mut self, mag: Self::V, sign: Self::V) -> Self::V {
        let (m, s) = (self.bits_of(mag), self.bits_of(sign));
        let lo = self.iconst(0x7fff_ffff);
        let hi = self.iconst(i32::MIN);
        let m = self.band(m, lo);
        let s = self.band(s, hi);
        let r = self.bor(m, s);
        self.float_of(r)
    }
}

/// A fusible unary op.
pub fn unary<L: Lower>(l: &mut L, u: UnaryOp, x: L::V) -> L::V {
    match u {
        UnaryOp::Neg => l.fneg(x),
        UnaryOp::Abs => l.fabs(x),
        UnaryOp::Square => l.fmul(x, x),
        UnaryOp::Sqrt => l.fsqrt(x),
        // The runtime's `1 / sqrt(x)`: two correctly rounded steps.
        UnaryOp::Rsqrt => {
            let (one, s) = (l.fconst(1.0), l.fsqrt(x));
            l.fdiv(one, s)
        }
        // x > 0 → 1, x < 0 → −1, else x itself (±0 and NaN keep their bits).
        UnaryOp::Sign => {
            let zero = l.fconst(0.0);
            let (pos, neg) = (l.fcmp(Cc::Gt, x, zero), l.fcmp(Cc::Lt, x, zero));
            let (one, minus) = (l.fconst(1.0), l.fconst(-1.0));
            let t = l.sel(neg, minus, x);
            l.sel(pos, one, t)
        }
        UnaryOp::Relu => {
            let zero = l.fconst(0.0);
            let neg = l.fcmp(Cc::Lt, x, zero);
            l.sel(neg, zero, x)
        }
        UnaryOp::Exp => math::exp(l, x),
        UnaryOp::Log => math::log(l, x),
        UnaryOp::Tanh => math::tanh(l, x),
        UnaryOp::Sigmoid => math::sigmoid(l, x),
        UnaryOp::Softplus => math::softplus(l, x),
        other => unreachable!("the planner fuses only supported ops, not {}", other.name()),
    }
}

/// A fusible binary op.
pub fn binary<L: Lower>(l: &mut L, op: BinaryOp, x: L::V, y: L::V) -> L::V {
    match op {
        BinaryOp::Add => l.fadd(x, y),
        BinaryOp::Sub => l.fsub(x, y),
        BinaryOp::Mul => l.fmul(x, y),
        BinaryOp::Div => l.fdiv(x, y),
        // The runtime's `sel(x >= y || x != x, x, y)`: NaN in x propagates, ties (±0
        // included) give the left operand.
        BinaryOp::Maximum | BinaryOp::Minimum => {
            let cc = if op == BinaryOp::Maximum { Cc::Ge } else { Cc::Le };
            let c = l.fcmp(cc, x, y);
            let nan = l.fcmp(Cc::Unordered, x, x);
            let m = l.mask_or(c, nan);
            l.sel(m, x, y)
        }
        other => unreachable!("the planner fuses only supported ops, not {}", other.name()),
    }
}

/// The comparison of a `Cmp` expression.
pub fn cmp_cc(op: BinaryOp) -> Cc {
    match op {
        BinaryOp::Eq => Cc::Eq,
        BinaryOp::Ne => Cc::Ne,
        BinaryOp::Lt => Cc::Lt,
        BinaryOp::Le => Cc::Le,
        BinaryOp::Gt => Cc::Gt,
        BinaryOp::Ge => Cc::Ge,
        other => unreachable!("the planner fuses only comparisons here, not {}", other.name()),
    }
}

/// Every expression of `k` for one element (or one vector), `input(l, i)` giving the
/// value of input `i`.
pub fn eval<L: Lower>(l: &mut L, k: &Kernel, mut input: impl FnMut(&mut L, usize) -> L::V) -> Vec<L::V> {
    let mut vals: Vec<L::V> = Vec::with_capacity(k.exprs.len());
    for e in &k.exprs {
        let v = match e {
            Expr::Input(i) => input(l, *i),
            Expr::Const(c) => l.fconst(*c),
            Expr::Unary(u, a) => unary(l, *u, vals[*a]),
            Expr::Binary(op, x, y) => binary(l, *op, vals[*x], vals[*y]),
            Expr::Cmp(op, x, y) => l.fcmp(cmp_cc(*op), vals[*x], vals[*y]),
            Expr::Select(m, a, b) => l.sel(vals[*m], vals[*a], vals[*b]),
        };
        vals.push(v);
    }
    vals
}

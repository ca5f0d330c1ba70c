//! Typed single-op kernels: the eager GPU ops whose operands or results are not all f32
//! — comparisons (→ bool), `logical_and`/`or`/`not`, `where` (a bool mask picking
//! between two operands of any element type), casts between f32, f64, i32, i64 and bool,
//! f32 `floor`/`ceil`/`sin`/`cos`/`pow`/floor division, integer arithmetic (`ptx::int`)
//! and f64 arithmetic (`ptx::float64`). The fused-kernel IR ([`crate::kernel`]) stays f32
//! (what fusion and the Cranelift generator need); these kernels are a second, small
//! IR — one op, typed operands read with the same access patterns — rendered by the same
//! PTX emitter and element loop. Every op gives the runtime's results bit for bit:
//! comparisons are IEEE (`ne` is true with a NaN), float → int casts truncate, saturate
//! and send NaN to 0 (Rust's `as`), int → float rounds to nearest even, x → bool is
//! `x != 0`.
//!
//! Element types in registers: f32 in `%f`, i32 and bool (0 or 1, one byte in memory)
//! in `%r`, i64 and f64 in `%rd`.
//!
//! ```text
//! typed less.i64(in0 full, in1 scalar) -> bool
//! ```

use std::fmt;

use tensorjit_runtime::ops::{BinaryOp, Op, UnaryOp};
use tensorjit_runtime::DType;

use super::{address, element_loop, entry, f32_literal, grid_stride, header, param, Emitter, Reg};
use crate::kernel::Access;
use crate::lower::Lower;

/// The element type of a typed kernel's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Elem {
    F32,
    /// In `%rd` registers (f64 instructions take `.b64` registers).
    F64,
    I32,
    I64,
    Bool,
}

impl Elem {
    /// The element type of `d`.
    pub fn of(d: DType) -> Elem {
        match d {
            DType::F32 => Elem::F32,
            DType::F64 => Elem::F64,
            DType::I32 => Elem::I32,
            DType::I64 => Elem::I64,
            DType::Bool => Elem::Bool,
        }
    }

    pub fn dtype(self) -> DType {
        match self {
            Elem::F32 => DType::F32,
            Elem::F64 => DType::F64,
            Elem::I32 => DType::I32,
            Elem::I64 => DType::I64,
            Elem::Bool => DType::Bool,
        }
    }

    /// Bytes per element.
    pub fn bytes(self) -> usize {
        match self {
            Elem::F32 | Elem::I32 => 4,
            Elem::I64 | Elem::F64 => 8,
            Elem::Bool => 1,
        }
    }

    /// log2 of [`bytes`](Self::bytes): an element index's shift to a byte offset.
    pub(super) fn shift(self) -> u8 {
        match self {
            Elem::F32 | Elem::I32 => 2,
            Elem::I64 | Elem::F64 => 3,
            Elem::Bool => 0,
        }
    }

    /// A fresh register that holds one element.
    pub(super) fn reg(self, e: &mut Emitter) -> Reg {
        match self {
            Elem::F32 => e.f(),
            Elem::I32 | Elem::Bool => e.r(),
            Elem::I64 | Elem::F64 => e.rd(),
        }
    }

    /// Whether it is a float type (comparisons are IEEE: a NaN is unordered).
    pub fn is_float(self) -> bool {
        matches!(self, Elem::F32 | Elem::F64)
    }

    /// The type of comparisons and selections on it.
    pub(super) fn setp(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F64 => "f64",
            Elem::I32 => "s32",
            Elem::I64 => "s64",
            Elem::Bool => "u32",
        }
    }

    pub(super) fn selp(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::I32 | Elem::Bool => "b32",
            Elem::I64 | Elem::F64 => "b64",
        }
    }

    /// The type suffix of its loads.
    pub(super) fn load_type(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F64 => "f64",
            Elem::I32 => "s32",
            Elem::I64 => "s64",
            Elem::Bool => "u8",
        }
    }

    /// The type suffix of a `mov` into its register.
    pub(super) fn mov(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F64 | Elem::I64 => "b64",
            Elem::I32 | Elem::Bool => "b32",
        }
    }

    /// Zero as a literal of its type.
    pub(super) fn zero_literal(self) -> &'static str {
        match self {
            Elem::F32 => "0f00000000",
            Elem::F64 => "0d0000000000000000",
            Elem::I32 | Elem::I64 | Elem::Bool => "0",
        }
    }

    /// Loads the element at byte address `addr` into a fresh register.
    pub(super) fn load(self, e: &mut Emitter, addr: Reg) -> Reg {
        let d = self.reg(e);
        e.ins(format_args!("ld.global.nc.{} {d}, [{addr}]", self.load_type()));
        d
    }

    /// Stores register `v` (of this type) at byte address `addr`.
    pub(super) fn store(self, e: &mut Emitter, addr: Reg, v: Reg) {
        let ty = match self {
            Elem::F32 => "f32",
            Elem::I32 => "b32",
            Elem::I64 | Elem::F64 => "b64",
            Elem::Bool => "u8",
        };
        e.ins(format_args!("st.global.{ty} [{addr}], {v}"));
    }

    /// A register holding 1 (`one`) or 0 of this type.
    pub(super) fn constant(self, e: &mut Emitter, one: bool) -> Reg {
        let d = self.reg(e);
        match self {
            Elem::F32 => e.ins(format_args!("mov.b32 {d}, {}", f32_literal(if one { 1.0 } else { 0.0 }))),
            Elem::I32 | Elem::Bool => e.ins(format_args!("mov.b32 {d}, {}", u8::from(one))),
            Elem::I64 => e.ins(format_args!("mov.b64 {d}, {}", u8::from(one))),
            Elem::F64 => e.ins(format_args!("mov.b64 {d}, 0d{:016X}", if one { 1f64 } else { 0f64 }.to_bits())),
        }
        d
    }

    fn name(self) -> &'static str {
        match self {
            Elem::F32 => "f32",
            Elem::F64 => "f64",
            Elem::I32 => "i32",
            Elem::I64 => "i64",
            Elem::Bool => "bool",
        }
    }
}

/// What a typed kernel computes per element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TypedOp {
    /// `a <cmp> b` of two operands of one type → bool (`Eq` … `Ge`).
    Compare(BinaryOp, Elem),
    /// `logical_and` / `logical_or` of two bools.
    Logical(BinaryOp),
    /// `logical_not` of a bool.
    Not,
    /// `mask ? a : b` (`where`): a bool mask, then two operands of one type.
    Select(Elem),
    /// `x as U`.
    Cast(Elem, Elem),
    /// `+`, `−`, `×` (two's complement, wrapping as the runtime's), floor division
    /// (`Div`/`FloorDiv`: toward −∞, by 0 gives 0), `floormod` (by 0 gives 0), `pow`,
    /// `maximum` or `minimum` of two
    /// i32s or two i64s.
    Int(BinaryOp, Elem),
    /// `neg`, `abs`, `sign`, `square` or `relu` of an i32 or an i64 (wrapping).
    IntUnary(UnaryOp, Elem),
    /// A float binary op of two f64s (`+ − × ÷`, floor division, `pow`, `maximum`,
    /// `minimum`; `ptx::float64`).
    F64(BinaryOp),
    /// A float unary op of an f64 (every one but `logical_not`; the runtime's f64
    /// algorithms).
    F64Unary(UnaryOp),
    /// `pow` of two f32s (the runtime's f64 algorithm, rounded).
    Pow,
    /// `floor(a / b)` of two f32s.
    FloorDiv,
    /// `floormod(a, b)` of two f32s (exact, `ptx::floormod`).
    FloorMod,
    /// `sin`, `cos` or `erf` of an f32 (the runtime's algorithms: in f64 arithmetic,
    /// rounded once).
    F32ViaF64(UnaryOp),
    /// `floor` or `ceil` of an f32 (`sign` is a fusible op: f32 kernels compute it).
    Round(UnaryOp),
}

impl TypedOp {
    /// The typed op that computes `op` on operands of `dtypes` into a `result` (`None`:
    /// none does — an f32 fused kernel or another GPU path might, or the host).
    pub fn of(op: &Op, dtypes: &[DType], result: DType) -> Option<TypedOp> {
        use BinaryOp::*;
        let elems: smallvec::SmallVec<[Elem; 3]> = dtypes.iter().map(|d| Elem::of(*d)).collect();
        let t = match (op, elems.as_slice()) {
            (Op::Binary(c @ (Eq | Ne)), &[a, b]) if a == b => TypedOp::Compare(*c, a),
            (Op::Binary(c @ (Lt | Le | Gt | Ge)), &[a, b]) if a == b && a != Elem::Bool => TypedOp::Compare(*c, a),
            (Op::Binary(l @ (LogicalAnd | LogicalOr)), [Elem::Bool, Elem::Bool]) => TypedOp::Logical(*l),
            (Op::Binary(Pow), [Elem::F32, Elem::F32]) => TypedOp::Pow,
            (Op::Binary(FloorDiv), [Elem::F32, Elem::F32]) => TypedOp::FloorDiv,
            (Op::Binary(Mod), [Elem::F32, Elem::F32]) => TypedOp::FloorMod,
            (Op::Unary(u @ (UnaryOp::Sin | UnaryOp::Cos | UnaryOp::Erf)), [Elem::F32]) => TypedOp::F32ViaF64(*u),
            (Op::Binary(b @ (Add | Sub | Mul | Div | FloorDiv | Mod | Maximum | Minimum | Pow)), &[a, c])
                if a == c && matches!(a, Elem::I32 | Elem::I64) =>
            {
                TypedOp::Int(*b, a)
            }
            (Op::Unary(u @ (UnaryOp::Neg | UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Square | UnaryOp::Relu)), &[a])
                if matches!(a, Elem::I32 | Elem::I64) =>
            {
                TypedOp::IntUnary(*u, a)
            }
            (Op::Binary(b), [Elem::F64, Elem::F64]) if super::float64::is_arithmetic(*b) => TypedOp::F64(*b),
            (Op::Unary(u), [Elem::F64]) if *u != UnaryOp::LogicalNot => TypedOp::F64Unary(*u),
            (Op::Unary(UnaryOp::LogicalNot), [Elem::Bool]) => TypedOp::Not,
            (Op::Unary(u @ (UnaryOp::Floor | UnaryOp::Ceil)), [Elem::F32]) => TypedOp::Round(*u),
            (Op::Select, &[Elem::Bool, a, b]) if a == b => TypedOp::Select(a),
            (Op::Cast(to), &[from]) => TypedOp::Cast(from, Elem::of(*to)),
            _ => return None,
        };
        (t.result().dtype() == result).then_some(t)
    }

    /// The runtime op it computes.
    pub fn op(self) -> Op {
        match self {
            TypedOp::Compare(c, _) | TypedOp::Logical(c) | TypedOp::Int(c, _) | TypedOp::F64(c) => Op::Binary(c),
            TypedOp::Not => Op::Unary(UnaryOp::LogicalNot),
            TypedOp::Pow => Op::Binary(BinaryOp::Pow),
            TypedOp::FloorDiv => Op::Binary(BinaryOp::FloorDiv),
            TypedOp::FloorMod => Op::Binary(BinaryOp::Mod),
            TypedOp::Select(_) => Op::Select,
            TypedOp::Cast(_, to) => Op::Cast(to.dtype()),
            TypedOp::Round(u) | TypedOp::F32ViaF64(u) | TypedOp::IntUnary(u, _) | TypedOp::F64Unary(u) => Op::Unary(u),
        }
    }

    /// Every typed op (for exhaustive tests).
    pub fn all() -> Vec<TypedOp> {
        use BinaryOp::*;
        let elems = [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool];
        let mut ops = Vec::new();
        for t in elems {
            // Bools are only compared for (in)equality.
            let compares: &[BinaryOp] = if t == Elem::Bool { &[Eq, Ne] } else { &[Eq, Ne, Lt, Le, Gt, Ge] };
            ops.extend(compares.iter().map(|&c| TypedOp::Compare(c, t)));
            ops.push(TypedOp::Select(t));
            ops.extend(elems.map(|to| TypedOp::Cast(t, to)));
            if matches!(t, Elem::I32 | Elem::I64) {
                ops.extend([Add, Sub, Mul, FloorDiv, Mod, Pow, Maximum, Minimum].map(|b| TypedOp::Int(b, t)));
                ops.extend(
                    [UnaryOp::Neg, UnaryOp::Abs, UnaryOp::Sign, UnaryOp::Square, UnaryOp::Relu]
                        .map(|u| TypedOp::IntUnary(u, t)),
                );
            }
        }
        ops.extend([
            TypedOp::Logical(LogicalAnd),
            TypedOp::Logical(LogicalOr),
            TypedOp::Not,
            TypedOp::Pow,
            TypedOp::FloorDiv,
            TypedOp::FloorMod,
        ]);
        ops.extend([UnaryOp::Floor, UnaryOp::Ceil].map(TypedOp::Round));
        ops.extend([UnaryOp::Sin, UnaryOp::Cos, UnaryOp::Erf].map(TypedOp::F32ViaF64));
        ops.extend(super::float64::binary_ops().map(TypedOp::F64));
        ops.extend(super::float64::unary_ops().map(TypedOp::F64Unary));
        ops
    }

    /// The operands' element types, in order.
    pub fn operands(self) -> Vec<Elem> {
        match self {
            TypedOp::Compare(_, t) | TypedOp::Int(_, t) => vec![t, t],
            TypedOp::Logical(_) => vec![Elem::Bool, Elem::Bool],
            TypedOp::Not => vec![Elem::Bool],
            TypedOp::IntUnary(_, t) => vec![t],
            TypedOp::F64(_) => vec![Elem::F64, Elem::F64],
            TypedOp::F64Unary(_) => vec![Elem::F64],
            TypedOp::Select(t) => vec![Elem::Bool, t, t],
            TypedOp::Cast(from, _) => vec![from],
            TypedOp::Round(_) | TypedOp::F32ViaF64(_) => vec![Elem::F32],
            TypedOp::Pow | TypedOp::FloorDiv | TypedOp::FloorMod => vec![Elem::F32, Elem::F32],
        }
    }

    /// The result's element type.
    pub fn result(self) -> Elem {
        match self {
            TypedOp::Compare(..) | TypedOp::Logical(_) | TypedOp::Not => Elem::Bool,
            TypedOp::Select(t) | TypedOp::Cast(_, t) | TypedOp::Int(_, t) | TypedOp::IntUnary(_, t) => t,
            TypedOp::F64(_) | TypedOp::F64Unary(_) => Elem::F64,
            TypedOp::Round(_) | TypedOp::F32ViaF64(_) | TypedOp::Pow | TypedOp::FloorDiv | TypedOp::FloorMod => {
                Elem::F32
            }
        }
    }

    /// Emits the op on operand registers `x` (of [`operands`](Self::operands)' types);
    /// returns the result register.
    fn emit(self, e: &mut Emitter, x: &[Reg]) -> Reg {
        match self {
            TypedOp::Compare(c, t) => {
                let cc = match c {
                    BinaryOp::Eq => "eq",
                    // IEEE: a NaN is unequal to everything.
                    BinaryOp::Ne if t.is_float() => "neu",
                    BinaryOp::Ne => "ne",
                    BinaryOp::Lt => "lt",
                    BinaryOp::Le => "le",
                    BinaryOp::Gt => "gt",
                    _ => "ge",
                };
                let p = e.p();
                e.ins(format_args!("setp.{cc}.{} {p}, {}, {}", t.setp(), x[0], x[1]));
                bool_of(e, p)
            }
            TypedOp::Int(BinaryOp::Div | BinaryOp::FloorDiv, t) => super::int::floordiv(e, t, x[0], x[1]),
            TypedOp::Int(BinaryOp::Mod, t) => super::int::floormod(e, t, x[0], x[1]),
            TypedOp::FloorMod => super::floormod::floormod_f32(e, x[0], x[1]),
            TypedOp::Int(BinaryOp::Pow, t) => super::int::pow(e, t, x[0], x[1]),
            TypedOp::IntUnary(u, t) => super::int::unary(e, u, t, x[0]),
            TypedOp::F64(b) => super::float64::binary(e, b, x[0], x[1]),
            TypedOp::F64Unary(u) => super::float64::unary(e, u, x[0]),
            TypedOp::FloorDiv => {
                // floor(a / b), a NaN quotient kept as it is (as the runtime's floor).
                let q = e.fdiv(x[0], x[1]);
                let (r, nan, d) = (e.f(), e.p(), e.f());
                e.ins(format_args!("cvt.rmi.f32.f32 {r}, {q}"));
                e.ins(format_args!("setp.nan.f32 {nan}, {q}, {q}"));
                e.ins(format_args!("selp.f32 {d}, {q}, {r}, {nan}"));
                d
            }
            TypedOp::Int(b, t) => {
                let op = match b {
                    BinaryOp::Add => "add",
                    BinaryOp::Sub => "sub",
                    BinaryOp::Mul => "mul.lo",
                    BinaryOp::Maximum => "max",
                    _ => "min",
                };
                let d = t.reg(e);
                e.ins(format_args!("{op}.{} {d}, {}, {}", t.setp(), x[0], x[1]));
                d
            }
            TypedOp::Logical(l) => {
                let d = e.r();
                let op = if l == BinaryOp::LogicalAnd { "and" } else { "or" };
                e.ins(format_args!("{op}.b32 {d}, {}, {}", x[0], x[1]));
                d
            }
            TypedOp::Pow => super::double::pow_f32(e, x[0], x[1]),
            TypedOp::F32ViaF64(UnaryOp::Erf) => super::erf::erf_f32(e, x[0]),
            TypedOp::F32ViaF64(u) => super::double::sin_cos_f32(e, x[0], u == UnaryOp::Cos),
            TypedOp::Not => {
                let d = e.r();
                e.ins(format_args!("xor.b32 {d}, {}, 1", x[0]));
                d
            }
            TypedOp::Select(t) => {
                let (p, d) = (e.p(), t.reg(e));
                e.ins(format_args!("setp.ne.u32 {p}, {}, 0", x[0]));
                e.ins(format_args!("selp.{} {d}, {}, {}, {p}", t.selp(), x[1], x[2]));
                d
            }
            TypedOp::Cast(from, to) => cast(e, from, to, x[0]),
            TypedOp::Round(u) => {
                let v = x[0];
                let d = e.f();
                let mode = if u == UnaryOp::Floor { "rmi" } else { "rpi" };
                let (r, nan) = (e.f(), e.p());
                e.ins(format_args!("cvt.{mode}.f32.f32 {r}, {v}"));
                // A NaN stays the operand itself, payload and all.
                e.ins(format_args!("setp.nan.f32 {nan}, {v}, {v}"));
                e.ins(format_args!("selp.f32 {d}, {v}, {r}, {nan}"));
                d
            }
        }
    }

    fn name(self) -> String {
        match self {
            TypedOp::Compare(c, t) | TypedOp::Int(c, t) => format!("{}.{}", c.name(), t.name()),
            TypedOp::Logical(l) => l.name().to_string(),
            TypedOp::Not => "logical_not".into(),
            TypedOp::Pow => "pow.f32".into(),
            TypedOp::FloorDiv => "floordiv.f32".into(),
            TypedOp::FloorMod => "floormod.f32".into(),
            TypedOp::Select(t) => format!("where.{}", t.name()),
            TypedOp::Cast(from, to) => format!("cast.{}.{}", from.name(), to.name()),
            TypedOp::Round(u) | TypedOp::F32ViaF64(u) => format!("{}.f32", u.name()),
            TypedOp::IntUnary(u, t) => format!("{}.{}", u.name(), t.name()),
            TypedOp::F64(b) => format!("{}.f64", b.name()),
            TypedOp::F64Unary(u) => format!("{}.f64", u.name()),
        }
    }
}

/// A bool register (0 or 1) from predicate `p`.
fn bool_of(e: &mut Emitter, p: Reg) -> Reg {
    let d = e.r();
    e.ins(format_args!("selp.u32 {d}, 1, 0, {p}"));
    d
}

/// `v as to` for `v` of type `from`, as Rust's `as` (and `x != 0` for bools).
fn cast(e: &mut Emitter, from: Elem, to: Elem, v: Reg) -> Reg {
    use Elem::*;
    if from == to {
        return v;
    }
    if to == Bool {
        let p = e.p();
        match from {
            // `x != 0.0` is true for a NaN.
            F32 => e.ins(format_args!("setp.neu.f32 {p}, {v}, 0f00000000")),
            F64 => e.ins(format_args!("setp.neu.f64 {p}, {v}, 0d0000000000000000")),
            _ => e.ins(format_args!("setp.ne.{} {p}, {v}, 0", from.setp())),
        }
        return bool_of(e, p);
    }
    let d = to.reg(e);
    let cvt = match (from, to) {
        (F32 | F64, I32 | I64) => {
            // Toward zero, clamped to the integer range; a NaN becomes 0.
            let (r, nan, zero, ty) = (to.reg(e), e.p(), to.constant(e, false), from.setp());
            e.ins(format_args!("cvt.rzi.{}.{ty} {r}, {v}", to.setp()));
            e.ins(format_args!("setp.nan.{ty} {nan}, {v}, {v}"));
            e.ins(format_args!("selp.{} {d}, {zero}, {r}, {nan}", to.selp()));
            return d;
        }
        // Rounded to nearest (a NaN stays a NaN); exact.
        (F64, F32) => "cvt.rn.f32.f64",
        (F32, F64) => "cvt.f64.f32",
        (I32, F64) => "cvt.rn.f64.s32",
        (I64, F64) => "cvt.rn.f64.s64",
        (Bool, F64) => "cvt.rn.f64.u32",
        (I32, F32) => "cvt.rn.f32.s32",
        (I64, F32) => "cvt.rn.f32.s64",
        (Bool, F32) => "cvt.rn.f32.u32",
        (I32, I64) => "cvt.s64.s32",
        (Bool, I64) => "cvt.u64.u32",
        // Truncation (two's complement wraps), as Rust's `as`.
        (I64, I32) => "cvt.u32.u64",
        (Bool, I32) => "mov.b32",
        _ => unreachable!("casts to bool and to the same type returned above"),
    };
    e.ins(format_args!("{cvt} {d}, {v}"));
    d
}

/// One typed op over `rows × cols` elements, its operands read with access patterns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct TypedKernel {
    pub op: TypedOp,
    pub inputs: Vec<Access>,
}

impl TypedKernel {
    /// Checks that `lens` (the input buffers' lengths in *elements*) are what the
    /// access patterns read over `rows × cols`.
    pub fn check_input_lens(&self, lens: &[usize], rows: usize, cols: usize) -> Result<(), String> {
        let k = crate::kernel::Kernel { inputs: self.inputs.clone(), ..Default::default() };
        k.check_input_lens(lens, rows, cols)
    }
}

impl fmt::Display for TypedKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ins: Vec<String> =
            self.inputs.iter().enumerate().map(|(i, a)| format!("in{i} {}", format!("{a:?}").to_lowercase())).collect();
        write!(f, "typed {}({}) -> {}", self.op.name(), ins.join(", "), self.op.result().name())
    }
}

/// A module with one entry, `name`, computing typed kernel `k` (parameters `in0…`,
/// `out`, `n`, `cols`, all `.u64`; any grid, one thread per element in a grid-stride
/// loop).
pub fn render_typed(k: &TypedKernel, name: &str) -> String {
    let mut e = Emitter::default();
    let types = k.op.operands();
    let mut params: Vec<String> = (0..k.inputs.len()).map(|i| format!("in{i}")).collect();
    params.extend(["out", "n", "cols"].map(String::from));
    let ptrs: Vec<Reg> = params[..=k.inputs.len()].iter().map(|p| param(&mut e, name, p, true)).collect();
    let n = param(&mut e, name, "n", false);
    let cols = param(&mut e, name, "cols", false);
    let (i, stride) = grid_stride(&mut e);
    let scalars: Vec<Option<Reg>> = k
        .inputs
        .iter()
        .zip(&types)
        .zip(&ptrs)
        .map(|((a, t), &p)| (*a == Access::Scalar).then(|| t.load(&mut e, p)))
        .collect();
    let needs_rc = k.inputs.iter().any(|a| matches!(a, Access::Row | Access::Col));
    let out = k.op.result();
    element_loop(&mut e, i, (n, stride, cols), needs_rc, |e, at| {
        let x: Vec<Reg> = (0..k.inputs.len())
            .map(|j| match at.index(k.inputs[j]) {
                None => scalars[j].unwrap_or(Reg::R(0)),
                Some(index) => {
                    let addr = address(e, ptrs[j], index, types[j].shift());
                    types[j].load(e, addr)
                }
            })
            .collect();
        let v = k.op.emit(e, &x);
        let addr = address(e, ptrs[k.inputs.len()], at.i, out.shift());
        out.store(e, addr, v);
    });
    header() + &entry(name, &params, "", &e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_ops_follow_the_runtimes_dtype_rules() {
        use DType::*;
        let lt = Op::Binary(BinaryOp::Lt);
        assert_eq!(TypedOp::of(&lt, &[I64, I64], Bool), Some(TypedOp::Compare(BinaryOp::Lt, Elem::I64)));
        assert_eq!(TypedOp::of(&lt, &[I64, I32], Bool), None, "mixed operand types");
        assert_eq!(TypedOp::of(&lt, &[F64, F64], Bool), Some(TypedOp::Compare(BinaryOp::Lt, Elem::F64)));
        assert_eq!(TypedOp::of(&Op::Unary(UnaryOp::Tanh), &[F64], F64), Some(TypedOp::F64Unary(UnaryOp::Tanh)));
        assert_eq!(TypedOp::of(&Op::Binary(BinaryOp::LogicalAnd), &[F64, F64], F64), None);
        assert_eq!(TypedOp::of(&Op::Select, &[Bool, F32, F32], F32), Some(TypedOp::Select(Elem::F32)));
        assert_eq!(TypedOp::of(&Op::Select, &[F32, F32, F32], F32), None, "a mask is a bool");
        assert_eq!(TypedOp::of(&Op::Cast(I64), &[F32], I64), Some(TypedOp::Cast(Elem::F32, Elem::I64)));
        assert_eq!(
            TypedOp::of(&Op::Binary(BinaryOp::Add), &[I32, I32], I32),
            Some(TypedOp::Int(BinaryOp::Add, Elem::I32))
        );
        assert_eq!(TypedOp::of(&Op::Binary(BinaryOp::Add), &[F32, F32], F32), None, "a fusible op");
        assert_eq!(
            TypedOp::of(&Op::Binary(BinaryOp::Div), &[I64, I64], I64),
            Some(TypedOp::Int(BinaryOp::Div, Elem::I64)),
            "integer division is floor division"
        );
        assert_eq!(
            TypedOp::of(&Op::Binary(BinaryOp::Pow), &[I32, I32], I32),
            Some(TypedOp::Int(BinaryOp::Pow, Elem::I32))
        );
        assert_eq!(
            TypedOp::of(&Op::Unary(UnaryOp::Abs), &[I64], I64),
            Some(TypedOp::IntUnary(UnaryOp::Abs, Elem::I64))
        );
        assert_eq!(TypedOp::of(&Op::Unary(UnaryOp::Abs), &[F32], F32), None, "a fusible op");
        assert_eq!(TypedOp::of(&Op::Unary(UnaryOp::Floor), &[F32], F32), Some(TypedOp::Round(UnaryOp::Floor)));
        assert_eq!(TypedOp::of(&Op::Unary(UnaryOp::Sign), &[F32], F32), None, "a fusible op");
        assert_eq!(TypedOp::of(&Op::Unary(UnaryOp::Exp), &[F32], F32), None);
        assert_eq!(TypedOp::of(&lt, &[F32, F32], F32), None, "the result type must be the op's");
        for t in TypedOp::all() {
            let dtypes: Vec<DType> = t.operands().iter().map(|e| e.dtype()).collect();
            assert_eq!(TypedOp::of(&t.op(), &dtypes, t.result().dtype()), Some(t), "{t:?} round trip");
        }
    }

    #[test]
    fn typed_kernels_print_their_op_and_reads() {
        let k =
            TypedKernel { op: TypedOp::Compare(BinaryOp::Lt, Elem::I64), inputs: vec![Access::Full, Access::Scalar] };
        assert_eq!(k.to_string(), "typed less.i64(in0 full, in1 scalar) -> bool");
        let w = TypedKernel { op: TypedOp::Select(Elem::F32), inputs: vec![Access::Col, Access::Full, Access::Row] };
        assert_eq!(w.to_string(), "typed where.f32(in0 col, in1 full, in2 row) -> f32");
        let c = TypedKernel { op: TypedOp::Cast(Elem::Bool, Elem::F32), inputs: vec![Access::Full] };
        assert_eq!(c.to_string(), "typed cast.bool.f32(in0 full) -> f32");
    }
}

//! f64 arithmetic of the typed kernels: every binary and unary float op of the runtime
//! on f64 tensors, op for op as `tensorjit_runtime::math`'s f64 functions and the eager
//! kernels compute them (`.rn` everywhere, so nothing is contracted into an FMA; the
//! runtime's branches as selects) — the CPU's bits.

use tensorjit_runtime::math::f64_constants::{TANH_P, TANH_Q};
use tensorjit_runtime::ops::{BinaryOp, UnaryOp};

use super::double::F64;
use super::{Emitter, Reg};

/// Whether an f64 typed kernel computes binary op `b` as arithmetic (comparisons are
/// `TypedOp::Compare`; logical ops take bools).
pub fn is_arithmetic(b: BinaryOp) -> bool {
    !b.is_comparison() && !b.is_logical()
}

/// The arithmetic binary ops of f64 typed kernels.
pub fn binary_ops() -> impl Iterator<Item = BinaryOp> {
    BinaryOp::ALL.into_iter().filter(|b| is_arithmetic(*b))
}

/// The unary ops an f64 typed kernel computes (all but `logical_not`).
pub fn unary_ops() -> impl Iterator<Item = UnaryOp> {
    UnaryOp::ALL.into_iter().filter(|u| *u != UnaryOp::LogicalNot)
}

/// `a <b> b` of two f64 registers.
pub(super) fn binary(e: &mut Emitter, b: BinaryOp, x: Reg, y: Reg) -> Reg {
    let mut d = F64(e);
    match b {
        BinaryOp::Add => d.add(x, y),
        BinaryOp::Sub => d.sub(x, y),
        BinaryOp::Mul => d.mul(x, y),
        BinaryOp::Div => d.div(x, y),
        BinaryOp::FloorDiv => {
            let q = d.div(x, y);
            round(&mut d, q, "rmi")
        }
        BinaryOp::Pow => d.pow(x, y),
        BinaryOp::Mod => super::floormod::floormod_f64(d.0, x, y),
        // NaN propagates; ties keep the left operand: x if (x ≥ y or x is NaN) else y.
        BinaryOp::Maximum | BinaryOp::Minimum => {
            let cc = if b == BinaryOp::Maximum { "ge" } else { "le" };
            let (better, nan) = (d.cmp(cc, x, y), d.cmp("nan", x, x));
            let keep = d.pred("or", better, nan);
            d.sel(keep, x, y)
        }
        _ => unreachable!("TypedOp::of offers f64 kernels the arithmetic ops only"),
    }
}

/// `floor` (`rmi`) or `ceil` (`rpi`) of `x`, a NaN kept as it is (payload and all).
fn round(d: &mut F64<'_>, x: Reg, mode: &str) -> Reg {
    let r = d.0.rd();
    d.0.ins(format_args!("cvt.{mode}.f64.f64 {r}, {x}"));
    let nan = d.cmp("nan", x, x);
    d.sel(nan, x, r)
}

/// `u(x)` of an f64 register.
pub(super) fn unary(e: &mut Emitter, u: UnaryOp, x: Reg) -> Reg {
    let mut d = F64(e);
    match u {
        UnaryOp::Neg => d.neg(x),
        UnaryOp::Abs => d.fabs(x),
        // sel(x > 0, 1, sel(x < 0, −1, x)): ±0 and NaN are themselves.
        UnaryOp::Sign => {
            let (pos, neg) = (d.cmpc("gt", x, 0.0), d.cmpc("lt", x, 0.0));
            let low = d.selc(neg, -1.0, x);
            d.selc(pos, 1.0, low)
        }
        UnaryOp::Exp => d.exp(x),
        UnaryOp::Log => d.log(x),
        UnaryOp::Sqrt => sqrt(&mut d, x),
        UnaryOp::Rsqrt => {
            let (one, s) = (d.c(1.0), sqrt(&mut d, x));
            d.div(one, s)
        }
        UnaryOp::Square => d.mul(x, x),
        UnaryOp::Tanh => tanh(&mut d, x),
        UnaryOp::Sigmoid => sigmoid(&mut d, x),
        // sel(x < 0, 0, x).
        UnaryOp::Relu => {
            let neg = d.cmpc("lt", x, 0.0);
            d.selc(neg, 0.0, x)
        }
        UnaryOp::Softplus => softplus(&mut d, x),
        UnaryOp::Sin => d.sin_cos(x, false),
        UnaryOp::Cos => d.sin_cos(x, true),
        UnaryOp::Erf => super::erf::erf_f64(&mut d, x),
        UnaryOp::Floor => round(&mut d, x, "rmi"),
        UnaryOp::Ceil => round(&mut d, x, "rpi"),
        UnaryOp::LogicalNot => unreachable!("TypedOp::of offers f64 kernels no logical_not"),
    }
}

/// The correctly rounded square root (IEEE: any implementation gives these bits).
fn sqrt(d: &mut F64<'_>, x: Reg) -> Reg {
    let r = d.0.rd();
    d.0.ins(format_args!("sqrt.rn.f64 {r}, {x}"));
    r
}

/// The runtime's `tanh_f64`: `x + (x·z)·(p/q)` below 0.625 in magnitude (Cephes'
/// rational function of z = x²), else `copysign(1 − 2/(e^{2|x|} + 1), x)`.
fn tanh(d: &mut F64<'_>, x: Reg) -> Reg {
    let ax = d.fabs(x);
    let z = d.mul(x, x);
    let p = d.mulc(z, TANH_P[0]);
    let p = d.addc(p, -TANH_P[1]);
    let p = d.mul(p, z);
    let p = d.addc(p, -TANH_P[2]);
    let q = d.addc(z, TANH_Q[0]);
    let q = d.mul(q, z);
    let q = d.addc(q, TANH_Q[1]);
    let q = d.mul(q, z);
    let q = d.addc(q, TANH_Q[2]);
    let xz = d.mul(x, z);
    let pq = d.div(p, q);
    let t = d.mul(xz, pq);
    let small = d.add(x, t);
    let two_ax = d.add(ax, ax);
    let e = d.exp(two_ax);
    let e1 = d.addc(e, 1.0);
    let two = d.c(2.0);
    let f = d.div(two, e1);
    let one = d.c(1.0);
    let m = d.sub(one, f);
    // copysign(m, x).
    let mag = d.fabs(m);
    let sign = d.int("and.b64", x, "0x8000000000000000");
    let big = d.int("or.b64", mag, sign);
    let below = d.cmpc("lt", ax, 0.625);
    d.sel(below, small, big)
}

/// The runtime's `sigmoid_f64`: e = e^{−|x|}, d = 1 + e, c = (1 − d) + e (d's rounding
/// error), q = (x < 0 ? e : 1) / d, then `q − (q·c)/d`.
fn sigmoid(d: &mut F64<'_>, x: Reg) -> Reg {
    let ax = d.fabs(x);
    let nax = d.neg(ax);
    let e = d.exp(nax);
    let one = d.c(1.0);
    let den = d.add(one, e);
    let one2 = d.c(1.0);
    let lost = d.sub(one2, den);
    let c = d.add(lost, e);
    let neg = d.cmpc("lt", x, 0.0);
    let one3 = d.c(1.0);
    let num = d.sel(neg, e, one3);
    let q = d.div(num, den);
    let qc = d.mul(q, c);
    let corr = d.div(qc, den);
    d.sub(q, corr)
}

/// The runtime's `softplus_f64`: u = e^{−|x|}, w = 1 + u, l = log(w) − ((w − 1) − u)/w
/// (u itself when w rounds to 1), then `(x > 0 ? x : 0) + l`.
fn softplus(d: &mut F64<'_>, x: Reg) -> Reg {
    let ax = d.fabs(x);
    let nax = d.neg(ax);
    let u = d.exp(nax);
    let one = d.c(1.0);
    let w = d.add(one, u);
    let lw = d.log(w);
    let w1 = d.addc(w, -1.0);
    let err = d.sub(w1, u);
    let frac = d.div(err, w);
    let l = d.sub(lw, frac);
    let exact = d.cmpc("eq", w, 1.0);
    let l = d.sel(exact, u, l);
    let pos = d.cmpc("gt", x, 0.0);
    let zero = d.c(0.0);
    let base = d.sel(pos, x, zero);
    d.add(base, l)
}

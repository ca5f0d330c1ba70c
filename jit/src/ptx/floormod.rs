//! Float `floormod` (the runtime's `FloatMath::floormod`) as PTX (integers: `ptx::int`).
//!
//! PTX has no `fmod`; C's `fmod` is exact, so any exact algorithm gives its bits. This one
//! is the integer long division of the significands: `mx mod my`, then the exponent
//! difference taken 11 bits at a time (`(mx << s) mod my` stays below 2^64), then the
//! remainder scaled back by y's exponent — a loop of at most ⌈2098 / 11⌉ steps for f64
//! (26 for f32 operands, which are widened exactly). Then the runtime's step: `+ y` where
//! the remainder's and y's signs differ, and every NaN the quiet NaN.

use super::double::F64;
use super::{Emitter, Reg};

const FRACTION: &str = "0x000FFFFFFFFFFFFF";
const MAGNITUDE: &str = "0x7FFFFFFFFFFFFFFF";

/// C's `fmod(x, y)` of two f64 registers, exactly; NaN where it is (y = 0, x not finite,
/// a NaN operand) as the quiet NaN.
fn fmod(e: &mut Emitter, x: Reg, y: Reg) -> Reg {
    let mut d = F64(e);
    let ax = d.int("and.b64", x, MAGNITUDE);
    let ay = d.int("and.b64", y, MAGNITUDE);
    let sign = d.int("and.b64", x, "0x8000000000000000");
    // NaN: y = ±0, x = ±∞ or NaN, y NaN. |x| < |y| (bits compare as magnitudes): x.
    let (y0, x_bad, y_nan, nan, small, skip) = (d.0.p(), d.0.p(), d.0.p(), d.0.p(), d.0.p(), d.0.p());
    d.0.ins(format_args!("setp.eq.u64 {y0}, {ay}, 0"));
    d.0.ins(format_args!("setp.ge.u64 {x_bad}, {ax}, 0x7FF0000000000000"));
    d.0.ins(format_args!("setp.gt.u64 {y_nan}, {ay}, 0x7FF0000000000000"));
    d.0.ins(format_args!("or.pred {nan}, {y0}, {x_bad}"));
    d.0.ins(format_args!("or.pred {nan}, {nan}, {y_nan}"));
    d.0.ins(format_args!("setp.lt.u64 {small}, {ax}, {ay}"));
    d.0.ins(format_args!("or.pred {skip}, {nan}, {small}"));
    // Significands with the implicit bit (subnormals: exponent 1, none).
    let (mx, ex) = significand(&mut d, ax);
    let (my, ey) = significand(&mut d, ay);
    let one = d.0.rd();
    d.0.ins(format_args!("mov.b64 {one}, 1"));
    let my = d.sel(y0, one, my);
    let rem = d.int("rem.u64", mx, my);
    let diff = d.int("sub.s64", ex, ey);
    let zero = d.0.rd();
    d.0.ins(format_args!("mov.b64 {zero}, 0"));
    let left = d.sel(skip, zero, diff);
    let (head, done) = (d.0.new_label("$L_fmod_head"), d.0.new_label("$L_fmod_done"));
    let (finished, count) = (d.0.p(), d.0.r());
    d.0.label(&head);
    d.0.ins(format_args!("setp.le.s64 {finished}, {left}, 0"));
    d.0.ins(format_args!("@{finished} bra {done}"));
    let step = d.int("min.s64", left, 11);
    d.0.ins(format_args!("cvt.u32.u64 {count}, {step}"));
    d.0.ins(format_args!("shl.b64 {rem}, {rem}, {count}"));
    d.0.ins(format_args!("rem.u64 {rem}, {rem}, {my}"));
    d.0.ins(format_args!("sub.s64 {left}, {left}, {step}"));
    d.0.ins(format_args!("bra {head}"));
    d.0.label(&done);
    // rem·2^(ey − 1075): exact (the remainder is a multiple of y's unit and below |y|).
    let magnitude = d.0.rd();
    d.0.ins(format_args!("cvt.rn.f64.u64 {magnitude}, {rem}"));
    let scale = power_of_two(&mut d, ey);
    let r = d.mul(magnitude, scale);
    let r = d.int("or.b64", r, sign);
    let r = d.sel(small, x, r);
    let nan_value = d.c(f64::NAN);
    d.sel(nan, nan_value, r)
}

/// The significand (implicit bit included) and the exponent (at least 1) of the
/// magnitude bits `a`.
fn significand(d: &mut F64<'_>, a: Reg) -> (Reg, Reg) {
    let fraction = d.int("and.b64", a, FRACTION);
    let exponent = d.int("shr.u64", a, 52);
    let subnormal = d.0.p();
    d.0.ins(format_args!("setp.eq.u64 {subnormal}, {exponent}, 0"));
    let normal = d.int("or.b64", fraction, "0x0010000000000000");
    let m = d.sel(subnormal, fraction, normal);
    let one = d.0.rd();
    d.0.ins(format_args!("mov.b64 {one}, 1"));
    let e = d.sel(subnormal, one, exponent);
    (m, e)
}

/// 2^(ey − 1075) for ey in [1, 2046]: a normal power, or below 2^-1022 a subnormal one.
fn power_of_two(d: &mut F64<'_>, ey: Reg) -> Reg {
    // Normal: exponent field ey − 52; subnormal (ey ≤ 52): the bit ey − 1.
    let field = d.int("sub.s64", ey, 52);
    let normal = d.int("shl.b64", field, 52);
    let (bit, count, low) = (d.int("sub.s64", ey, 1), d.0.r(), d.0.p());
    d.0.ins(format_args!("cvt.u32.u64 {count}, {bit}"));
    let one = d.0.rd();
    d.0.ins(format_args!("mov.b64 {one}, 1"));
    let subnormal = d.int("shl.b64", one, count);
    d.0.ins(format_args!("setp.le.s64 {low}, {ey}, 52"));
    d.sel(low, subnormal, normal)
}

/// The runtime's f64 `floormod(x, y)`.
pub(super) fn floormod_f64(e: &mut Emitter, x: Reg, y: Reg) -> Reg {
    let r = fmod(e, x, y);
    let mut d = F64(e);
    let nonzero = d.cmpc("ne", r, 0.0);
    let (r_neg, y_neg) = (d.cmpc("lt", r, 0.0), d.cmpc("lt", y, 0.0));
    let differ = d.pred("xor", r_neg, y_neg);
    let adjust = d.pred("and", nonzero, differ);
    let sum = d.add(r, y);
    let out = d.sel(adjust, sum, r);
    let nan = d.cmp("nan", out, out);
    let quiet = d.c(f64::NAN);
    d.sel(nan, quiet, out)
}

/// The runtime's f32 `floormod(x, y)`: the exact remainder of the widened operands
/// (exactly an f32), then the step in f32.
pub(super) fn floormod_f32(e: &mut Emitter, x: Reg, y: Reg) -> Reg {
    let (wx, wy) = (e.rd(), e.rd());
    e.ins(format_args!("cvt.f64.f32 {wx}, {x}"));
    e.ins(format_args!("cvt.f64.f32 {wy}, {y}"));
    let wide = fmod(e, wx, wy);
    let (r, nonzero, r_neg, y_neg, differ, adjust, sum, out, nan, quiet) =
        (e.f(), e.p(), e.p(), e.p(), e.p(), e.p(), e.f(), e.f(), e.p(), e.f());
    e.ins(format_args!("cvt.rn.f32.f64 {r}, {wide}"));
    e.ins(format_args!("setp.ne.f32 {nonzero}, {r}, 0f00000000"));
    e.ins(format_args!("setp.lt.f32 {r_neg}, {r}, 0f00000000"));
    e.ins(format_args!("setp.lt.f32 {y_neg}, {y}, 0f00000000"));
    e.ins(format_args!("xor.pred {differ}, {r_neg}, {y_neg}"));
    e.ins(format_args!("and.pred {adjust}, {nonzero}, {differ}"));
    e.ins(format_args!("add.rn.f32 {sum}, {r}, {y}"));
    e.ins(format_args!("selp.f32 {out}, {sum}, {r}, {adjust}"));
    e.ins(format_args!("setp.nan.f32 {nan}, {out}, {out}"));
    e.ins(format_args!("selp.f32 {quiet}, 0f7FC00000, {out}, {nan}"));
    quiet
}

//! The runtime's f64 `exp`, `log` and `pow` (`tensorjit_runtime::math`) as PTX, op for op,
//! for the f32 `pow` of GPU tensors (the runtime's f32 `pow` is the f64 one, rounded),
//! and its f32 `sin`/`cos` (an f64 argument reduction, then f32 polynomials).
//! f64 values live in 64-bit registers (`%rd`, which f64 instructions accept); every
//! operation names its rounding (`.rn`, so nothing is contracted into an FMA; an
//! `fma.rn` stands exactly where the runtime has a `mul_add`: the series' Horner steps)
//! and every branch of the runtime's code is a select, so the results are the CPU's bits.

use tensorjit_runtime::math::f32_constants::{COS_POLY, SIN_POLY};
use tensorjit_runtime::math::f64_constants::{
    ATANH_COEF, COS_COEF, INV_FACT, LARGE_TRIG_ARG_F32, LARGE_TRIG_ARG_F64, LN2_HI, LN2_LO, MAGIC, PIO4_PARTS,
    SIN_COEF, SMALL_TRIG_RESULT_F64,
};

use super::{f32_literal, trig_reduce, Emitter, Reg};
use crate::lower::{Cc, Lower};

/// f64 operations on an [`Emitter`].
pub(super) struct F64<'a>(pub(super) &'a mut Emitter);

impl F64<'_> {
    pub(super) fn c(&mut self, v: f64) -> Reg {
        let d = self.0.rd();
        self.0.ins(format_args!("mov.b64 {d}, 0d{:016X}", v.to_bits()));
        d
    }
    pub(super) fn op(&mut self, op: &str, a: Reg, b: Reg) -> Reg {
        let d = self.0.rd();
        self.0.ins(format_args!("{op} {d}, {a}, {b}"));
        d
    }
    pub(super) fn add(&mut self, a: Reg, b: Reg) -> Reg {
        self.op("add.rn.f64", a, b)
    }
    pub(super) fn sub(&mut self, a: Reg, b: Reg) -> Reg {
        self.op("sub.rn.f64", a, b)
    }
    pub(super) fn mul(&mut self, a: Reg, b: Reg) -> Reg {
        self.op("mul.rn.f64", a, b)
    }
    pub(super) fn div(&mut self, a: Reg, b: Reg) -> Reg {
        self.op("div.rn.f64", a, b)
    }
    /// `a·b + c` rounded once (the runtime's `mul_add`).
    pub(super) fn fma_c(&mut self, a: Reg, b: Reg, c: f64) -> Reg {
        let (k, d) = (self.c(c), self.0.rd());
        self.0.ins(format_args!("fma.rn.f64 {d}, {a}, {b}, {k}"));
        d
    }
    pub(super) fn mulc(&mut self, a: Reg, v: f64) -> Reg {
        let c = self.c(v);
        self.mul(a, c)
    }
    pub(super) fn addc(&mut self, a: Reg, v: f64) -> Reg {
        let c = self.c(v);
        self.add(a, c)
    }
    /// A predicate: `a <cc> b` (IEEE: ordered comparisons are false with a NaN).
    pub(super) fn cmp(&mut self, cc: &str, a: Reg, b: Reg) -> Reg {
        let p = self.0.p();
        self.0.ins(format_args!("setp.{cc}.f64 {p}, {a}, {b}"));
        p
    }
    pub(super) fn cmpc(&mut self, cc: &str, a: Reg, v: f64) -> Reg {
        let c = self.c(v);
        self.cmp(cc, a, c)
    }
    /// `p ? a : b` (64-bit).
    pub(super) fn sel(&mut self, p: Reg, a: Reg, b: Reg) -> Reg {
        let d = self.0.rd();
        self.0.ins(format_args!("selp.b64 {d}, {a}, {b}, {p}"));
        d
    }
    pub(super) fn selc(&mut self, p: Reg, v: f64, b: Reg) -> Reg {
        let a = self.c(v);
        self.sel(p, a, b)
    }
    pub(super) fn pred(&mut self, op: &str, a: Reg, b: Reg) -> Reg {
        let p = self.0.p();
        self.0.ins(format_args!("{op}.pred {p}, {a}, {b}"));
        p
    }
    /// An integer operation on 64-bit bits.
    pub(super) fn int(&mut self, op: &str, a: Reg, b: impl std::fmt::Display) -> Reg {
        let d = self.0.rd();
        self.0.ins(format_args!("{op} {d}, {a}, {b}"));
        d
    }
    pub(super) fn fabs(&mut self, a: Reg) -> Reg {
        self.int("and.b64", a, "0x7FFFFFFFFFFFFFFF")
    }

    /// The runtime's `reduce_quarter_pi` of `ax` = |x|: q = ⌊ax·(2/π)·2⌋ (Rust's `as
    /// i64`: saturating, NaN → 0) rounded up to even, r = ((ax − q·c1) − q·c2) − q·c3
    /// clamped to ±π/4; returns r and the octant j = q & 7 (a 64-bit integer).
    pub(super) fn reduce_quarter_pi(&mut self, ax: Reg) -> (Reg, Reg) {
        let t = self.mulc(ax, std::f64::consts::FRAC_2_PI);
        let t = self.mulc(t, 2.0);
        let q = self.0.rd();
        self.0.ins(format_args!("cvt.rzi.s64.f64 {q}, {t}"));
        // 2^63: from here `as i64` saturates.
        let huge = self.cmpc("ge", t, 2f64.powi(63));
        let max = d_const_bits(self, i64::MAX as u64);
        let q = self.sel(huge, max, q);
        let nan = self.cmp("nan", t, t);
        let zero_bits = d_const_bits(self, 0);
        let q = self.sel(nan, zero_bits, q);
        let odd = self.int("and.b64", q, 1);
        let q = self.int("add.s64", q, odd);
        let qf = self.0.rd();
        self.0.ins(format_args!("cvt.rn.f64.s64 {qf}, {q}"));
        let mut r = ax;
        for c in PIO4_PARTS {
            let m = self.mulc(qf, c);
            r = self.sub(r, m);
        }
        let pio4 = std::f64::consts::FRAC_PI_4;
        let below = self.cmpc("lt", r, -pio4);
        let r = self.selc(below, -pio4, r);
        let above = self.cmpc("gt", r, pio4);
        let r = self.selc(above, pio4, r);
        let j = self.int("and.b64", q, 7);
        (r, j)
    }

    /// The runtime's f64 `sin_poly(r, z)`: `((p·z)·r) + r`, Horner's p over SIN_COEF.
    pub(super) fn sin_poly(&mut self, r: Reg, z: Reg) -> Reg {
        let mut p = self.c(SIN_COEF[7]);
        for &c in SIN_COEF[..7].iter().rev() {
            let m = self.mul(p, z);
            p = self.addc(m, c);
        }
        let pz = self.mul(p, z);
        let pzr = self.mul(pz, r);
        self.add(pzr, r)
    }

    /// The runtime's f64 `cos_poly(z)`: `((p·z)·z − 0.5·z) + 1`, Horner's p over
    /// COS_COEF[1..].
    pub(super) fn cos_poly(&mut self, z: Reg) -> Reg {
        let mut p = self.c(COS_COEF[8]);
        for &c in COS_COEF[1..8].iter().rev() {
            let m = self.mul(p, z);
            p = self.addc(m, c);
        }
        let pz = self.mul(p, z);
        let pzz = self.mul(pz, z);
        let hz = self.mulc(z, 0.5);
        let c = self.sub(pzz, hz);
        self.addc(c, 1.0)
    }

    /// `-a` (the sign bit flipped: exact, NaNs included).
    pub(super) fn neg(&mut self, a: Reg) -> Reg {
        self.int("xor.b64", a, "0x8000000000000000")
    }

    /// The runtime's `sin_f64` (`cos`: its `cos_f64`): the short reduction's result,
    /// redone with the exact reduction where `trig_needs_exact_f64` says so (a branch
    /// around it: the rare arguments only).
    pub(super) fn sin_cos(&mut self, x: Reg, cos: bool) -> Reg {
        let ax = self.fabs(x);
        let (r, j) = self.reduce_quarter_pi(ax);
        let y = self.sin_cos_of(x, ax, (r, j), cos);
        // trig_needs_exact_f64: finite |x| ≥ LARGE_TRIG_ARG_F64, or |y| < |x|·2^-40.
        let large = self.cmpc("ge", ax, LARGE_TRIG_ARG_F64);
        let finite = self.cmpc("lt", ax, f64::INFINITY);
        let large = self.pred("and", large, finite);
        let ay = self.fabs(y);
        let limit = self.mulc(ax, SMALL_TRIG_RESULT_F64);
        let tiny = self.cmp("lt", ay, limit);
        let exact = self.pred("or", large, tiny);
        let done = self.0.new_label("$L_trig_done");
        self.0.ins(format_args!("@!{exact} bra {done}"));
        let reduced = trig_reduce::reduce_large(self.0, ax);
        let exact_y = self.sin_cos_of(x, ax, reduced, cos);
        self.0.ins(format_args!("mov.b64 {y}, {exact_y}"));
        self.0.label(&done);
        y
    }

    /// The runtime's `cos_f64_near`: `cos_f64` without the exact reduction (for
    /// Box–Muller's angles in [0, 2π), where the two agree).
    pub(super) fn cos_near(&mut self, x: Reg) -> Reg {
        let ax = self.fabs(x);
        let (r, j) = self.reduce_quarter_pi(ax);
        self.sin_cos_of(x, ax, (r, j), true)
    }

    /// The runtime's `sin_of`/`cos_of`: the polynomials of reduced `(r, j)`, the sign,
    /// NaN where x is not finite (`ax` = |x|).
    fn sin_cos_of(&mut self, x: Reg, ax: Reg, (r, j): (Reg, Reg), cos: bool) -> Reg {
        let z = self.mul(r, r);
        let sin = self.sin_poly(r, z);
        let cosv = self.cos_poly(z);
        // Octant j ∈ {0, 2, 4, 6}: bit 2 swaps the polynomials.
        let bit = self.int("and.b64", j, 2);
        let swap = self.0.p();
        self.0.ins(format_args!("setp.ne.s64 {swap}, {bit}, 0"));
        let y = if cos { self.sel(swap, sin, cosv) } else { self.sel(swap, cosv, sin) };
        let negate = if cos {
            // j ∈ {2, 4}.
            let (two, four) = (self.0.p(), self.0.p());
            self.0.ins(format_args!("setp.eq.s64 {two}, {j}, 2"));
            self.0.ins(format_args!("setp.eq.s64 {four}, {j}, 4"));
            self.pred("or", two, four)
        } else {
            let bit4 = self.int("and.b64", j, 4);
            let p = self.0.p();
            self.0.ins(format_args!("setp.ne.s64 {p}, {bit4}, 0"));
            p
        };
        let ny = self.neg(y);
        let mut y = self.sel(negate, ny, y);
        if !cos {
            let below = self.cmpc("lt", x, 0.0);
            let ny = self.neg(y);
            y = self.sel(below, ny, y);
        }
        // Not finite (|x| = ∞ or NaN): NaN.
        let finite = self.cmpc("lt", ax, f64::INFINITY);
        let nan = self.c(f64::NAN);
        self.sel(finite, y, nan)
    }

    /// The runtime's `exp_f64`.
    pub(super) fn exp(&mut self, x: Reg) -> Reg {
        let hi = self.cmpc("gt", x, 709.9);
        let lo = self.cmpc("lt", x, -746.0);
        let xc = self.selc(lo, -746.0, x);
        let xc = self.selc(hi, 709.9, xc);
        let t = self.mulc(xc, std::f64::consts::LOG2_E);
        let t = self.addc(t, MAGIC);
        let k = self.int("sub.s64", t, format_args!("0x{:016X}", MAGIC.to_bits()));
        let magic = self.c(MAGIC);
        let kf = self.sub(t, magic);
        let a = self.mulc(kf, LN2_HI);
        let r = self.sub(xc, a);
        let b = self.mulc(kf, LN2_LO);
        let r = self.sub(r, b);
        let mut p = self.c(INV_FACT[11]);
        for &c in INV_FACT[..11].iter().rev() {
            p = self.fma_c(p, r, c);
        }
        let rr = self.mul(r, r);
        let y = self.mul(p, rr);
        let y = self.add(y, r);
        let y = self.addc(y, 1.0);
        let k1 = self.int("shr.s64", k, 1);
        let k2 = self.int("sub.s64", k, k1);
        let [s1, s2] = [k1, k2].map(|ki| {
            let b = self.int("add.s64", ki, 1023);
            self.int("shl.b64", b, 52)
        });
        let y = self.mul(y, s1);
        self.mul(y, s2)
    }

    /// The runtime's `log_f64`.
    pub(super) fn log(&mut self, x: Reg) -> Reg {
        let tiny = self.cmpc("lt", x, f64::MIN_POSITIVE);
        let scaled = self.mulc(x, 18_014_398_509_481_984.0);
        let xs = self.sel(tiny, scaled, x);
        let biased = self.int("shr.u64", xs, 52);
        let biased = self.int("and.b64", biased, "0x7FF");
        let e = self.int("sub.s64", biased, 1023);
        let shift = self.0.rd();
        self.0.ins(format_args!("selp.b64 {shift}, 54, 0, {tiny}"));
        let e = self.int("sub.s64", e, shift);
        let m = self.int("and.b64", xs, "0x000FFFFFFFFFFFFF");
        let m = self.int("or.b64", m, "0x3FF0000000000000");
        let big = self.cmpc("gt", m, std::f64::consts::SQRT_2);
        let half = self.mulc(m, 0.5);
        let m = self.sel(big, half, m);
        let one = self.0.rd();
        self.0.ins(format_args!("selp.b64 {one}, 1, 0, {big}"));
        let e = self.int("add.s64", e, one);
        let one_f = self.c(1.0);
        let f = self.sub(m, one_f);
        let two = self.c(2.0);
        let d = self.add(two, f);
        let s = self.div(f, d);
        let z = self.mul(s, s);
        let mut r = self.c(ATANH_COEF[10]);
        for &c in ATANH_COEF[..10].iter().rev() {
            r = self.fma_c(r, z, c);
        }
        let r = self.mul(r, z);
        let hf = self.mulc(f, 0.5);
        let hfsq = self.mul(hf, f);
        let ef = self.0.rd();
        self.0.ins(format_args!("cvt.rn.f64.s64 {ef}, {e}"));
        // ef·LN2_HI + (f − (hfsq − (s·(hfsq + r) + ef·LN2_LO)))
        let inner = self.add(hfsq, r);
        let sm = self.mul(s, inner);
        let elo = self.mulc(ef, LN2_LO);
        let t = self.add(sm, elo);
        let t = self.sub(hfsq, t);
        let t = self.sub(f, t);
        let ehi = self.mulc(ef, LN2_HI);
        let y = self.add(ehi, t);
        let inf = self.cmpc("eq", x, f64::INFINITY);
        let y = self.selc(inf, f64::INFINITY, y);
        let zero = self.cmpc("eq", x, 0.0);
        let y = self.selc(zero, f64::NEG_INFINITY, y);
        // x < 0 or NaN: not (x ≥ 0).
        let ok = self.cmpc("ge", x, 0.0);
        let nan = self.c(f64::NAN);
        self.sel(ok, y, nan)
    }

    /// The runtime's `pow_f64`, its special cases as selects in reverse priority.
    pub(super) fn pow(&mut self, x: Reg, y: Reg) -> Reg {
        let ax = self.fabs(x);
        let ay = self.fabs(y);
        let l = self.log(ax);
        let yl = self.mul(y, l);
        let general = self.exp(yl);
        let y_pos = self.cmpc("gt", y, 0.0);
        let zero = self.c(0.0);
        let inf = self.c(f64::INFINITY);
        let at_zero = self.sel(y_pos, zero, inf);
        let at_inf = self.sel(y_pos, inf, zero);
        let x_inf = self.cmpc("eq", ax, f64::INFINITY);
        let mag = self.sel(x_inf, at_inf, general);
        let x_zero = self.cmpc("eq", x, 0.0);
        let mag = self.sel(x_zero, at_zero, mag);
        // is_odd_int(y): floor(y) == y, |y| < 2^53, (y as i64) odd.
        let fl = self.0.rd();
        self.0.ins(format_args!("cvt.rmi.f64.f64 {fl}, {y}"));
        let y_int = self.cmp("eq", fl, y);
        let small = self.cmpc("lt", ay, 9.007_199_254_740_992e15);
        let yi = self.0.rd();
        self.0.ins(format_args!("cvt.rzi.s64.f64 {yi}, {y}"));
        let low_bit = self.int("and.b64", yi, 1);
        let odd = self.0.p();
        self.0.ins(format_args!("setp.eq.s64 {odd}, {low_bit}, 1"));
        let odd = self.pred("and", odd, y_int);
        let odd = self.pred("and", odd, small);
        let neg_sign = self.0.p();
        self.0.ins(format_args!("setp.lt.s64 {neg_sign}, {x}, 0"));
        let flip = self.pred("and", neg_sign, odd);
        let neg = self.int("xor.b64", mag, "0x8000000000000000");
        let r = self.sel(flip, neg, mag);
        // Finite x < 0 with a finite non-integer y: NaN.
        let x_neg = self.cmpc("lt", x, 0.0);
        let x_fin = self.cmpc("lt", ax, f64::INFINITY);
        let x_neg = self.pred("and", x_neg, x_fin);
        let y_frac = self.cmp("neu", fl, y);
        let y_fin = self.cmpc("lt", ay, f64::INFINITY);
        let bad = self.pred("and", x_neg, y_frac);
        let bad = self.pred("and", bad, y_fin);
        let nan = self.c(f64::NAN);
        let r = self.sel(bad, nan, r);
        // (−1)^±∞ = 1.
        let x_m1 = self.cmpc("eq", x, -1.0);
        let y_inf = self.cmpc("eq", ay, f64::INFINITY);
        let m1_inf = self.pred("and", x_m1, y_inf);
        let r = self.selc(m1_inf, 1.0, r);
        let x_nan = self.cmp("nan", x, x);
        let y_nan = self.cmp("nan", y, y);
        let any_nan = self.pred("or", x_nan, y_nan);
        let r = self.sel(any_nan, nan, r);
        let y0 = self.cmpc("eq", y, 0.0);
        let x1 = self.cmpc("eq", x, 1.0);
        let one = self.pred("or", y0, x1);
        self.selc(one, 1.0, r)
    }
}

/// `pow(a, b)` of two f32 registers as the runtime computes it: in f64, rounded to f32
/// (a NaN result is the runtime's quiet NaN, `0x7FC00000`).
pub(super) fn pow_f32(e: &mut Emitter, a: Reg, b: Reg) -> Reg {
    let (x, y) = (e.rd(), e.rd());
    e.ins(format_args!("cvt.f64.f32 {x}, {a}"));
    e.ins(format_args!("cvt.f64.f32 {y}, {b}"));
    let r = F64(e).pow(x, y);
    let (f, nan, d) = (e.f(), e.p(), e.f());
    e.ins(format_args!("cvt.rn.f32.f64 {f}, {r}"));
    e.ins(format_args!("setp.nan.f32 {nan}, {f}, {f}"));
    e.ins(format_args!("selp.f32 {d}, 0f7FC00000, {f}, {nan}"));
    d
}

/// The runtime's `log_f64` of the f64 register `x`.
pub(super) fn log_f64(e: &mut Emitter, x: Reg) -> Reg {
    F64(e).log(x)
}

/// The runtime's `cos_f64` of the f64 register `x`, for |x| < 2^20 (where it is
/// `cos_f64_near`: no branch to the large-argument reduction).
pub(super) fn cos_f64_near(e: &mut Emitter, x: Reg) -> Reg {
    F64(e).cos_near(x)
}

/// The runtime's f32 `sin` (or `cos`) of register `x`.
pub(super) fn sin_cos_f32(e: &mut Emitter, x: Reg, cos: bool) -> Reg {
    let ax32 = e.fabs(x);
    let ax = e.rd();
    e.ins(format_args!("cvt.f64.f32 {ax}, {ax32}"));
    let (r, j) = trig_reduce::reduce_any(e, ax, LARGE_TRIG_ARG_F32);
    let r32 = e.f();
    e.ins(format_args!("cvt.rn.f32.f64 {r32}, {r}"));
    let r = r32;
    let z = e.fmul(r, r);
    // sin_poly(r, z) = ((p·z)·r) + r, cos_poly(z) = ((p·z)·z − 0.5·z) + 1.
    let poly = |e: &mut Emitter, c: [f32; 3]| {
        let c0 = e.fconst(c[0]);
        let p = e.fmul(c0, z);
        let c1 = e.fconst(c[1]);
        let p = e.fadd(p, c1);
        let p = e.fmul(p, z);
        let c2 = e.fconst(c[2]);
        e.fadd(p, c2)
    };
    let ps = poly(e, SIN_POLY);
    let pz = e.fmul(ps, z);
    let pzr = e.fmul(pz, r);
    let sin = e.fadd(pzr, r);
    let pc = poly(e, COS_POLY);
    let pz = e.fmul(pc, z);
    let pzz = e.fmul(pz, z);
    let half = e.fconst(0.5);
    let hz = e.fmul(half, z);
    let c = e.fsub(pzz, hz);
    let one = e.fconst(1.0);
    let cosv = e.fadd(c, one);
    // Octant j ∈ {0, 2, 4, 6}: bit 2 swaps the polynomials; the sign as the runtime's.
    let swap = e.p();
    let bit2 = e.rd();
    e.ins(format_args!("and.b64 {bit2}, {j}, 2"));
    e.ins(format_args!("setp.ne.s64 {swap}, {bit2}, 0"));
    let y = if cos { e.sel(swap, sin, cosv) } else { e.sel(swap, cosv, sin) };
    let negate = e.p();
    if cos {
        let (two, four) = (e.p(), e.p());
        e.ins(format_args!("setp.eq.s64 {two}, {j}, 2"));
        e.ins(format_args!("setp.eq.s64 {four}, {j}, 4"));
        e.ins(format_args!("or.pred {negate}, {two}, {four}"));
    } else {
        let bit4 = e.rd();
        e.ins(format_args!("and.b64 {bit4}, {j}, 4"));
        e.ins(format_args!("setp.ne.s64 {negate}, {bit4}, 0"));
    }
    let ny = e.fneg(y);
    let mut y = e.sel(negate, ny, y);
    if !cos {
        let zero = e.fconst(0.0);
        let neg = e.fcmp(Cc::Lt, x, zero);
        let ny = e.fneg(y);
        y = e.sel(neg, ny, y);
    }
    // Not finite (|x| = ∞ or NaN): NaN.
    let ax32 = e.fabs(x);
    let inf = e.fconst(f32::INFINITY);
    let finite = e.fcmp(Cc::Lt, ax32, inf);
    let out = e.f();
    e.ins(format_args!("selp.f32 {out}, {y}, {}, {finite}", f32_literal(f32::NAN)));
    out
}

/// A 64-bit register holding `bits`.
fn d_const_bits(d: &mut F64<'_>, bits: u64) -> Reg {
    let r = d.0.rd();
    d.0.ins(format_args!("mov.b64 {r}, 0x{bits:016X}"));
    r
}

//! The runtime's f32 transcendentals (`tensorjit_runtime::math`, single precision),
//! emitted as Cranelift IR with exactly the same operation sequence — same constants,
//! same association, no FMA — so compiled kernels give the eager kernels' bits. Each
//! function works on scalars (`f32`) and vectors (`f32x4`) alike through [`Em`].
//! (`x - c` is emitted as `x + (-c)`, which IEEE arithmetic rounds identically.)

// Coefficients are written as in math/single.rs (more digits than f32 holds); the
// compiler rounds them the same way there and here.
#![allow(clippy::excessive_precision)]

use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::Value;

use super::Em;

const MAGIC: f32 = 12_582_912.0;

impl Em<'_, '_> {
    /// Horner's rule `((c0·r + c1)·r + c2)…` (no FMA).
    fn horner(&mut self, r: Value, first: f32, rest: &[f32]) -> Value {
        let c0 = self.fconst(first);
        let mut p = self.fmul(c0, r);
        let c1 = self.fconst(rest[0]);
        p = self.fadd(p, c1);
        for &c in &rest[1..] {
            p = self.fmul(p, r);
            let k = self.fconst(c);
            p = self.fadd(p, k);
        }
        p
    }

    pub(crate) fn exp(&mut self, x: Value) -> Value {
        let (hi, lo) = (self.fconst(88.8), self.fconst(-104.0));
        let below = self.fcmp(FloatCC::LessThan, x, lo);
        let xl = self.sel(below, lo, x);
        let above = self.fcmp(FloatCC::GreaterThan, x, hi);
        let xc = self.sel(above, hi, xl);
        let log2e = self.fconst(core::f32::consts::LOG2_E);
        let magic = self.fconst(MAGIC);
        let t = self.fmul(xc, log2e);
        let t = self.fadd(t, magic);
        let tb = self.bits_of(t);
        let mb = self.iconst(MAGIC.to_bits() as i32);
        let k = self.isub(tb, mb);
        let kf = self.fsub(t, magic);
        let c1 = self.fconst(0.693_359_375);
        let m1 = self.fmul(kf, c1);
        let r = self.fsub(xc, m1);
        let c2 = self.fconst(-2.121_944_4e-4);
        let m2 = self.fmul(kf, c2);
        let r = self.fsub(r, m2);
        let z = self.fmul(r, r);
        let p = self.horner(
            r,
            1.987_569_1e-4,
            &[1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 1.666_666_5e-1, 5.000_000_1e-1],
        );
        let y = self.fmul(p, z);
        let y = self.fadd(y, r);
        let one = self.fconst(1.0);
        let y = self.fadd(y, one);
        let k1 = self.sshr(k, 1);
        let k2 = self.isub(k, k1);
        let bias = self.iconst(127);
        let s1 = self.iadd(k1, bias);
        let s1 = self.shl(s1, 23);
        let s1 = self.float_of(s1);
        let s2 = self.iadd(k2, bias);
        let s2 = self.shl(s2, 23);
        let s2 = self.float_of(s2);
        let y = self.fmul(y, s1);
        self.fmul(y, s2)
    }

    pub(crate) fn log(&mut self, x: Value) -> Value {
        let minpos = self.fconst(f32::MIN_POSITIVE);
        let tiny = self.fcmp(FloatCC::LessThan, x, minpos);
        let scale = self.fconst(8_388_608.0);
        let xsc = self.fmul(x, scale);
        let xs = self.sel(tiny, xsc, x);
        let bits = self.bits_of(xs);
        let sh = self.sshr(bits, 23);
        let ff = self.iconst(0xff);
        let e = self.band(sh, ff);
        let b127 = self.iconst(127);
        let e = self.isub(e, b127);
        let (t23, t0) = (self.iconst(23), self.iconst(0));
        let adj = self.sel_int(tiny, t23, t0);
        let e = self.isub(e, adj);
        let mm = self.iconst(0x007f_ffff);
        let mb = self.band(bits, mm);
        let one_bits = self.iconst(0x3f80_0000);
        let mb = self.bor(mb, one_bits);
        let m = self.float_of(mb);
        let sqrt2 = self.fconst(core::f32::consts::SQRT_2);
        let big = self.fcmp(FloatCC::GreaterThan, m, sqrt2);
        let half = self.fconst(0.5);
        let mh = self.fmul(m, half);
        let m = self.sel(big, mh, m);
        let (i1, i0) = (self.iconst(1), self.iconst(0));
        let inc = self.sel_int(big, i1, i0);
        let e = self.iadd(e, inc);
        let one = self.fconst(1.0);
        let f = self.fsub(m, one);
        let z = self.fmul(f, f);
        let p = self.horner(
            f,
            7.037_683_6e-2,
            &[
                -1.151_461e-1,
                1.167_699_9e-1,
                -1.242_014_1e-1,
                1.424_932_3e-1,
                -1.666_805_8e-1,
                2.000_071_4e-1,
                -2.499_999_4e-1,
                3.333_333_1e-1,
            ],
        );
        let ef = self.int_to_float(e);
        let y = self.fmul(f, z);
        let y = self.fmul(y, p);
        let c = self.fconst(-2.121_944_4e-4);
        let t = self.fmul(ef, c);
        let y = self.fadd(y, t);
        let t = self.fmul(half, z);
        let y = self.fsub(y, t);
        let r = self.fadd(f, y);
        let c = self.fconst(0.693_359_375);
        let t = self.fmul(ef, c);
        let r = self.fadd(r, t);
        let inf = self.fconst(f32::INFINITY);
        let is_inf = self.fcmp(FloatCC::Equal, x, inf);
        let r = self.sel(is_inf, inf, r);
        let zero = self.fconst(0.0);
        let is_zero = self.fcmp(FloatCC::Equal, x, zero);
        let ninf = self.fconst(f32::NEG_INFINITY);
        let r = self.sel(is_zero, ninf, r);
        let neg = self.fcmp(FloatCC::LessThan, x, zero);
        let nan = self.fcmp(FloatCC::Unordered, x, x);
        let bad = self.mask_or(neg, nan);
        let qnan = self.fconst(f32::NAN);
        self.sel(bad, qnan, r)
    }

    pub(crate) fn tanh(&mut self, x: Value) -> Value {
        let ax = self.fabs(x);
        let z = self.fmul(x, x);
        let p = self.horner(z, -5.704_988_7e-3, &[2.063_908_9e-2, -5.373_971_6e-2, 1.333_144_2e-1, -3.333_328_2e-1]);
        let s = self.fmul(p, z);
        let s = self.fmul(s, x);
        let small = self.fadd(s, x);
        let a2 = self.fadd(ax, ax);
        let e = self.exp(a2);
        let one = self.fconst(1.0);
        let two = self.fconst(2.0);
        let d = self.fadd(e, one);
        let q = self.fdiv(two, d);
        let m = self.fsub(one, q);
        let big = self.copysign(m, x);
        let lim = self.fconst(0.625);
        let is_small = self.fcmp(FloatCC::LessThan, ax, lim);
        self.sel(is_small, small, big)
    }

    pub(crate) fn sigmoid(&mut self, x: Value) -> Value {
        let ax = self.fabs(x);
        let nax = self.fneg(ax);
        let e = self.exp(nax);
        let one = self.fconst(1.0);
        let d = self.fadd(one, e);
        let c = self.fsub(one, d);
        let c = self.fadd(c, e);
        let zero = self.fconst(0.0);
        let neg = self.fcmp(FloatCC::LessThan, x, zero);
        let n = self.sel(neg, e, one);
        let q = self.fdiv(n, d);
        let t = self.fmul(q, c);
        let t = self.fdiv(t, d);
        self.fsub(q, t)
    }

    pub(crate) fn softplus(&mut self, x: Value) -> Value {
        let ax = self.fabs(x);
        let nax = self.fneg(ax);
        let u = self.exp(nax);
        let one = self.fconst(1.0);
        let w = self.fadd(one, u);
        let lw = self.log(w);
        let t = self.fsub(w, one);
        let t = self.fsub(t, u);
        let t = self.fdiv(t, w);
        let l = self.fsub(lw, t);
        let w_is_one = self.fcmp(FloatCC::Equal, w, one);
        let l = self.sel(w_is_one, u, l);
        let zero = self.fconst(0.0);
        let pos = self.fcmp(FloatCC::GreaterThan, x, zero);
        let xp = self.sel(pos, x, zero);
        self.fadd(xp, l)
    }
}

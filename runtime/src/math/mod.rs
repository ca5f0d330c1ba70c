//! Transcendental functions, written once as explicit float algorithms (range reduction
//! + polynomial, no libm), for f32 and f64.
//!
//! The eager kernels call these; the code generators (Cranelift, PTX) emit exactly the
//! same operation sequence, so an element computed eagerly and in compiled code is the
//! same bits. Rules the algorithms keep so that can hold:
//! * only `+ - * /`, `sqrt`, fused multiply-add, comparisons + select, and integer/bit
//!   operations on the float's bits (range reduction via the "magic number" rounding
//!   trick, `2^k` built from bits) — every one of them exists as a vector instruction;
//! * a fused multiply-add only where written (`mul_add`: the f32 `exp`, `log`, `tanh` and
//!   `sigmoid` steps, the f64 `exp` and `log` series); every other `a * b + c`
//!   is a rounded multiply then a rounded add (Rust never contracts them), and generated
//!   code must do the same. On x86-64 the eager kernels are compiled for AVX2 + FMA and
//!   AVX-512 (`kernels::par`); a CPU without FMA still gets these bits, from libm's
//!   `fmaf`, slowly;
//! * branch-free: special cases are selected at the end, so loops vectorise. The one
//!   exception is `sin`/`cos` from |x| = 2^29 (f32) or 2^20 (f64) on, reduced exactly
//!   with the bits of 2/π (`reduce.rs`) on a cold path, as are f64 arguments whose short
//!   reduction leaves a result tiny next to |x|; kernels run the branch-free `*_near`
//!   forms over a slice and redo the rare elements that need it
//!   (`FloatMath::trig_needs_exact`).
//!
//! Accuracy (max error measured by the tests in `tests.rs` over dense sweeps against
//! f64 libm for f32, and against glibc's f64 libm for f64; see each function):
//!
//! | fn | f32 max ulp | f64 max ulp (vs libm) | domain of the bound |
//! |---|---|---|---|
//! | exp | 1 | 2 | whole range (subnormal results within 1 subnormal ulp) |
//! | log | 1 | 2 | positive finite (incl. subnormal) |
//! | tanh | 2 | 3 | all |
//! | sigmoid | 2 | 3 | all |
//! | softplus | 2 | 3 | all |
//! | sin, cos | 2 | 2 | all (near multiples of π/2 too) |
//! | erf | ≤ 1 (computed in f64) | 1 | fdlibm's method (`erf.rs`) |
//! | pow | 1 (computed in f64) | ≈ \|y·ln x\|·2^-52 relative | |
//!
//! The exact figures are asserted by the tests, so a change that loses accuracy fails.

mod double;
mod erf;
mod reduce;
mod single;
#[cfg(test)]
mod tests;

pub use double::{cos_f64, exp_f64, log_f64, pow_f64, sigmoid_f64, sin_f64, softplus_f64, tanh_f64};
use double::{cos_f64_near, sin_f64_near};
pub use erf::{erf_f32, erf_f64};
use single::{cos_f32_near, sin_f32_near};

/// The constants of the f64 `exp`/`log` algorithms, for code generators that emit the
/// same algorithms (the GPU's `pow`), so that every implementation uses the same values.
pub mod f64_constants {
    pub use super::double::{
        ATANH_COEF, COS_COEF, INV_FACT, LN2_HI, LN2_LO, MAGIC, PIO4_PARTS, SIN_COEF, SMALL_TRIG_RESULT_F64, TANH_P,
        TANH_Q,
    };
    pub use super::erf::{
        ERF_BIG, ERF_EFX8, ERF_ERX, ERF_MID, ERF_ONE, ERF_PA, ERF_PP, ERF_QA, ERF_QQ, ERF_RA, ERF_RB, ERF_SA, ERF_SB,
        ERF_SMALL, ERF_TINY,
    };
    pub use super::reduce::{LARGE_TRIG_ARG_F32, LARGE_TRIG_ARG_F64, PIO2_HI, PIO2_LO, TWO_OVER_PI_BITS};
}

/// The coefficients of the f32 `sin`/`cos` polynomials, for code generators that emit
/// the same algorithms (the GPU's `sin`/`cos`).
pub mod f32_constants {
    pub use super::single::{COS_POLY, SIN_POLY};
}
pub use single::{cos_f32, exp_f32, log_f32, pow_f32, sigmoid_f32, sin_f32, softplus_f32, tanh_f32};

/// The float types with tensorjit's own transcendentals, so kernels can be generic.
pub trait FloatMath: crate::dtype::Element + num_like::Num {
    fn exp(self) -> Self;
    fn log(self) -> Self;
    fn tanh(self) -> Self;
    fn sigmoid(self) -> Self;
    fn softplus(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn erf(self) -> Self;
    /// `sin` where `trig_needs_exact` is false: branch-free.
    fn sin_near(self) -> Self;
    /// `cos` where `trig_needs_exact` is false: branch-free.
    fn cos_near(self) -> Self;
    /// Whether `sin`/`cos` of `self` redo `near`, the `*_near` form's result, with the
    /// exact (Payne–Hanek) reduction: finite |x| ≥ 2^29 (f32) or 2^20 (f64), and for f64
    /// results tiny next to |x| (x next to a multiple of π/2).
    fn trig_needs_exact(self, near: Self) -> bool;
    fn pow(self, y: Self) -> Self;
    /// x − ⌊x/y⌋·y with y's sign, exactly: C's `fmod` (exact), plus `y` where the signs
    /// of the remainder and `y` differ (TensorFlow's `floormod`); every NaN is the quiet
    /// NaN `T::NAN` (libm's `fmod` makes a negative one on x86).
    fn floormod(self, y: Self) -> Self;
    fn sqrt(self) -> Self;
    fn floor(self) -> Self;
    fn ceil(self) -> Self;
    fn abs(self) -> Self;
    fn is_nan(self) -> bool;
}

/// Minimal arithmetic bound used by generic kernels.
pub mod num_like {
    use std::ops::{Add, Div, Mul, Neg, Sub};
    pub trait Num:
        Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Div<Output = Self> + Neg<Output = Self>
    {
        const ZERO: Self;
        const ONE: Self;
        const NEG_INFINITY: Self;
        const INFINITY: Self;
    }
    impl Num for f32 {
        const ZERO: f32 = 0.0;
        const ONE: f32 = 1.0;
        const NEG_INFINITY: f32 = f32::NEG_INFINITY;
        const INFINITY: f32 = f32::INFINITY;
    }
    impl Num for f64 {
        const ZERO: f64 = 0.0;
        const ONE: f64 = 1.0;
        const NEG_INFINITY: f64 = f64::NEG_INFINITY;
        const INFINITY: f64 = f64::INFINITY;
    }
}

macro_rules! float_math {
    ($t:ty, $exp:ident, $log:ident, $tanh:ident, $sig:ident, $sp:ident, $sin:ident, $cos:ident, $pow:ident, $sin_near:ident, $cos_near:ident, $needs:path, $erf:ident) => {
        impl FloatMath for $t {
            #[inline(always)]
            fn exp(self) -> Self {
                $exp(self)
            }
            #[inline(always)]
            fn log(self) -> Self {
                $log(self)
            }
            #[inline(always)]
            fn tanh(self) -> Self {
                $tanh(self)
            }
            #[inline(always)]
            fn sigmoid(self) -> Self {
                $sig(self)
            }
            #[inline(always)]
            fn softplus(self) -> Self {
                $sp(self)
            }
            #[inline(always)]
            fn sin(self) -> Self {
                $sin(self)
            }
            #[inline(always)]
            fn cos(self) -> Self {
                $cos(self)
            }
            #[inline(always)]
            fn erf(self) -> Self {
                $erf(self)
            }
            #[inline(always)]
            fn sin_near(self) -> Self {
                $sin_near(self)
            }
            #[inline(always)]
            fn cos_near(self) -> Self {
                $cos_near(self)
            }
            #[inline(always)]
            fn trig_needs_exact(self, near: Self) -> bool {
                $needs(self, near)
            }
            #[inline(always)]
            fn pow(self, y: Self) -> Self {
                $pow(self, y)
            }
            #[inline(always)]
            fn floormod(self, y: Self) -> Self {
                let r = self % y;
                let r = if r != 0.0 && ((r < 0.0) != (y < 0.0)) { r + y } else { r };
                if r.is_nan() {
                    <$t>::NAN
                } else {
                    r
                }
            }
            // sqrt is correctly rounded in IEEE 754 (one instruction everywhere);
            // floor/ceil/abs are exact: any implementation gives the same bits.
            #[inline(always)]
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            #[inline(always)]
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            #[inline(always)]
            fn ceil(self) -> Self {
                <$t>::ceil(self)
            }
            #[inline(always)]
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}
float_math!(
    f32,
    exp_f32,
    log_f32,
    tanh_f32,
    sigmoid_f32,
    softplus_f32,
    sin_f32,
    cos_f32,
    pow_f32,
    sin_f32_near,
    cos_f32_near,
    single::trig_needs_exact_f32,
    erf_f32
);
float_math!(
    f64,
    exp_f64,
    log_f64,
    tanh_f64,
    sigmoid_f64,
    softplus_f64,
    sin_f64,
    cos_f64,
    pow_f64,
    sin_f64_near,
    cos_f64_near,
    double::trig_needs_exact_f64,
    erf_f64
);

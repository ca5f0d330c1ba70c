//! Accuracy of math.rs over dense sweeps. f32 functions are compared with f64 libm
//! (exact enough to be the truth at f32 precision); f64 functions with glibc's libm
//! (itself within ~1 ulp), so their bounds include the reference's own error.

use super::*;

/// Error of `y` in units of the last place of the f32 nearest `truth`.
fn ulp_err_f32(y: f32, truth: f64) -> f64 {
    if y.is_nan() && truth.is_nan() {
        return 0.0;
    }
    if y as f64 == truth || (y.is_infinite() && (truth as f32) == y) {
        return 0.0;
    }
    let t = truth.abs().max(f32::MIN_POSITIVE as f64 * 2f64.powi(-23));
    let e = t.log2().floor().max(-126.0);
    let ulp = 2f64.powf(e - 23.0);
    (y as f64 - truth).abs() / ulp
}

fn ulp_err_f64(y: f64, truth: f64) -> f64 {
    if (y.is_nan() && truth.is_nan()) || y == truth {
        return 0.0;
    }
    let t = truth.abs().max(f64::MIN_POSITIVE);
    let e = t.log2().floor();
    let ulp = 2f64.powf(e - 52.0);
    (y - truth).abs() / ulp
}

/// Every `step`-th f32 bit pattern of both signs, finite ones only.
fn f32_sweep(step: u32) -> impl Iterator<Item = f32> {
    (0..0x7f80_0000u32).step_by(step as usize).flat_map(|b| [f32::from_bits(b), -f32::from_bits(b)])
}

fn max_err_f32(f: impl Fn(f32) -> f32, truth: impl Fn(f64) -> f64, lo: f32, hi: f32) -> (f64, f32) {
    let mut worst = (0.0, 0.0);
    for x in f32_sweep(251).filter(|x| *x >= lo && *x <= hi) {
        let e = ulp_err_f32(f(x), truth(x as f64));
        if e > worst.0 {
            worst = (e, x);
        }
    }
    worst
}

fn check_f32(name: &str, f: impl Fn(f32) -> f32, truth: impl Fn(f64) -> f64, lo: f32, hi: f32, bound: f64) {
    let (e, x) = max_err_f32(f, truth, lo, hi);
    assert!(e <= bound, "{name}: {e:.3} ulp at x = {x:e} (bound {bound})");
}

#[test]
fn exp_f32_within_1_ulp() {
    check_f32("exp", exp_f32, f64::exp, -f32::MAX, f32::MAX, 1.0);
    assert_eq!(exp_f32(f32::INFINITY), f32::INFINITY);
    assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
    assert!(exp_f32(f32::NAN).is_nan());
    assert_eq!(exp_f32(0.0), 1.0);
}

#[test]
fn log_f32_within_1_ulp() {
    check_f32("log", log_f32, f64::ln, 0.0, f32::MAX, 1.0);
    assert_eq!(log_f32(0.0), f32::NEG_INFINITY);
    assert_eq!(log_f32(f32::INFINITY), f32::INFINITY);
    assert!(log_f32(-1.0).is_nan());
    assert_eq!(log_f32(1.0), 0.0);
}

#[test]
fn tanh_sigmoid_softplus_f32_within_2_ulp() {
    check_f32("tanh", tanh_f32, f64::tanh, -f32::MAX, f32::MAX, 2.0);
    check_f32("sigmoid", sigmoid_f32, |x| 1.0 / (1.0 + (-x).exp()), -f32::MAX, f32::MAX, 2.0);
    check_f32(
        "softplus",
        softplus_f32,
        |x| if x > 30.0 { x + (-x).exp() } else { x.exp().ln_1p() },
        -f32::MAX,
        f32::MAX,
        2.0,
    );
    assert_eq!(tanh_f32(f32::INFINITY), 1.0);
    assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
    assert_eq!(sigmoid_f32(f32::NEG_INFINITY), 0.0);
}

#[test]
fn sin_cos_f32_within_2_ulp_everywhere() {
    check_f32("sin", sin_f32, f64::sin, -f32::MAX, f32::MAX, 2.0);
    check_f32("cos", cos_f32, f64::cos, -f32::MAX, f32::MAX, 2.0);
    assert!(sin_f32(f32::INFINITY).is_nan());
    assert!(cos_f32(f32::NEG_INFINITY).is_nan());
    assert!(sin_f32(f32::NAN).is_nan());
    // Values glibc gives (f64 sin of the f32, rounded): past the short reduction's range.
    assert_eq!(sin_f32(1e10), (1e10f32 as f64).sin() as f32);
    assert_eq!(cos_f32(f32::MAX), (f32::MAX as f64).cos() as f32);
}

/// Every finite f32 (both signs: 4.3e9 arguments each for sin and cos) within 2 ulp:
/// `cargo test --release -p tensorjit-runtime -- --ignored exhaustive`.
#[test]
#[ignore = "exhaustive, 8.6 G evaluations: run in release (minutes on 2 cores), not in debug CI"]
fn sin_cos_f32_exhaustive_within_2_ulp() {
    use rayon::prelude::*;
    let worst = (0..0x7f80_0000u32)
        .into_par_iter()
        .map(|b| {
            let mut w = (0.0f64, 0.0f32);
            for x in [f32::from_bits(b), -f32::from_bits(b)] {
                let e = ulp_err_f32(sin_f32(x), (x as f64).sin()).max(ulp_err_f32(cos_f32(x), (x as f64).cos()));
                if e > w.0 {
                    w = (e, x);
                }
            }
            w
        })
        .reduce(|| (0.0, 0.0), |a, b| if b.0 > a.0 { b } else { a });
    assert!(worst.0 <= 2.0, "{:.3} ulp at x = {:e}", worst.0, worst.1);
}

#[test]
fn near_forms_agree_below_the_large_argument_threshold() {
    // The kernels' branch-free forms are the same function wherever they are used.
    for x in f32_sweep(997) {
        for (f, near) in [(sin_f32 as fn(f32) -> f32, x.sin_near()), (cos_f32, x.cos_near())] {
            if !x.trig_needs_exact(near) {
                assert_eq!(f(x).to_bits(), near.to_bits(), "{x:e}");
            }
        }
    }
    for x in f64_points().step_by(7) {
        for (f, near) in [(sin_f64 as fn(f64) -> f64, x.sin_near()), (cos_f64, x.cos_near())] {
            if !x.trig_needs_exact(near) {
                assert_eq!(f(x).to_bits(), near.to_bits(), "{x:e}");
            }
        }
    }
    assert!(536_870_912f32.trig_needs_exact(0.5) && !536_870_880f32.trig_needs_exact(0.5));
    assert!(1048576f64.trig_needs_exact(0.5) && !1048575.9f64.trig_needs_exact(0.5));
    assert!(!f32::INFINITY.trig_needs_exact(f32::NAN) && !f64::NAN.trig_needs_exact(f64::NAN));
    // f64 results tiny next to |x| are redone; f32 ones never need it below 2^29.
    let x = 642_615.918_884_445_8f64;
    assert!(x.trig_needs_exact(x.sin_near()) && !x.trig_needs_exact(x.cos_near()));
    assert!(!(x as f32).trig_needs_exact(0.0));
}

#[test]
fn erf_within_1_ulp_of_libm() {
    // f32 over a sweep of every f32 range (libm's f64 erf is the truth at f32 precision).
    check_f32("erf", erf_f32, libm::erf, -f32::MAX, f32::MAX, 1.0);
    // f64: dense around each interval's bounds and across [−7, 7], plus the sweep.
    check_f64("erf", erf_f64, libm::erf, -f64::MAX, f64::MAX, 1.0);
    for b in [3.725_290_298_461_914e-9, 0.84375, 1.25, 2.857_141_494_750_976_6, 6.0] {
        for k in -2000..2000 {
            let x = b + k as f64 * b * 1e-6;
            assert!(ulp_err_f64(erf_f64(x), libm::erf(x)) <= 1.0, "erf({x:e}) = {} vs {}", erf_f64(x), libm::erf(x));
        }
    }
    assert_eq!(erf_f64(f64::INFINITY), 1.0);
    assert_eq!(erf_f64(f64::NEG_INFINITY), -1.0);
    assert!(erf_f64(f64::NAN).is_nan() && erf_f32(f32::NAN).is_nan());
    assert_eq!(erf_f64(-0.0).to_bits(), (-0.0f64).to_bits());
    assert_eq!(erf_f32(1e-45), libm::erf(1e-45f32 as f64) as f32);
}

#[test]
fn pow_f32_within_1_ulp_and_special_cases() {
    let mut worst: f64 = 0.0;
    for x in f32_sweep(40_009).filter(|x| *x > 0.0) {
        for y in [-3.5f32, -1.0, -0.5, 0.5, 1.7, 2.0, 3.0, 10.25] {
            worst = worst.max(ulp_err_f32(pow_f32(x, y), (x as f64).powf(y as f64)));
        }
    }
    assert!(worst <= 1.0, "pow: {worst} ulp");
    assert_eq!(pow_f32(-2.0, 3.0), -8.0);
    assert!(pow_f32(-2.0, 0.5).is_nan());
    assert_eq!(pow_f32(0.0, -1.0), f32::INFINITY);
    assert_eq!(pow_f32(f32::NAN, 0.0), 1.0);
    assert_eq!(pow_f32(-1.0, f32::INFINITY), 1.0);
    // (−∞)^y for a y that is not an odd integer: +∞ or +0 (C99 Annex F), not NaN.
    assert_eq!(pow_f32(f32::NEG_INFINITY, 0.5), f32::INFINITY);
    assert_eq!(pow_f32(f32::NEG_INFINITY, -1.5).to_bits(), 0);
}

fn f64_points() -> impl Iterator<Item = f64> {
    // Every 2^40-th bit pattern (≈ 2 M points over the finite range), both signs.
    (0..0x7ff0_0000_0000_0000u64).step_by(1 << 41).flat_map(|b| [f64::from_bits(b), -f64::from_bits(b)])
}

fn check_f64(name: &str, f: impl Fn(f64) -> f64, truth: impl Fn(f64) -> f64, lo: f64, hi: f64, bound: f64) {
    let mut worst = (0.0, 0.0);
    for x in f64_points().chain((0..200_000).map(|i| (i as f64 - 100_000.0) * 1.37e-4)).filter(|x| *x >= lo && *x <= hi)
    {
        let e = ulp_err_f64(f(x), truth(x));
        if e > worst.0 {
            worst = (e, x);
        }
    }
    assert!(worst.0 <= bound, "{name}: {:.3} ulp at x = {:e} (bound {bound})", worst.0, worst.1);
}

#[test]
fn f64_functions_match_libm() {
    check_f64("exp", exp_f64, f64::exp, -f64::MAX, f64::MAX, 2.0);
    check_f64("log", log_f64, f64::ln, 0.0, f64::MAX, 2.0);
    check_f64("tanh", tanh_f64, f64::tanh, -f64::MAX, f64::MAX, 3.0);
    check_f64(
        "sigmoid",
        sigmoid_f64,
        |x| if x < 0.0 { x.exp() / (1.0 + x.exp()) } else { 1.0 / (1.0 + (-x).exp()) },
        -f64::MAX,
        f64::MAX,
        3.0,
    );
    check_f64(
        "softplus",
        softplus_f64,
        |x| if x > 0.0 { x + (-x).exp().ln_1p() } else { x.exp().ln_1p() },
        -f64::MAX,
        f64::MAX,
        3.0,
    );
    check_f64("sin", sin_f64, f64::sin, -1048576.0, 1048576.0, 2.0);
    check_f64("cos", cos_f64, f64::cos, -1048576.0, 1048576.0, 2.0);
    // From 2^20 on, the exact reduction: as accurate up to the largest f64, near the
    // multiples of π/2 too (where the short reduction lost ~2^20 ulp).
    check_f64("sin", sin_f64, f64::sin, 1048576.0, f64::MAX, 2.0);
    check_f64("cos", cos_f64, f64::cos, -f64::MAX, -1048576.0, 2.0);
    // The doubles nearest multiples of π/2 below 2^20 (the 12 closest relative to x,
    // found with mpmath over every multiple): glibc is within 0.42 ulp there; the short
    // reduction alone was up to 7·10^6 ulp off.
    let nearest = [
        642615.9188844458,
        321307.9594422229,
        871790.3905748408,
        413441.44719405076,
        826882.8943881015,
        1011149.8698917573,
        505574.93494587863,
        597708.4226977065,
        687523.4150711851,
        229174.47169039503,
        458348.94338079006,
        916697.8867615801,
    ];
    for x in nearest.into_iter().flat_map(|x: f64| [x, -x]) {
        assert!(ulp_err_f64(sin_f64(x), x.sin()) <= 2.0, "sin {x:e}: {} vs {}", sin_f64(x), x.sin());
        assert!(ulp_err_f64(cos_f64(x), x.cos()) <= 2.0, "cos {x:e}: {} vs {}", cos_f64(x), x.cos());
    }
    for k in [1u64 << 20, 12_345_679, 1 << 29, 987_654_321_987] {
        let x = k as f64 * std::f64::consts::FRAC_PI_2;
        assert!(ulp_err_f64(sin_f64(x), x.sin()) <= 2.0 && ulp_err_f64(cos_f64(x), x.cos()) <= 2.0, "{x:e}");
    }
    assert!((pow_f64(f64::NEG_INFINITY, 0.5) == f64::INFINITY) && pow_f64(f64::NEG_INFINITY, -2.5) == 0.0);
    assert_eq!(pow_f64(f64::NEG_INFINITY, 3.0), f64::NEG_INFINITY);
    assert_eq!(pow_f64(f64::NEG_INFINITY, -3.0).to_bits(), (-0.0f64).to_bits());
    assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
    assert_eq!(log_f64(0.0), f64::NEG_INFINITY);
    assert_eq!(pow_f64(2.0, 10.0), 1024.0);
}

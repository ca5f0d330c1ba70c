//! Counter-based random draws on GPUs — uniform, normal and truncated normal, f32 or
//! f64 — the runtime's generator step for step (`kernels/random.rs`), so a GPU draw
//! holds the CPU's bits:
//! - the key: a stateless draw's is `splitmix64(seed_part ^ splitmix64(counter))` with
//!   the counter read where it lives (a seeded `Dropout`'s masks on a device model);
//!   any other draw's is resolved on the host (it advances the global sequence) and
//!   passed in;
//! - `unit(key, i) = (splitmix64(key ^ splitmix64(i)) >> 11) · 2⁻⁵³` in f64;
//! - uniform: `low + span · unit(key, i)`; normal: `mean + stddev · z` with Box–Muller's
//!   `z = sqrt(−2·log(1 − unit(key, 2i))) · cos(2π · unit(key, 2i + 1))` (the runtime's
//!   own f64 `log` and `cos`); truncated normal: `z` redrawn with key
//!   `splitmix64(key ^ attempt·φ)` while `|z| > 2` (at most 1000 attempts), clamped to
//!   ±2;
//! - rounded to f32 once at the end for an f32 draw.

use std::fmt;

use super::conv::per_output_of;
use super::double::{cos_f64_near, log_f64};
use super::typed::Elem;
use super::{entry, header, load_params, Emitter, Reg};

/// Which values a random kernel draws.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Draw {
    /// `a + b · u` (`a` = low, `b` = high − low).
    Uniform,
    /// `a + b · z` (`a` = mean, `b` = stddev).
    Normal,
    /// `a + b · z`, `z` redrawn beyond two standard deviations.
    TruncatedNormal,
}

/// One random kernel: what it draws, into f32 or f64, and where its key comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RandomKernel {
    pub draw: Draw,
    /// f64 output (else f32).
    pub f64: bool,
    /// The key is made from an i64 counter on the device (a stateless draw); else it is
    /// a parameter.
    pub from_counter: bool,
}

impl RandomKernel {
    /// The entry's parameters, in order (all `.u64`): with `from_counter` the counter's
    /// address, then the output, its element count, the seed's share of the key
    /// (`random::stateless_seed_part`) — or, without, the output, its element count and
    /// the key — then `a` and `b` as f64 bits.
    pub fn params(self) -> &'static [&'static str] {
        if self.from_counter {
            &["counter", "out", "total", "seed_part", "a", "b"]
        } else {
            &["out", "total", "key", "a", "b"]
        }
    }
}

impl fmt::Display for RandomKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let draw = match self.draw {
            Draw::Uniform => "uniform",
            Draw::Normal => "normal",
            Draw::TruncatedNormal => "truncated_normal",
        };
        let key = if self.from_counter { "counter" } else { "key" };
        write!(f, "random {draw}.{}({key})", if self.f64 { "f64" } else { "f32" })
    }
}

/// The runtime's `splitmix64` of `z` (64-bit wrapping arithmetic).
fn splitmix64(e: &mut Emitter, z: Reg) -> Reg {
    let a = e.rd();
    e.ins(format_args!("add.s64 {a}, {z}, 0x9E3779B97F4A7C15"));
    let mut x = a;
    for (shift, mul) in [(30, Some("0xBF58476D1CE4E5B9")), (27, Some("0x94D049BB133111EB")), (31, None)] {
        let (t, y) = (e.rd(), e.rd());
        e.ins(format_args!("shr.u64 {t}, {x}, {shift}"));
        e.ins(format_args!("xor.b64 {y}, {x}, {t}"));
        x = y;
        if let Some(m) = mul {
            let p = e.rd();
            e.ins(format_args!("mul.lo.u64 {p}, {x}, {m}"));
            x = p;
        }
    }
    x
}

/// `unit(key, i)`: an f64 in [0, 1) from 53 random bits (exact: 53 bits times 2⁻⁵³).
fn unit(e: &mut Emitter, key: Reg, i: Reg) -> Reg {
    let mi = splitmix64(e, i);
    let z = e.rd();
    e.ins(format_args!("xor.b64 {z}, {key}, {mi}"));
    let h = splitmix64(e, z);
    let (bits, u) = (e.rd(), e.rd());
    e.ins(format_args!("shr.u64 {bits}, {h}, 11"));
    e.ins(format_args!("cvt.rn.f64.u64 {u}, {bits}"));
    e.ins(format_args!("mul.rn.f64 {u}, {u}, 0d3CA0000000000000"));
    u
}

/// A 64-bit register holding the f64 `v`.
fn f64_const(e: &mut Emitter, v: f64) -> Reg {
    let d = e.rd();
    e.ins(format_args!("mov.b64 {d}, 0d{:016X}", v.to_bits()));
    d
}

/// `op` of two f64 registers.
fn f64_op(e: &mut Emitter, op: &str, a: Reg, b: Reg) -> Reg {
    let d = e.rd();
    e.ins(format_args!("{op}.rn.f64 {d}, {a}, {b}"));
    d
}

/// Box–Muller's standard normal from the counters 2i and 2i + 1 of `key`.
fn std_normal(e: &mut Emitter, key: Reg, i: Reg) -> Reg {
    let (even, odd) = (e.rd(), e.rd());
    e.ins(format_args!("shl.b64 {even}, {i}, 1"));
    e.ins(format_args!("add.s64 {odd}, {even}, 1"));
    let u = unit(e, key, even);
    let one = f64_const(e, 1.0);
    let u1 = f64_op(e, "sub", one, u);
    let u2 = unit(e, key, odd);
    let l = log_f64(e, u1);
    let minus_two = f64_const(e, -2.0);
    let m = f64_op(e, "mul", minus_two, l);
    let radius = e.rd();
    e.ins(format_args!("sqrt.rn.f64 {radius}, {m}"));
    let tau = f64_const(e, std::f64::consts::TAU);
    let angle = f64_op(e, "mul", tau, u2);
    let c = cos_f64_near(e, angle);
    f64_op(e, "mul", radius, c)
}

/// The truncated normal's `z`: redrawn with the attempt's key while `|z| > 2`, the
/// thousandth attempt kept whatever it is; then clamped to ±2.
fn truncated_normal(e: &mut Emitter, key: Reg, i: Reg) -> Reg {
    let attempt = e.rd();
    e.ins(format_args!("mov.u64 {attempt}, 0"));
    e.label("$L_attempt");
    let (salt, k0) = (e.rd(), e.rd());
    e.ins(format_args!("mul.lo.u64 {salt}, {attempt}, 0x9E3779B97F4A7C15"));
    e.ins(format_args!("xor.b64 {k0}, {key}, {salt}"));
    let k = splitmix64(e, k0);
    let z = std_normal(e, k, i);
    let (az, inside, last, done) = (e.rd(), e.p(), e.p(), e.p());
    e.ins(format_args!("and.b64 {az}, {z}, 0x7FFFFFFFFFFFFFFF"));
    e.ins(format_args!("setp.le.f64 {inside}, {az}, 0d4000000000000000"));
    e.ins(format_args!("setp.eq.u64 {last}, {attempt}, 1000"));
    e.ins(format_args!("or.pred {done}, {inside}, {last}"));
    e.ins(format_args!("@{done} bra $L_accepted"));
    e.ins(format_args!("add.s64 {attempt}, {attempt}, 1"));
    e.ins(format_args!("bra $L_attempt"));
    e.label("$L_accepted");
    // Rust's clamp(−2, 2).
    let (low, high) = (e.p(), e.p());
    let (two, minus_two) = (f64_const(e, 2.0), f64_const(e, -2.0));
    e.ins(format_args!("setp.lt.f64 {low}, {z}, {minus_two}"));
    e.ins(format_args!("setp.gt.f64 {high}, {z}, {two}"));
    let (c1, c2) = (e.rd(), e.rd());
    e.ins(format_args!("selp.b64 {c1}, {minus_two}, {z}, {low}"));
    e.ins(format_args!("selp.b64 {c2}, {two}, {c1}, {high}"));
    c2
}

/// A module with one entry, `name`, writing `total` draws of `k` (parameters
/// [`RandomKernel::params`]).
pub fn render_random(k: RandomKernel, name: &str) -> String {
    let mut e = Emitter::default();
    let (params, output, total, key, a, b) = if k.from_counter {
        let (params, [counter, output], [total, seed_part, a, b]) = load_params(&mut e, name, k.params());
        let c = e.rd();
        e.ins(format_args!("ld.global.nc.s64 {c}, [{counter}]"));
        let mixed = splitmix64(&mut e, c);
        let k0 = e.rd();
        e.ins(format_args!("xor.b64 {k0}, {seed_part}, {mixed}"));
        let key = splitmix64(&mut e, k0);
        (params, output, total, key, a, b)
    } else {
        let (params, [output], [total, key, a, b]) = load_params(&mut e, name, k.params());
        (params, output, total, key, a, b)
    };
    let out = if k.f64 { Elem::I64 } else { Elem::F32 };
    per_output_of(&mut e, out, total, output, |e, i| {
        let x = match k.draw {
            Draw::Uniform => unit(e, key, i),
            Draw::Normal => std_normal(e, key, i),
            Draw::TruncatedNormal => truncated_normal(e, key, i),
        };
        let scaled = f64_op(e, "mul", b, x);
        let v = f64_op(e, "add", a, scaled);
        if k.f64 {
            return v;
        }
        let f = e.f();
        e.ins(format_args!("cvt.rn.f32.f64 {f}, {v}"));
        f
    });
    header() + &entry(name, &params, "", &e)
}

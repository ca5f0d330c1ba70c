//! Counter-based uniform draws on GPUs: the runtime's stateless draws
//! (`random::stateless_uniform`, the masks of a seeded `Dropout`) made where their
//! counter lives. The runtime's generator, step for step: the key is
//! `splitmix64(seed_part ^ splitmix64(counter))`, element `i` is
//! `low + span · ((splitmix64(key ^ splitmix64(i)) >> 11) · 2⁻⁵³)` in f64, rounded to f32
//! — so a GPU draw holds the CPU's bits.

use super::conv::per_output_of;
use super::typed::Elem;
use super::{entry, header, load_params, Emitter, Reg};

/// The uniform entry's parameters, in order (all `.u64`): the i64 counter (a pointer:
/// it is read on the device), the f32 output, its element count, the seed's share of
/// the key (`random::stateless_seed_part`), and `low` and `span = high − low` as f64
/// bits.
pub const UNIFORM_PARAMS: [&str; 6] = ["counter", "out", "total", "seed_part", "low", "span"];

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

/// A module with one entry, `name`, writing `total` uniform f32 draws of a stateless
/// key (parameters [`UNIFORM_PARAMS`]).
pub fn render_stateless_uniform(name: &str) -> String {
    let mut e = Emitter::default();
    let (params, [counter, output], [total, seed_part, low, span]) = load_params(&mut e, name, &UNIFORM_PARAMS);
    let c = e.rd();
    e.ins(format_args!("ld.global.nc.s64 {c}, [{counter}]"));
    let mixed = splitmix64(&mut e, c);
    let k = e.rd();
    e.ins(format_args!("xor.b64 {k}, {seed_part}, {mixed}"));
    let key = splitmix64(&mut e, k);
    per_output_of(&mut e, Elem::F32, total, output, |e, i| {
        let mi = splitmix64(e, i);
        let z = e.rd();
        e.ins(format_args!("xor.b64 {z}, {key}, {mi}"));
        let h = splitmix64(e, z);
        let (bits, u, scaled, v) = (e.rd(), e.rd(), e.rd(), e.rd());
        // 53 random bits, exactly representable; times 2⁻⁵³ (exact): [0, 1).
        e.ins(format_args!("shr.u64 {bits}, {h}, 11"));
        e.ins(format_args!("cvt.rn.f64.u64 {u}, {bits}"));
        e.ins(format_args!("mul.rn.f64 {u}, {u}, 0d3CA0000000000000"));
        e.ins(format_args!("mul.rn.f64 {scaled}, {span}, {u}"));
        e.ins(format_args!("add.rn.f64 {v}, {low}, {scaled}"));
        let f = e.f();
        e.ins(format_args!("cvt.rn.f32.f64 {f}, {v}"));
        f
    });
    header() + &entry(name, &params, "", &e)
}

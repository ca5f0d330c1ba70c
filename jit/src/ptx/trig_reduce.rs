//! The runtime's Payne–Hanek reduction of large `sin`/`cos` arguments
//! (`tensorjit_runtime::math`'s `reduce.rs`) as PTX, operation for operation: the bits of
//! 2/π in a module-scope `.const` table, 64-bit products (`mul.lo`/`mul.hi`), an explicit
//! carry and borrow, `clz`, and shifts whose count of 64 gives 0 (PTX clamps shift
//! counts; the runtime's `shl`/`shr` do the same). Kernels take this path only for the
//! elements that need it (a branch around it), as the runtime's eager kernels do.

use tensorjit_runtime::math::f64_constants::{PIO2_HI, PIO2_LO, TWO_OVER_PI_BITS};

use super::double::F64;
use super::{Emitter, Reg};

/// The table's name in a module.
const TABLE: &str = "tj_two_over_pi";

/// The module-scope declaration of the table.
fn table_declaration() -> String {
    let words: Vec<String> = TWO_OVER_PI_BITS.iter().map(|w| format!("0x{w:016X}")).collect();
    format!(".const .align 8 .b64 {TABLE}[{}] = {{{}}};", TWO_OVER_PI_BITS.len(), words.join(", "))
}

/// The runtime's `double::reduce_any(ax, large)`: (r, octant) of the f64 register `ax`
/// = |x|, by the short reduction, replaced by [`reduce_large`]'s where `ax ≥ large`
/// (NaN: not taken).
pub(super) fn reduce_any(e: &mut Emitter, ax: Reg, large: f64) -> (Reg, Reg) {
    let (r, j) = F64(e).reduce_quarter_pi(ax);
    let is_large = F64(e).cmpc("ge", ax, large);
    let done = e.new_label("$L_trig_done");
    e.ins(format_args!("@!{is_large} bra {done}"));
    let (lr, lj) = reduce_large(e, ax);
    e.ins(format_args!("mov.b64 {r}, {lr}"));
    e.ins(format_args!("mov.b64 {j}, {lj}"));
    e.label(&done);
    (r, j)
}

/// The runtime's `reduce::reduce_large` of the f64 register `ax`.
pub(super) fn reduce_large(e: &mut Emitter, ax: Reg) -> (Reg, Reg) {
    e.declare_global(table_declaration());
    let mut d = F64(e);
    let frac_bits = d.int("and.b64", ax, "0x000FFFFFFFFFFFFF");
    let m = d.int("or.b64", frac_bits, "0x0010000000000000");
    let biased = d.int("shr.u64", ax, 52);
    let biased = d.int("and.b64", biased, "0x7FF");
    // The window skips biased − 1077 bits; in the table (one zero word first) that is
    // bit i = biased − 1013: word i >> 6, shift i & 63, for all three windows.
    let i = d.int("sub.s64", biased, 1013);
    let word = d.int("shr.u64", i, 6);
    let sh64 = d.int("and.b64", i, 63);
    let (sh, back) = (e.r(), e.r());
    e.ins(format_args!("cvt.u32.u64 {sh}, {sh64}"));
    e.ins(format_args!("sub.s32 {back}, 64, {sh}"));
    let base = e.rd();
    e.ins(format_args!("mov.u64 {base}, {TABLE}"));
    let offset = F64(e).int("shl.b64", word, 3);
    let at = F64(e).int("add.s64", base, offset);
    let words: Vec<Reg> = (0..4)
        .map(|k| {
            let (addr, w) = (F64(e).int("add.s64", at, 8 * k), e.rd());
            e.ins(format_args!("ld.const.u64 {w}, [{addr}]"));
            w
        })
        .collect();
    let window = |e: &mut Emitter, k: usize| {
        let hi = F64(e).int("shl.b64", words[k], sh);
        let lo = F64(e).int("shr.u64", words[k + 1], back);
        F64(e).int("or.b64", hi, lo)
    };
    let (w0, w1, w2) = (window(e, 0), window(e, 1), window(e, 2));
    let mut d = F64(e);
    let l0 = d.int("mul.lo.u64", m, w0);
    let (h1, l1) = (d.int("mul.hi.u64", m, w1), d.int("mul.lo.u64", m, w1));
    let (h2, l2) = (d.int("mul.hi.u64", m, w2), d.int("mul.lo.u64", m, w2));
    let limb1 = d.int("add.s64", l1, h2);
    let carry = carry_of(&mut d, "lt", limb1, l1);
    let limb2 = d.int("add.s64", l0, h1);
    let limb2 = d.int("add.s64", limb2, carry);
    let quadrant = d.int("shr.u64", limb2, 62);
    let fh = shift_or(&mut d, limb2, limb1);
    let fl = shift_or(&mut d, limb1, l2);
    // A fraction ≥ 1/2 belongs to the next multiple: take 1 − fraction (128-bit
    // negation with an explicit borrow), and negate r at the end.
    let up = d.int("shr.u64", fh, 63);
    let is_up = d.0.p();
    d.0.ins(format_args!("setp.ne.u64 {is_up}, {up}, 0"));
    let zero = d.0.rd();
    d.0.ins(format_args!("mov.b64 {zero}, 0"));
    let nl = d.int("sub.s64", zero, fl);
    let borrow = carry_of(&mut d, "ne", fl, zero);
    let nh = d.int("sub.s64", zero, fh);
    let nh = d.int("sub.s64", nh, borrow);
    let fh = d.sel(is_up, nh, fh);
    let fl = d.sel(is_up, nl, fl);
    let (lz, rest_shift) = (e.r(), e.r());
    e.ins(format_args!("clz.b64 {lz}, {fh}"));
    e.ins(format_args!("sub.s32 {rest_shift}, 64, {lz}"));
    let mut d = F64(e);
    let top_hi = d.int("shl.b64", fh, lz);
    let top_lo = d.int("shr.u64", fl, rest_shift);
    let top = d.int("or.b64", top_hi, top_lo);
    let rest = d.int("shl.b64", fl, lz);
    let head_bits = d.int("and.b64", top, "0xFFFFFFFFFFFFF800");
    let tail_bits = d.int("and.b64", top, "0x7FF");
    let [head, tail_int, rest_f] = [head_bits, tail_bits, rest].map(|b| {
        let f = d.0.rd();
        d.0.ins(format_args!("cvt.rn.f64.u64 {f}, {b}"));
        f
    });
    let rest_scaled = d.mulc(rest_f, 1.0 / 18_446_744_073_709_551_616.0);
    let tail = d.add(tail_int, rest_scaled);
    // 2^(−64−lz): the exponent field 959 − lz.
    let lz64 = d.0.rd();
    d.0.ins(format_args!("cvt.u64.u32 {lz64}, {lz}"));
    let exponent = d.0.rd();
    d.0.ins(format_args!("mov.b64 {exponent}, 959"));
    let neg_lz = d.int("sub.s64", exponent, lz64);
    let scale = d.int("shl.b64", neg_lz, 52);
    let (f_hi, f_lo) = (d.mul(head, scale), d.mul(tail, scale));
    let r_hi = d.mulc(f_hi, PIO2_HI);
    let neg_r_hi = d.neg(r_hi);
    let pio2 = d.c(PIO2_HI);
    let r_err = d.0.rd();
    d.0.ins(format_args!("fma.rn.f64 {r_err}, {f_hi}, {pio2}, {neg_r_hi}"));
    let a = d.mulc(f_hi, PIO2_LO);
    let b = d.mulc(f_lo, PIO2_HI);
    let ab = d.add(a, b);
    let low = d.add(r_err, ab);
    let r = d.add(r_hi, low);
    let neg_r = d.neg(r);
    let r = d.sel(is_up, neg_r, r);
    let q = d.int("add.s64", quadrant, up);
    let q2 = d.int("shl.b64", q, 1);
    let j = d.int("and.b64", q2, 7);
    (r, j)
}

/// 1 where `a <cc> b` (unsigned 64-bit), else 0.
fn carry_of(d: &mut F64<'_>, cc: &str, a: Reg, b: Reg) -> Reg {
    let p = d.0.p();
    d.0.ins(format_args!("setp.{cc}.u64 {p}, {a}, {b}"));
    let c = d.0.rd();
    d.0.ins(format_args!("selp.b64 {c}, 1, 0, {p}"));
    c
}

/// `(hi << 2) | (lo >> 62)`: the next 64 bits below the product's point.
fn shift_or(d: &mut F64<'_>, hi: Reg, lo: Reg) -> Reg {
    let h = d.int("shl.b64", hi, 2);
    let l = d.int("shr.u64", lo, 62);
    d.int("or.b64", h, l)
}

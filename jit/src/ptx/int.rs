//! Integer arithmetic of the typed kernels beyond single PTX instructions, each the
//! runtime's semantics bit for bit on i32 and i64 (two's complement, wrapping): floor
//! and truncating division, powers (square-and-multiply over every exponent bit, unrolled: no branch,
//! so no label per element), and the unary ops `neg`, `abs`, `sign`, `square`, `relu`.

use tensorjit_runtime::ops::UnaryOp;

use super::{Elem, Emitter, Reg};

/// The runtime's integer floor division of `a` by `b` (type `t`): toward −∞, wrapping
/// (`MIN / −1` is `MIN`), and 0 for a division by 0.
pub(super) fn floordiv(e: &mut Emitter, t: Elem, a: Reg, b: Reg) -> Reg {
    divide(e, t, (a, b), true)
}

/// The runtime's `truncdiv` of `a` by `b` (type `t`): toward zero, wrapping, by 0 gives 0.
pub(super) fn truncdiv(e: &mut Emitter, t: Elem, a: Reg, b: Reg) -> Reg {
    divide(e, t, (a, b), false)
}

/// `a / b` rounded down (`floor`) or toward zero — the divisions PTX leaves undefined
/// (by 0, `MIN / −1`) are never executed: their divisor is replaced by 1, and their
/// results (0, the wrapping negation) selected afterwards.
fn divide(e: &mut Emitter, t: Elem, (a, b): (Reg, Reg), floor: bool) -> Reg {
    let ty = t.setp();
    let SafeDivisor { safe, by0, bym1 } = safe_divisor(e, t, b);
    let q = t.reg(e);
    e.ins(format_args!("div.{ty} {q}, {a}, {safe}"));
    let q2 = if floor { round_down(e, t, (a, safe), q) } else { q };
    // By −1: the wrapping negation; by 0: 0.
    let (zero, neg, q3, q4) = (t.constant(e, false), t.reg(e), t.reg(e), t.reg(e));
    e.ins(format_args!("sub.{ty} {neg}, {zero}, {a}"));
    e.ins(format_args!("selp.{} {q3}, {neg}, {q2}, {bym1}", t.selp()));
    e.ins(format_args!("selp.{} {q4}, {zero}, {q3}, {by0}", t.selp()));
    q4
}

/// A divisor PTX's `div`/`rem` are defined for: `b`, or 1 where `b` is 0 or −1 (the
/// predicates say which).
struct SafeDivisor {
    safe: Reg,
    by0: Reg,
    bym1: Reg,
}

fn safe_divisor(e: &mut Emitter, t: Elem, b: Reg) -> SafeDivisor {
    let ty = t.setp();
    let (by0, bym1, unsafe_div) = (e.p(), e.p(), e.p());
    e.ins(format_args!("setp.eq.{ty} {by0}, {b}, 0"));
    e.ins(format_args!("setp.eq.{ty} {bym1}, {b}, -1"));
    e.ins(format_args!("or.pred {unsafe_div}, {by0}, {bym1}"));
    let (one, safe) = (t.constant(e, true), t.reg(e));
    e.ins(format_args!("selp.{} {safe}, {one}, {b}, {unsafe_div}", t.selp()));
    SafeDivisor { safe, by0, bym1 }
}

/// The truncated quotient `q` of `a` by `safe` (nonzero) rounded down: one less when the
/// remainder is nonzero and the operands' signs differ.
fn round_down(e: &mut Emitter, t: Elem, (a, safe): (Reg, Reg), q: Reg) -> Reg {
    let ty = t.setp();
    let (_, adjust) = truncated_remainder(e, t, (a, safe));
    let (less, d) = (t.reg(e), t.reg(e));
    e.ins(format_args!("sub.{ty} {less}, {q}, 1"));
    e.ins(format_args!("selp.{} {d}, {less}, {q}, {adjust}", t.selp()));
    d
}

/// `rem(a, safe)` (`safe` nonzero) and whether flooring moves it: the remainder is nonzero
/// and the operands' signs differ.
fn truncated_remainder(e: &mut Emitter, t: Elem, (a, safe): (Reg, Reg)) -> (Reg, Reg) {
    let ty = t.setp();
    let r = t.reg(e);
    e.ins(format_args!("rem.{ty} {r}, {a}, {safe}"));
    let (inexact, a_neg, b_neg, signs, adjust) = (e.p(), e.p(), e.p(), e.p(), e.p());
    e.ins(format_args!("setp.ne.{ty} {inexact}, {r}, 0"));
    e.ins(format_args!("setp.lt.{ty} {a_neg}, {a}, 0"));
    e.ins(format_args!("setp.lt.{ty} {b_neg}, {safe}, 0"));
    e.ins(format_args!("xor.pred {signs}, {a_neg}, {b_neg}"));
    e.ins(format_args!("and.pred {adjust}, {inexact}, {signs}"));
    (r, adjust)
}

/// The runtime's integer `floormod(a, b)` (type `t`): the truncated remainder (by 1 where
/// b is 0 or −1, the cases PTX leaves undefined — both give 0), plus b where flooring
/// moves it.
pub(super) fn floormod(e: &mut Emitter, t: Elem, a: Reg, b: Reg) -> Reg {
    let safe = safe_divisor(e, t, b).safe;
    let (r, adjust) = truncated_remainder(e, t, (a, safe));
    let (sum, out) = (t.reg(e), t.reg(e));
    e.ins(format_args!("add.{} {sum}, {r}, {b}", t.setp()));
    e.ins(format_args!("selp.{} {out}, {sum}, {r}, {adjust}", t.selp()));
    out
}

/// A register of type `t` holding `v` (−1, 0 or 1).
fn small(e: &mut Emitter, t: Elem, v: i8) -> Reg {
    let d = t.reg(e);
    e.ins(format_args!("mov.{} {d}, {v}", if t == Elem::I64 { "b64" } else { "b32" }));
    d
}

/// The runtime's `ipow`: `base ^ exp` by square-and-multiply, wrapping; a negative
/// exponent gives 1 for base 1, ±1 for base −1 (by the exponent's parity) and 0 for any
/// other base. Every exponent bit a non-negative exponent can have is visited (31 for
/// i32, 63 for i64): the product of the same wrapped factors, in any order, is the
/// loop's.
pub(super) fn pow(e: &mut Emitter, t: Elem, base: Reg, exp: Reg) -> Reg {
    let (ty, bits) = (t.setp(), if t == Elem::I64 { 63 } else { 31 });
    let b32 = if t == Elem::I64 { "b64" } else { "b32" };
    let mut acc = small(e, t, 1);
    let mut b = base;
    for k in 0..bits {
        let (bit, set) = (t.reg(e), e.p());
        e.ins(format_args!("and.{b32} {bit}, {exp}, {}", 1u64 << k));
        e.ins(format_args!("setp.ne.{ty} {set}, {bit}, 0"));
        let (m, next) = (t.reg(e), t.reg(e));
        e.ins(format_args!("mul.lo.{ty} {m}, {acc}, {b}"));
        e.ins(format_args!("selp.{} {next}, {m}, {acc}, {set}", t.selp()));
        acc = next;
        if k + 1 < bits {
            let sq = t.reg(e);
            e.ins(format_args!("mul.lo.{ty} {sq}, {b}, {b}"));
            b = sq;
        }
    }
    // A negative exponent: 1, ±1 or 0.
    let (one, minus_one, zero) = (small(e, t, 1), small(e, t, -1), small(e, t, 0));
    let (is_one, is_minus_one, odd_bit, odd, negative) = (e.p(), e.p(), t.reg(e), e.p(), e.p());
    e.ins(format_args!("setp.eq.{ty} {is_one}, {base}, 1"));
    e.ins(format_args!("setp.eq.{ty} {is_minus_one}, {base}, -1"));
    e.ins(format_args!("and.{b32} {odd_bit}, {exp}, 1"));
    e.ins(format_args!("setp.ne.{ty} {odd}, {odd_bit}, 0"));
    e.ins(format_args!("setp.lt.{ty} {negative}, {exp}, 0"));
    let (parity, of_minus_one, inverse, d) = (t.reg(e), t.reg(e), t.reg(e), t.reg(e));
    e.ins(format_args!("selp.{} {parity}, {minus_one}, {one}, {odd}", t.selp()));
    e.ins(format_args!("selp.{} {of_minus_one}, {parity}, {zero}, {is_minus_one}", t.selp()));
    e.ins(format_args!("selp.{} {inverse}, {one}, {of_minus_one}, {is_one}", t.selp()));
    e.ins(format_args!("selp.{} {d}, {inverse}, {acc}, {negative}", t.selp()));
    d
}

/// The runtime's integer unary op `u` (`neg`, `abs`, `sign`, `square` or `relu`) of `x`:
/// `neg` and `abs` wrap (`abs(MIN)` is `MIN`), `square` wraps.
pub(super) fn unary(e: &mut Emitter, u: UnaryOp, t: Elem, x: Reg) -> Reg {
    let ty = t.setp();
    let d = t.reg(e);
    match u {
        UnaryOp::Neg | UnaryOp::Abs => {
            let (zero, neg) = (small(e, t, 0), t.reg(e));
            e.ins(format_args!("sub.{ty} {neg}, {zero}, {x}"));
            if u == UnaryOp::Neg {
                return neg;
            }
            let p = e.p();
            e.ins(format_args!("setp.lt.{ty} {p}, {x}, 0"));
            e.ins(format_args!("selp.{} {d}, {neg}, {x}, {p}", t.selp()));
        }
        UnaryOp::Sign => {
            let (one, minus_one, zero) = (small(e, t, 1), small(e, t, -1), small(e, t, 0));
            let (pos, neg, low) = (e.p(), e.p(), t.reg(e));
            e.ins(format_args!("setp.gt.{ty} {pos}, {x}, 0"));
            e.ins(format_args!("setp.lt.{ty} {neg}, {x}, 0"));
            e.ins(format_args!("selp.{} {low}, {minus_one}, {zero}, {neg}", t.selp()));
            e.ins(format_args!("selp.{} {d}, {one}, {low}, {pos}", t.selp()));
        }
        UnaryOp::Square => e.ins(format_args!("mul.lo.{ty} {d}, {x}, {x}")),
        _ => {
            let zero = small(e, t, 0);
            e.ins(format_args!("max.{ty} {d}, {x}, {zero}"));
        }
    }
    d
}

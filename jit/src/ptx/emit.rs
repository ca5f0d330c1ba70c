//! PTX instructions for the [`Lower`] primitives: typed virtual registers (`%f` f32,
//! `%r` b32, `%p` predicates, `%rd` b64) appended to a text body. Every float op names
//! its rounding (`.rn`), which also forbids ptxas from contracting mul + add into FMA,
//! so the GPU runs the operation sequence the CPU runs — with an `fma.rn` exactly where
//! that sequence has a fused multiply-add.

use std::fmt::{self, Write};

use crate::lower::{Cc, Lower};

/// A virtual register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reg {
    F(u32),
    R(u32),
    P(u32),
    Rd(u32),
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reg::F(n) => write!(f, "%f{n}"),
            Reg::R(n) => write!(f, "%r{n}"),
            Reg::P(n) => write!(f, "%p{n}"),
            Reg::Rd(n) => write!(f, "%rd{n}"),
        }
    }
}

/// A kernel body being written.
#[derive(Default)]
pub struct Emitter {
    pub body: String,
    counts: [u32; 4],
    labels: u32,
    /// Module-scope declarations the body uses (each once), printed before the entry.
    globals: Vec<String>,
}

impl Emitter {
    fn fresh(&mut self, kind: usize) -> Reg {
        let n = self.counts[kind];
        self.counts[kind] += 1;
        match kind {
            0 => Reg::F(n),
            1 => Reg::R(n),
            2 => Reg::P(n),
            _ => Reg::Rd(n),
        }
    }
    pub fn f(&mut self) -> Reg {
        self.fresh(0)
    }
    pub fn r(&mut self) -> Reg {
        self.fresh(1)
    }
    pub fn p(&mut self) -> Reg {
        self.fresh(2)
    }
    pub fn rd(&mut self) -> Reg {
        self.fresh(3)
    }

    /// Appends one instruction (`;` and the newline are added).
    pub fn ins(&mut self, args: fmt::Arguments<'_>) {
        let _ = writeln!(self.body, "\t{args};");
    }

    /// A label name not used before in this body: `stem` and a number.
    pub fn new_label(&mut self, stem: &str) -> String {
        self.labels += 1;
        format!("{stem}_{}", self.labels)
    }

    /// Adds a module-scope declaration (a `.const` table), once however often asked.
    pub fn declare_global(&mut self, declaration: String) {
        if !self.globals.contains(&declaration) {
            self.globals.push(declaration);
        }
    }

    /// The module-scope declarations, one per line.
    pub fn globals(&self) -> String {
        self.globals.iter().map(|g| format!("{g}\n\n")).collect()
    }

    /// Appends a label.
    pub fn label(&mut self, name: &str) {
        let _ = writeln!(self.body, "{name}:");
    }

    /// The head of a counted loop: `label`, then a jump to `exit` once `i ≥ n`
    /// (unsigned 64-bit), through predicate `done`.
    pub fn loop_head(&mut self, label: &str, done: Reg, i: Reg, n: Reg, exit: &str) {
        self.label(label);
        self.ins(format_args!("setp.ge.u64 {done}, {i}, {n}"));
        self.ins(format_args!("@{done} bra {exit}"));
    }

    /// The register declarations for everything used.
    pub fn declarations(&self) -> String {
        let [f, r, p, rd] = self.counts.map(|c| c.max(1));
        format!("\t.reg .pred %p<{p}>;\n\t.reg .b32 %r<{r}>;\n\t.reg .f32 %f<{f}>;\n\t.reg .b64 %rd<{rd}>;\n")
    }

    fn op2(&mut self, op: &str, a: Reg, b: Reg, out: Reg) -> Reg {
        self.ins(format_args!("{op} {out}, {a}, {b}"));
        out
    }

    fn fop2(&mut self, op: &str, a: Reg, b: Reg) -> Reg {
        let d = self.f();
        self.op2(op, a, b, d)
    }

    fn rop2(&mut self, op: &str, a: Reg, b: Reg) -> Reg {
        let d = self.r();
        self.op2(op, a, b, d)
    }

    /// Float bit operations (`and`/`xor` of the bits): exact for every input, NaN
    /// payloads included, as the runtime's `abs`/`neg` are.
    fn fbits(&mut self, op: &str, a: Reg, mask: u32) -> Reg {
        let (bits, out) = (self.r(), self.r());
        self.ins(format_args!("mov.b32 {bits}, {a}"));
        self.ins(format_args!("{op}.b32 {out}, {bits}, 0x{mask:08X}"));
        let d = self.f();
        self.ins(format_args!("mov.b32 {d}, {out}"));
        d
    }
}

/// A PTX float literal: `0f` and the IEEE bits (exact, NaN and infinities included).
pub fn f32_literal(v: f32) -> String {
    format!("0f{:08X}", v.to_bits())
}

impl Lower for Emitter {
    type V = Reg;
    fn fconst(&mut self, v: f32) -> Reg {
        let d = self.f();
        self.ins(format_args!("mov.b32 {d}, {}", f32_literal(v)));
        d
    }
    fn iconst(&mut self, v: i32) -> Reg {
        let d = self.r();
        self.ins(format_args!("mov.b32 {d}, 0x{:08X}", v as u32));
        d
    }
    fn fadd(&mut self, a: Reg, b: Reg) -> Reg {
        self.fop2("add.rn.f32", a, b)
    }
    fn fsub(&mut self, a: Reg, b: Reg) -> Reg {
        self.fop2("sub.rn.f32", a, b)
    }
    fn fmul(&mut self, a: Reg, b: Reg) -> Reg {
        self.fop2("mul.rn.f32", a, b)
    }
    fn fdiv(&mut self, a: Reg, b: Reg) -> Reg {
        self.fop2("div.rn.f32", a, b)
    }
    fn fma(&mut self, a: Reg, b: Reg, c: Reg) -> Reg {
        let d = self.f();
        self.ins(format_args!("fma.rn.f32 {d}, {a}, {b}, {c}"));
        d
    }
    fn fdiv_moderate(&mut self, a: Reg, b: Reg) -> Reg {
        super::division::moderate(self, a, b)
    }
    fn fsqrt(&mut self, a: Reg) -> Reg {
        let d = self.f();
        self.ins(format_args!("sqrt.rn.f32 {d}, {a}"));
        d
    }
    fn fneg(&mut self, a: Reg) -> Reg {
        self.fbits("xor", a, 0x8000_0000)
    }
    fn fabs(&mut self, a: Reg) -> Reg {
        self.fbits("and", a, 0x7fff_ffff)
    }
    fn iadd(&mut self, a: Reg, b: Reg) -> Reg {
        self.rop2("add.s32", a, b)
    }
    fn isub(&mut self, a: Reg, b: Reg) -> Reg {
        self.rop2("sub.s32", a, b)
    }
    fn band(&mut self, a: Reg, b: Reg) -> Reg {
        self.rop2("and.b32", a, b)
    }
    fn bor(&mut self, a: Reg, b: Reg) -> Reg {
        self.rop2("or.b32", a, b)
    }
    fn sshr(&mut self, a: Reg, n: u8) -> Reg {
        let d = self.r();
        self.ins(format_args!("shr.s32 {d}, {a}, {n}"));
        d
    }
    fn shl(&mut self, a: Reg, n: u8) -> Reg {
        let d = self.r();
        self.ins(format_args!("shl.b32 {d}, {a}, {n}"));
        d
    }
    fn bits_of(&mut self, x: Reg) -> Reg {
        let d = self.r();
        self.ins(format_args!("mov.b32 {d}, {x}"));
        d
    }
    fn float_of(&mut self, x: Reg) -> Reg {
        let d = self.f();
        self.ins(format_args!("mov.b32 {d}, {x}"));
        d
    }
    fn int_to_float(&mut self, x: Reg) -> Reg {
        let d = self.f();
        self.ins(format_args!("cvt.rn.f32.s32 {d}, {x}"));
        d
    }
    fn fcmp(&mut self, cc: Cc, a: Reg, b: Reg) -> Reg {
        let op = match cc {
            Cc::Eq => "eq",
            Cc::Ne => "neu",
            Cc::Lt => "lt",
            Cc::Le => "le",
            Cc::Gt => "gt",
            Cc::Ge => "ge",
            Cc::Unordered => "nan",
        };
        let d = self.p();
        self.ins(format_args!("setp.{op}.f32 {d}, {a}, {b}"));
        d
    }
    fn mask_or(&mut self, a: Reg, b: Reg) -> Reg {
        let d = self.p();
        self.op2("or.pred", a, b, d)
    }
    fn sel(&mut self, mask: Reg, a: Reg, b: Reg) -> Reg {
        let d = self.f();
        self.ins(format_args!("selp.f32 {d}, {a}, {b}, {mask}"));
        d
    }
    fn sel_int(&mut self, mask: Reg, a: Reg, b: Reg) -> Reg {
        let d = self.r();
        self.ins(format_args!("selp.b32 {d}, {a}, {b}, {mask}"));
        d
    }
}

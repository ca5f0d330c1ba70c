//! The fused-kernel IR: what the planner hands the code generators. One kernel is a
//! loop nest over `rows × cols` elements (the output shape with its last dim as `cols`)
//! computing a small SSA list of f32 expressions per element. Inputs are read with an
//! access pattern that covers the broadcasts elementwise chains meet in practice.
//!
//! ```text
//! kernel rows=1 cols=64
//!   in0 full, in1 full
//!   e0 = in0
//!   e1 = in1
//!   e2 = mul e0, e1
//!   e3 = add e2, 0.5
//!   …
//!   out0 = e9
//! ```

use std::fmt;
use std::hash::{Hash, Hasher};

use tensorjit_runtime::ops::{BinaryOp, UnaryOp};

/// How a kernel input is indexed at element (r, c).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Access {
    /// `[r·cols + c]`: the input has the output's shape.
    Full,
    /// `[c]`: one row broadcast down the rows (a bias).
    Row,
    /// `[r]`: one value per row broadcast along it.
    Col,
    /// `[0]`: one value for all.
    Scalar,
}

/// One expression of a kernel (an index into the kernel's list names it).
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Input(usize),
    Const(f32),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
    /// A comparison: a lane mask, usable only by `Select` (never a kernel output).
    Cmp(BinaryOp, usize, usize),
    /// `mask ? a : b` (`where`).
    Select(usize, usize, usize),
}

/// A fused elementwise kernel, optionally ending in a reduction along its rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Kernel {
    pub inputs: Vec<Access>,
    pub exprs: Vec<Expr>,
    /// Expressions written out (each to its own `rows × cols` buffer).
    pub outputs: Vec<usize>,
    /// An expression summed along each row (its producers fused in), written to one
    /// more buffer of `rows` values after the full outputs.
    pub reduce: Option<RowReduce>,
}

/// A row reduction a kernel ends in: the runtime's canonical order (eight lane
/// accumulators, lanes combined `((l0+l4)+(l2+l6))+((l1+l5)+(l3+l7))`) over rows of at
/// most [`ROW_REDUCE_MAX`] elements (one canonical block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RowReduce {
    pub expr: usize,
    /// Divide each sum by the row length (`mean`).
    pub mean: bool,
}

/// The longest row a kernel reduces (the canonical block: longer rows are summed by
/// blocks and a pairwise tree, which the eager kernel does).
pub const ROW_REDUCE_MAX: usize = 4096;

/// The unary ops kernels compute, with exactly the runtime's f32 algorithms.
pub fn fusible_unary(u: UnaryOp) -> bool {
    use UnaryOp::*;
    matches!(u, Neg | Abs | Sign | Square | Relu | Sqrt | Rsqrt | Exp | Log | Tanh | Sigmoid | Softplus)
}

/// The binary ops kernels compute.
pub fn fusible_binary(b: BinaryOp) -> bool {
    use BinaryOp::*;
    matches!(b, Add | Sub | Mul | Div | Maximum | Minimum)
}

impl Kernel {
    /// A hash of what the kernel computes (constants by their bits): with
    /// [`same_as`](Self::same_as), the key of compiled-code caches, without rendering
    /// the kernel's text on every launch.
    pub fn fingerprint(&self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.inputs.hash(&mut h);
        self.outputs.hash(&mut h);
        self.reduce.hash(&mut h);
        for e in &self.exprs {
            std::mem::discriminant(e).hash(&mut h);
            match *e {
                Expr::Input(i) => i.hash(&mut h),
                Expr::Const(v) => v.to_bits().hash(&mut h),
                Expr::Unary(u, a) => (u, a).hash(&mut h),
                Expr::Binary(b, x, y) | Expr::Cmp(b, x, y) => (b, x, y).hash(&mut h),
                Expr::Select(m, a, b) => (m, a, b).hash(&mut h),
            }
        }
        h.finish()
    }

    /// Whether `other` computes exactly the same (constants compared by their bits, so
    /// a kernel with a NaN constant is the same as itself).
    pub fn same_as(&self, other: &Kernel) -> bool {
        self.inputs == other.inputs
            && self.outputs == other.outputs
            && self.reduce == other.reduce
            && self.exprs.len() == other.exprs.len()
            && self.exprs.iter().zip(&other.exprs).all(|(a, b)| match (a, b) {
                (Expr::Const(x), Expr::Const(y)) => x.to_bits() == y.to_bits(),
                _ => a == b,
            })
    }

    /// Checks that `lens` (the lengths of the input buffers, in order) are what the
    /// access patterns read over `rows × cols` (what a launcher must guarantee).
    pub fn check_input_lens(&self, lens: &[usize], rows: usize, cols: usize) -> Result<(), String> {
        if lens.len() != self.inputs.len() {
            return Err(format!("kernel has {} inputs, {} given", self.inputs.len(), lens.len()));
        }
        for (i, (a, &len)) in self.inputs.iter().zip(lens).enumerate() {
            let need = match a {
                Access::Full => rows * cols,
                Access::Row => cols,
                Access::Col => rows,
                Access::Scalar => 1,
            };
            if len != need {
                return Err(format!("kernel input {i} ({a:?}) needs {need} values, got {len}"));
            }
        }
        Ok(())
    }

    /// This kernel for targets that reduce in a second pass: the row reduction's
    /// expression written out as one more full output, and the reduction taken off.
    pub fn reduce_as_output(&self) -> (Kernel, Option<RowReduce>) {
        let mut k = self.clone();
        let reduce = k.reduce.take();
        if let Some(r) = reduce {
            k.outputs.push(r.expr);
        }
        (k, reduce)
    }

    /// Vectors per loop trip: 2 for cheap kernels (more loads in flight), 1 when a
    /// transcendental's constants and temporaries already fill the registers.
    pub fn unroll(&self) -> usize {
        let heavy = self.exprs.iter().any(|e| {
            matches!(e, Expr::Unary(u, _) if matches!(u, UnaryOp::Exp | UnaryOp::Log | UnaryOp::Tanh | UnaryOp::Sigmoid | UnaryOp::Softplus))
        });
        if heavy {
            1
        } else {
            2
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ins: Vec<String> =
            self.inputs.iter().enumerate().map(|(i, a)| format!("in{i} {}", format!("{a:?}").to_lowercase())).collect();
        writeln!(f, "kernel({})", ins.join(", "))?;
        for (i, e) in self.exprs.iter().enumerate() {
            let rhs = match e {
                Expr::Input(k) => format!("in{k}"),
                Expr::Const(v) => format!("{v:?}"),
                Expr::Unary(u, a) => format!("{} e{a}", u.name()),
                Expr::Binary(b, x, y) | Expr::Cmp(b, x, y) => format!("{} e{x}, e{y}", b.name()),
                Expr::Select(m, a, b) => format!("where e{m}, e{a}, e{b}"),
            };
            writeln!(f, "  e{i} = {rhs}")?;
        }
        let outs: Vec<String> = self.outputs.iter().map(|o| format!("e{o}")).collect();
        let mut last = Vec::new();
        if !outs.is_empty() {
            last.push(format!("  out {}", outs.join(", ")));
        }
        if let Some(RowReduce { expr, mean }) = self.reduce {
            last.push(format!("  out {} e{expr} per row", if mean { "mean" } else { "sum" }));
        }
        write!(f, "{}", last.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affine(scale: f32, offset: f32) -> Kernel {
        Kernel {
            inputs: vec![Access::Full],
            exprs: vec![
                Expr::Input(0),
                Expr::Const(scale),
                Expr::Binary(BinaryOp::Mul, 0, 1),
                Expr::Const(offset),
                Expr::Binary(BinaryOp::Add, 2, 3),
            ],
            outputs: vec![4],
            reduce: None,
        }
    }

    #[test]
    fn the_cache_key_tells_kernels_apart_by_every_constant_and_op() {
        let k = affine(2.0, 1.0);
        assert!(k.same_as(&affine(2.0, 1.0)));
        assert_eq!(k.fingerprint(), affine(2.0, 1.0).fingerprint());
        for other in [affine(2.0, 1.5), affine(-2.0, 1.0), affine(2.0, -0.0)] {
            assert!(!k.same_as(&other), "{other}");
            assert_ne!(k.fingerprint(), other.fingerprint(), "{other}");
        }
        let mut sub = affine(2.0, 1.0);
        sub.exprs[4] = Expr::Binary(BinaryOp::Sub, 2, 3);
        assert!(!k.same_as(&sub));
        let mut broadcast = affine(2.0, 1.0);
        broadcast.inputs[0] = Access::Row;
        assert!(!k.same_as(&broadcast) && k.fingerprint() != broadcast.fingerprint());
        // A NaN constant: the same kernel as itself (a cache hit, not a new entry).
        let nan = affine(f32::NAN, 1.0);
        assert!(nan.same_as(&nan.clone()));
        assert_eq!(nan.fingerprint(), nan.clone().fingerprint());
    }
}

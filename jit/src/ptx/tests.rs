//! The renderer's structure (assembly by ptxas and golden texts are in tests/ptx.rs).

use tensorjit_runtime::ops::{BinaryOp, UnaryOp};

use super::*;
use crate::kernel::Expr;

fn axpy() -> Kernel {
    Kernel {
        inputs: vec![Access::Full, Access::Scalar, Access::Full],
        exprs: vec![
            Expr::Input(0),
            Expr::Input(1),
            Expr::Binary(BinaryOp::Mul, 0, 1),
            Expr::Input(2),
            Expr::Binary(BinaryOp::Add, 2, 3),
        ],
        outputs: vec![4],
        reduce: None,
    }
}

/// Products and sums stay separate roundings (an FMA appears only where the algorithm
/// has one: the transcendentals' polynomials, `tests::transcendental_polynomials_fuse`).
#[test]
fn float_arithmetic_is_rounded_and_never_contracted() {
    let text = render_kernel(&axpy(), "axpy");
    assert!(text.contains("mul.rn.f32") && text.contains("add.rn.f32"), "{text}");
    assert!(!text.contains("fma") && !text.contains("mad.f32"), "{text}");
    assert!(text.contains(".target sm_80"));
}

/// Every `mul_add` of the runtime's algorithms is one `fma.rn`: per element 9 in `exp`
/// (the magic-number rounding, the two-part reduction, 5 Horner steps, the last
/// `p·z + r`), 11 in `log` (8 Horner steps, three terms of the result), and in `tanh` its
/// `exp`'s 9, 4 Horner steps, the odd polynomial's last step and the 4 of its division
/// (`division::moderate`). The kernel holds 5 copies of the element's code (a 4-wide
/// vector loop and the scalar tail).
#[test]
fn transcendental_polynomials_fuse() {
    for (op, per_element) in [(UnaryOp::Exp, 9), (UnaryOp::Log, 11), (UnaryOp::Tanh, 18)] {
        let k = Kernel {
            inputs: vec![Access::Full],
            exprs: vec![Expr::Input(0), Expr::Unary(op, 0)],
            outputs: vec![1],
            reduce: None,
        };
        let text = render_kernel(&k, "k");
        assert_eq!(text.matches("fma.rn.f32").count(), 5 * per_element, "{}", op.name());
    }
}

#[test]
fn full_and_scalar_inputs_get_the_vector_loop_broadcasts_do_not() {
    let text = render_kernel(&axpy(), "axpy");
    assert!(text.contains("ld.global.nc.v4.f32") && text.contains("st.global.v4.f32"), "{text}");
    // The scalar is loaded once, before the loops.
    let first_loop = text.find("$L_vec:").unwrap_or(0);
    assert!(text[..first_loop].contains("ld.global.nc.f32"), "{text}");
    let bias = Kernel {
        inputs: vec![Access::Full, Access::Row],
        exprs: vec![Expr::Input(0), Expr::Input(1), Expr::Binary(BinaryOp::Add, 0, 1), Expr::Unary(UnaryOp::Relu, 2)],
        outputs: vec![3],
        reduce: None,
    };
    let text = render_kernel(&bias, "bias_relu");
    assert!(!text.contains(".v4.") && text.contains("rem.u64"), "{text}");
    // Row and column are divided out once per thread, not per element.
    let body = &text[text.find("$L_elem:").unwrap_or(0)..];
    assert!(!body.contains("div.u64") && !body.contains("rem.u64"), "{text}");
}

#[test]
fn constants_are_exact_bit_literals() {
    assert_eq!(f32_literal(1.0), "0f3F800000");
    assert_eq!(f32_literal(f32::NEG_INFINITY), "0fFF800000");
    assert_eq!(f32_literal(-0.0), "0f80000000");
}

#[test]
fn reductions_shuffle_within_warps_then_across_them() {
    let text = render_row_reduce(RowReduce::Sum, "row_sum");
    assert_eq!(text.matches("shfl.sync.down.b32").count(), 5 + 3, "{text}");
    assert!(text.contains(".reqntid 256, 1, 1") && text.contains(".shared .align 4 .f32 row_sum_partial[8]"), "{text}");
    assert!(text.contains("bar.sync 0"));
}

//! Differential fuzzing of the two code generators (proptest): random well-typed fused
//! kernels — every fusible unary and binary op, comparisons and selects, constants, all
//! four access patterns, odd shapes that leave vector tails — rendered to PTX and run
//! on the PTX interpreter, against the same kernels compiled by Cranelift and run on
//! the CPU. Their results must be the same bits (any NaN for NaN): one lowering
//! (`jit/src/lower`), two targets. And whole random traced functions (fused kernels,
//! row sums and means, broadcasts) run as device plans whose every kernel is PTX on
//! the interpreter, against the CPU's traced call.

mod common;

use common::dags::{apply, inputs, step as dag_step};
use common::emulated::emulated_plan;
use common::{f32s, rand_vec};
use proptest::prelude::*;
use tensorjit::ops::{BinaryOp, UnaryOp};
use tensorjit::prelude::*;
use tensorjit::trace::backend::Executable;
use tensorjit_jit::codegen::run_on_host;
use tensorjit_jit::kernel::{fusible_binary, fusible_unary, Access, Expr, Kernel};

const ACCESS: [Access; 4] = [Access::Full, Access::Row, Access::Col, Access::Scalar];
const CMP: [BinaryOp; 6] = [BinaryOp::Eq, BinaryOp::Ne, BinaryOp::Lt, BinaryOp::Le, BinaryOp::Gt, BinaryOp::Ge];

/// One step of a kernel: (kind, op choice, operand choices, a constant).
type Step = (u8, usize, usize, usize, usize, f32);

/// The kernel the steps describe: operands are picked (modulo) among the expressions
/// before them of the right type — floats for arithmetic, lane masks for selects.
fn build(inputs: &[Access], steps: &[Step], extra_outputs: &[usize]) -> Kernel {
    let unary: Vec<UnaryOp> = UnaryOp::ALL.into_iter().filter(|u| fusible_unary(*u)).collect();
    let binary: Vec<BinaryOp> = BinaryOp::ALL.into_iter().filter(|b| fusible_binary(*b)).collect();
    let mut exprs: Vec<Expr> = (0..inputs.len()).map(Expr::Input).collect();
    let mut mask = vec![false; inputs.len()];
    for &(kind, op, a, b, c, v) in steps {
        let floats: Vec<usize> = (0..exprs.len()).filter(|&i| !mask[i]).collect();
        let masks: Vec<usize> = (0..exprs.len()).filter(|&i| mask[i]).collect();
        let f = |x: usize| floats[x % floats.len()];
        let (e, is_mask) = match kind % 7 {
            0 | 1 => (Expr::Unary(unary[op % unary.len()], f(a)), false),
            2 | 3 => (Expr::Binary(binary[op % binary.len()], f(a), f(b)), false),
            4 => (Expr::Cmp(CMP[op % CMP.len()], f(a), f(b)), true),
            5 if !masks.is_empty() => (Expr::Select(masks[c % masks.len()], f(a), f(b)), false),
            _ => (Expr::Const(v), false),
        };
        exprs.push(e);
        mask.push(is_mask);
    }
    let floats: Vec<usize> = (0..exprs.len()).filter(|&i| !mask[i]).collect();
    let mut outputs = vec![*floats.last().expect("inputs are floats")];
    for &o in extra_outputs {
        let pick = floats[o % floats.len()];
        if !outputs.contains(&pick) {
            outputs.push(pick);
        }
    }
    Kernel { inputs: inputs.to_vec(), exprs, outputs, reduce: None }
}

/// An input's elements for its access pattern over `rows × cols`: random, with the
/// special values mixed in (signed zeros, infinities, NaN, a subnormal, ties).
fn data(seed: u64, access: Access, rows: usize, cols: usize) -> Vec<f32> {
    let n = match access {
        Access::Full => rows * cols,
        Access::Row => cols,
        Access::Col => rows,
        Access::Scalar => 1,
    };
    let mut v: Vec<f32> = rand_vec(seed, n, -6.0, 6.0).into_iter().map(|x| x as f32).collect();
    let specials = [0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40, 1.0, -2.5];
    for (i, s) in specials.iter().enumerate() {
        if seed.is_multiple_of(3) && i * 5 < n {
            v[i * 5] = *s;
        }
    }
    v
}

fn step() -> impl Strategy<Value = Step> {
    (any::<u8>(), 0usize..64, 0usize..64, 0usize..64, 0usize..64, -4.0f32..4.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn random_kernels_give_the_same_bits_on_the_ptx_interpreter_and_cranelift(
        access in prop::collection::vec(0usize..4, 1..4),
        steps in prop::collection::vec(step(), 1..14),
        extra in prop::collection::vec(0usize..64, 0..3),
        rows in 1usize..6,
        cols in 1usize..41,
        seed in any::<u64>(),
    ) {
        let inputs: Vec<Access> = access.iter().map(|&a| ACCESS[a]).collect();
        let k = build(&inputs, &steps, &extra);
        let values: Vec<Vec<f32>> =
            inputs.iter().enumerate().map(|(i, &a)| data(seed.wrapping_add(i as u64), a, rows, cols)).collect();
        let refs: Vec<&[f32]> = values.iter().map(Vec::as_slice).collect();
        let cpu = run_on_host(&k, &refs, rows, cols).expect("Cranelift compiles and runs the kernel");
        let ptx = common::emulated::emulate(&k, &values, rows, cols, 2);
        for (o, (p, c)) in ptx.iter().zip(&cpu).enumerate() {
            for (i, (a, b)) in p.iter().zip(c).enumerate() {
                prop_assert!(
                    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                    "output {} element {}: PTX {:e} vs Cranelift {:e}\n{:?}", o, i, a, b, k
                );
            }
        }
    }

    #[test]
    fn random_traced_functions_as_ptx_device_plans_give_the_cpus_bits(
        steps in prop::collection::vec(dag_step(), 1..10),
        seed in any::<u64>(),
        bias_row in any::<bool>(),
        shape in 0usize..3,
        reduce in 0usize..3,
    ) {
        let (r, c) = [(3, 37), (1, 130), (9, 12)][shape];
        let args = inputs(seed, bias_row, (r, c));
        let s = steps.clone();
        let func = tensorjit::function("dag", move |v: Vec<Tensor>| apply(&s, &v, reduce));
        let cpu = func.call(args.clone());
        let plan = emulated_plan(&func.concrete_functions()[0].graph);
        let out = plan.run(&[&args[0], &args[1]], &[]).expect("the plan runs");
        for (i, (a, b)) in f32s(&out[0]).iter().zip(f32s(&cpu).iter()).enumerate() {
            prop_assert!(
                a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                "element {}: PTX plan {:e} vs CPU {:e}", i, a, b
            );
        }
    }
}

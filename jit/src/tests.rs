//! Kernel-level checks: compiled kernels against the runtime's eager ops, bit for bit.

use tensorjit_runtime::ops::{BinaryOp, UnaryOp};
use tensorjit_runtime::Tensor;

use crate::codegen::{compile, KernelFn};
use crate::kernel::{Access, Expr, Kernel};

fn rand(seed: u64, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
        })
        .collect()
}

/// Runs a one-output kernel over `rows × cols` with the given input buffers.
fn run(f: KernelFn, inputs: &[&[f32]], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; rows * cols];
    let mut ptrs: Vec<*mut f32> = inputs.iter().map(|x| x.as_ptr() as *mut f32).collect();
    ptrs.push(out.as_mut_ptr());
    // SAFETY: the buffers match the kernel's inputs and output for rows × cols.
    unsafe { f(ptrs.as_ptr(), rows as i64, cols as i64) };
    out
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn every_fused_unary_op_matches_the_eager_kernel_bit_for_bit() {
    let ops = [
        (UnaryOp::Neg, -5.0, 5.0),
        (UnaryOp::Abs, -5.0, 5.0),
        (UnaryOp::Square, -5.0, 5.0),
        (UnaryOp::Relu, -5.0, 5.0),
        (UnaryOp::Sqrt, 0.0, 50.0),
        (UnaryOp::Rsqrt, 0.0, 50.0),
        (UnaryOp::Sign, -5.0, 5.0),
        (UnaryOp::Exp, -110.0, 95.0),
        (UnaryOp::Log, 0.0, 1e6),
        (UnaryOp::Tanh, -12.0, 12.0),
        (UnaryOp::Sigmoid, -30.0, 30.0),
        (UnaryOp::Softplus, -30.0, 30.0),
    ];
    for (k, (u, lo, hi)) in ops.into_iter().enumerate() {
        let kernel = Kernel {
            inputs: vec![Access::Full],
            exprs: vec![Expr::Input(0), Expr::Unary(u, 0)],
            outputs: vec![1],
            reduce: None,
        };
        let (_m, fns) = compile(&[kernel]).unwrap();
        for n in [1usize, 3, 50, 783, 4096] {
            let mut x = rand(k as u64 * 31 + n as u64, n, lo, hi);
            if n > 8 {
                // Special values: zeros, infinities, NaN, subnormals.
                x[..6].copy_from_slice(&[0.0, -0.0, f32::INFINITY, f32::NEG_INFINITY, f32::NAN, 1e-40]);
            }
            let got = run(fns[0], &[&x], 1, n);
            let t = Tensor::from_vec(x.clone(), [n]).unwrap();
            let want = match u {
                UnaryOp::Neg => t.neg(),
                UnaryOp::Abs => t.abs(),
                UnaryOp::Square => t.square(),
                UnaryOp::Relu => t.relu(),
                UnaryOp::Sqrt => t.sqrt(),
                UnaryOp::Rsqrt => t.rsqrt(),
                UnaryOp::Sign => t.sign(),
                UnaryOp::Exp => t.exp(),
                UnaryOp::Log => t.log(),
                UnaryOp::Tanh => t.tanh(),
                UnaryOp::Sigmoid => t.sigmoid(),
                UnaryOp::Softplus => t.softplus(),
                _ => unreachable!(),
            };
            assert_eq!(bits(&got), bits(&want.to_vec::<f32>().unwrap()), "{} n={n}", u.name());
        }
    }
}

#[test]
fn binary_ops_with_row_col_and_scalar_broadcasts_match() {
    let (rows, cols) = (5, 13);
    for (k, op) in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Minimum]
        .into_iter()
        .enumerate()
    {
        let full = rand(100 + k as u64, rows * cols, -3.0, 3.0);
        for (access, shape) in [
            (Access::Full, vec![rows, cols]),
            (Access::Row, vec![cols]),
            (Access::Col, vec![rows, 1]),
            (Access::Scalar, vec![]),
        ] {
            let n: usize = shape.iter().product();
            let mut other = rand(200 + k as u64, n, -3.0, 3.0);
            if n > 2 {
                other[0] = 0.0;
                other[1] = f32::NAN;
            }
            let kernel = Kernel {
                inputs: vec![Access::Full, access],
                exprs: vec![Expr::Input(0), Expr::Input(1), Expr::Binary(op, 0, 1)],
                outputs: vec![2],
                reduce: None,
            };
            let (_m, fns) = compile(&[kernel]).unwrap();
            let got = run(fns[0], &[&full, &other], rows, cols);
            let a = Tensor::from_vec(full.clone(), [rows, cols]).unwrap();
            let b = Tensor::from_vec(other.clone(), shape.clone()).unwrap();
            let want = match op {
                BinaryOp::Add => &a + &b,
                BinaryOp::Sub => &a - &b,
                BinaryOp::Mul => &a * &b,
                BinaryOp::Div => &a / &b,
                BinaryOp::Maximum => a.maximum(&b),
                BinaryOp::Minimum => a.minimum(&b),
                _ => unreachable!(),
            };
            assert_eq!(bits(&got), bits(&want.to_vec::<f32>().unwrap()), "{} {access:?}", op.name());
        }
    }
}

fn traced_graph(
    f: impl Fn(Vec<Tensor>) -> Tensor + Send + Sync + 'static,
    args: Vec<Tensor>,
) -> tensorjit_runtime::ir::Graph {
    let func = tensorjit_runtime::function("g", f);
    func.call(args);
    func.concrete_functions()[0].graph.clone()
}

/// The plan of W2 (`tanh(x·y + 0.5)·sigmoid(x − y) + relu(x)`) traced on fresh inputs.
fn w2_plan(seed: u64) -> crate::plan::Plan {
    let x = Tensor::from_vec(rand(seed, 64, -2.0, 2.0), [64]).unwrap();
    let y = Tensor::from_vec(rand(seed + 1, 64, -2.0, 2.0), [64]).unwrap();
    let g = traced_graph(|v| (&v[0] * &v[1] + 0.5).tanh() * (&v[0] - &v[1]).sigmoid() + v[0].relu(), vec![x, y]);
    crate::plan::plan(&g).unwrap()
}

#[test]
fn the_w2_chain_is_one_kernel() {
    let p = w2_plan(1);
    assert_eq!(p.kernels.len(), 1, "{:?}", p.steps);
    assert_eq!(p.steps.len(), 1);
    println!("{}", p.kernels[0]);
}

/// Scalars computed between the steps of an elementwise chain (an optimizer's bias
/// corrections) go to a side kernel: the chain stays one kernel, and the traced call
/// equals the eager one bit for bit.
#[test]
fn scalars_computed_mid_chain_do_not_cut_it() {
    let x = Tensor::from_vec(rand(5, 96, -2.0, 2.0), [8, 12]).unwrap();
    let t = Tensor::from_vec(rand(6, 1, 1.0, 5.0), [1]).unwrap();
    let body = |v: &[Tensor]| {
        let (x, t) = (&v[0], &v[1]);
        let a = x * 0.9;
        let s1 = 1.0f64 - t.exp() * 0.5; // scalar
        let b = &a * &s1;
        let s2 = (1.0f64 - &s1).sqrt(); // scalar, reads the first
        let c = (&b + &(x * &s2)).tanh();
        &c / &(1.0f64 - &s2)
    };
    let eager = body(&[x.clone(), t.clone()]);
    let g = traced_graph(move |v| body(&v), vec![x.clone(), t.clone()]);
    let p = crate::plan::plan(&g).unwrap();
    let shapes: Vec<(usize, usize)> = p
        .steps
        .iter()
        .filter_map(|s| if let crate::plan::Step::Kernel { rows, cols, .. } = s { Some((*rows, *cols)) } else { None })
        .collect();
    assert_eq!(shapes, [(1, 1), (8, 12)], "one scalar kernel before one chain kernel: {:?}", p.steps);
    let f = tensorjit_runtime::function("mid_chain", move |v: Vec<Tensor>| body(&v));
    assert_eq!(bits(&f.call(vec![x, t]).to_vec::<f32>().unwrap()), bits(&eager.to_vec::<f32>().unwrap()));
}

/// `broadcast_to` operands of elementwise ops (a scalar loss gradient spread over a
/// weight) are read at their source: no materialised copy, the same bits.
#[test]
fn broadcast_operands_are_not_materialised() {
    let x = Tensor::from_vec(rand(7, 60, -2.0, 2.0), [5, 12]).unwrap();
    let s = Tensor::from_vec(rand(8, 1, 0.5, 2.0), [1, 1]).unwrap();
    let row = Tensor::from_vec(rand(9, 12, -1.0, 1.0), [12]).unwrap();
    let body = |v: &[Tensor]| {
        let spread = v[1].broadcast_to([5, 12]);
        let rows = v[2].broadcast_to([5, 12]);
        (&v[0] * &spread - &rows).tanh() + &spread
    };
    let args = vec![x, s, row];
    let eager = body(&args);
    let g = crate::passes::optimize(&traced_graph(move |v| body(&v), args.clone())).unwrap();
    assert!(!g.to_string().contains("broadcast_to"), "{g}");
    let f = tensorjit_runtime::function("spread", move |v: Vec<Tensor>| body(&v));
    assert_eq!(bits(&f.call(args).to_vec::<f32>().unwrap()), bits(&eager.to_vec::<f32>().unwrap()));
}

/// An optimizer's slot assigned before the weight's update reads it: the assignment
/// waits for the kernel, which computes both (one pass over the weight); a later read
/// of the slot sees the new value; traced == eager.
#[test]
fn a_slot_and_its_weight_update_in_one_kernel() {
    use tensorjit_runtime::Variable;
    crate::install();
    let run = |eager: bool| {
        let w = Variable::new(Tensor::from_vec(rand(11, 48, -1.0, 1.0), [6, 8]).unwrap(), "w");
        let v = Variable::new(Tensor::from_vec(rand(12, 48, -1.0, 1.0), [6, 8]).unwrap(), "v");
        let (w2, v2) = (w.clone(), v.clone());
        let f = tensorjit_runtime::function("update", move |g: Tensor| {
            let lr = (Tensor::scalar(0.5f32) * 0.2).sqrt(); // a scalar computed first
            let new_v = &v2.read() * 0.9 + &g;
            v2.assign(&new_v);
            w2.assign(&w2.read() - &(&new_v * &lr));
            v2.read() * 2.0
        })
        .with_run_eagerly(eager);
        let out = f.call(Tensor::from_vec(rand(13, 48, -1.0, 1.0), [6, 8]).unwrap());
        let plan = f.concrete_functions().first().map(|c| c.compiled_text()).unwrap_or_default();
        (w.read().to_vec::<f32>().unwrap(), v.read().to_vec::<f32>().unwrap(), out.to_vec::<f32>().unwrap(), plan)
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(bits(&eager.0), bits(&traced.0));
    assert_eq!(bits(&eager.1), bits(&traced.1));
    assert_eq!(bits(&traced.2), bits(&traced.1.iter().map(|x| x * 2.0).collect::<Vec<_>>()), "the read after");
    let plan = traced.3.split("plan:").nth(1).unwrap_or_default();
    assert_eq!(plan.matches("[6x8]").count(), 2, "the update, then the doubled read:\n{plan}");
    let kernel = plan.find("[6x8]").unwrap_or(0);
    let assign_v = plan.find("assign_variable @1").or(plan.find("assign_variable @0")).unwrap_or(0);
    assert!(assign_v > kernel, "assignments after the kernel:\n{plan}");
}

#[test]
fn the_w2_kernel_is_cut_at_its_two_transcendentals() {
    use crate::staged::{Loc, Stage, Staged};
    let p = w2_plan(3);
    let st = Staged::split(&p.kernels[0]).unwrap();
    let calls: Vec<UnaryOp> =
        st.stages.iter().filter_map(|s| if let Stage::Call { op, .. } = s { Some(*op) } else { None }).collect();
    assert_eq!(calls, vec![UnaryOp::Tanh, UnaryOp::Sigmoid], "{st:#?}");
    // Both arguments computed before the first call; the last stage combines and
    // writes the one output.
    assert_eq!(st.stages.len(), 4, "{st:#?}");
    assert!(matches!(st.stages.last(), Some(Stage::Jit { writes, .. }) if writes == &[Loc::Out(0)]), "{st:#?}");
    assert!(st.n_temps <= 4, "{st:#?}");
    // A kernel without transcendentals runs whole.
    let plain = Kernel {
        inputs: vec![Access::Full],
        exprs: vec![Expr::Input(0), Expr::Unary(UnaryOp::Relu, 0)],
        outputs: vec![1],
        reduce: None,
    };
    assert!(Staged::split(&plain).is_none());
}

//! The PTX renderer's output is real PTX: every fusible op, every access pattern, the
//! row reductions and the fused kernels of the workloads and examples are assembled by
//! NVIDIA's `ptxas` for sm_90 (H100) and sm_80, and two small kernels are pinned as
//! golden text (`TENSORJIT_BLESS=1` rewrites them).
//!
//! `ptxas` is found through `$PTXAS` (`.ci/run` sets it to the ptxas of the PyPI package
//! `nvidia-cuda-nvcc-cu12`, which runs on machines without a GPU, installed into the
//! git-ignored `.tools/venv`), then `PATH`, then `.tools/nvcc`. When none is found, the
//! test installs that package into `.tools/nvcc` with pip; if that fails too, the tests
//! fail saying how to get one — they never pass silently. Set `TENSORJIT_SKIP_PTXAS=1`
//! to skip the assembly checks explicitly.

mod common;
#[path = "../benches/common/mod.rs"]
mod workloads;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{golden_file, kernels_of};
use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::ops::{BinaryOp, UnaryOp};
use tensorjit::prelude::*;
use tensorjit_jit::kernel::{Access, Expr, Kernel};
use tensorjit_jit::ptx::{
    render_col2im, render_col_reduce, render_im2col, render_kernel, render_row_reduce, Elem, RowReduce,
};

const PACKAGE: &str = "nvidia-cuda-nvcc-cu12";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tools_ptxas() -> PathBuf {
    repo().join(".tools/nvcc/nvidia/cuda_nvcc/bin/ptxas")
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The ptxas to use, `None` when skipping was asked for; panics with instructions when
/// none can be had.
fn ptxas() -> Option<&'static Path> {
    static FOUND: OnceLock<Result<Option<PathBuf>, String>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        if std::env::var_os("TENSORJIT_SKIP_PTXAS").is_some_and(|v| v != "0") {
            eprintln!("TENSORJIT_SKIP_PTXAS is set: PTX is rendered but not assembled");
            return Ok(None);
        }
        if let Some(p) = std::env::var_os("PTXAS").map(PathBuf::from).filter(|p| p.is_file()) {
            return Ok(Some(p));
        }
        if let Some(p) = on_path("ptxas").or_else(|| Some(tools_ptxas()).filter(|p| p.is_file())) {
            return Ok(Some(p));
        }
        eprintln!("ptxas not found: installing {PACKAGE} into .tools/nvcc with pip");
        let target = repo().join(".tools/nvcc");
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
            .arg(&target)
            .arg(PACKAGE)
            .status();
        match status {
            Ok(s) if s.success() && tools_ptxas().is_file() => Ok(Some(tools_ptxas())),
            other => Err(format!(
                "no ptxas to assemble the generated PTX (tried $PTXAS, PATH, .tools/nvcc; `pip install` gave \
                 {other:?}). Get one with `python3 -m pip install --target .tools/nvcc {PACKAGE}` (runs without a \
                 GPU), or point PTXAS at a CUDA toolkit's ptxas, or set TENSORJIT_SKIP_PTXAS=1 to skip these checks"
            )),
        }
    });
    match found {
        Ok(p) => p.as_deref(),
        Err(msg) => panic!("{msg}"),
    }
}

/// Assembles `ptx` for sm_90 and sm_80: `Err` with ptxas' message and the numbered
/// source on failure; `Ok(false)` when skipping was asked for.
fn try_assemble(name: &str, ptx: &str) -> Result<bool, String> {
    let Some(ptxas) = ptxas() else { return Ok(false) };
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ptx");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let file = dir.join(format!("{name}.ptx"));
    std::fs::write(&file, ptx).map_err(|e| e.to_string())?;
    for arch in ["sm_90", "sm_80"] {
        let out = Command::new(ptxas)
            .arg(format!("-arch={arch}"))
            .arg(&file)
            .arg("-o")
            .arg(dir.join(format!("{name}.{arch}.cubin")))
            .output()
            .map_err(|e| format!("running {}: {e}", ptxas.display()))?;
        if !out.status.success() {
            let numbered: Vec<String> = ptx.lines().enumerate().map(|(i, l)| format!("{:4} {l}", i + 1)).collect();
            return Err(format!(
                "ptxas -arch={arch} rejected {name}:\n{}\n{}",
                String::from_utf8_lossy(&out.stderr),
                numbered.join("\n")
            ));
        }
    }
    Ok(true)
}

fn assemble(name: &str, ptx: &str) {
    if let Err(msg) = try_assemble(name, ptx) {
        panic!("{msg}");
    }
}

/// The check has teeth: ptxas rejects a kernel with a misspelt instruction, naming the
/// line.
#[test]
fn ptxas_rejects_broken_ptx() {
    let k = single(vec![Access::Full], vec![Expr::Input(0), Expr::Unary(UnaryOp::Exp, 0)]);
    let broken = render_kernel(&k, "broken").replacen("add.rn.f32", "add.rx.f32", 1);
    match try_assemble("broken", &broken) {
        Ok(false) => {}
        Ok(true) => panic!("ptxas accepted broken PTX"),
        Err(msg) => assert!(msg.contains("rejected broken") && msg.contains("add.rx.f32"), "{msg}"),
    }
}

fn single(inputs: Vec<Access>, exprs: Vec<Expr>) -> Kernel {
    let out = exprs.len() - 1;
    Kernel { inputs, exprs, outputs: vec![out], reduce: None }
}

#[test]
fn every_fusible_op_assembles() {
    use UnaryOp::*;
    for u in [Neg, Abs, Square, Relu, Sqrt, Exp, Log, Tanh, Sigmoid, Softplus] {
        let k = single(vec![Access::Full], vec![Expr::Input(0), Expr::Unary(u, 0)]);
        assemble(&format!("unary_{}", u.name()), &render_kernel(&k, &format!("unary_{}", u.name())));
    }
    use BinaryOp::*;
    for b in [Add, Sub, Mul, Div, Maximum, Minimum] {
        let k = single(vec![Access::Full, Access::Full], vec![Expr::Input(0), Expr::Input(1), Expr::Binary(b, 0, 1)]);
        assemble(&format!("binary_{}", b.name()), &render_kernel(&k, &format!("binary_{}", b.name())));
    }
    for c in [Eq, Ne, Lt, Le, Gt, Ge] {
        let k = single(
            vec![Access::Full, Access::Full],
            vec![Expr::Input(0), Expr::Input(1), Expr::Cmp(c, 0, 1), Expr::Const(0.5), Expr::Select(2, 0, 3)],
        );
        assemble(&format!("where_{}", c.name()), &render_kernel(&k, &format!("where_{}", c.name())));
    }
}

#[test]
fn every_access_pattern_and_several_outputs_assemble() {
    let k = Kernel {
        inputs: vec![Access::Full, Access::Row, Access::Col, Access::Scalar],
        exprs: vec![
            Expr::Input(0),
            Expr::Input(1),
            Expr::Input(2),
            Expr::Input(3),
            Expr::Binary(BinaryOp::Add, 0, 1),
            Expr::Binary(BinaryOp::Mul, 4, 2),
            Expr::Binary(BinaryOp::Sub, 5, 3),
            Expr::Unary(UnaryOp::Tanh, 6),
        ],
        outputs: vec![6, 7],
        reduce: None,
    };
    assemble("access_patterns", &render_kernel(&k, "access_patterns"));
    for op in [RowReduce::Sum, RowReduce::Prod, RowReduce::Max, RowReduce::Min] {
        let name = format!("row_{op:?}").to_lowercase();
        assemble(&name, &render_row_reduce(op, &name));
        let name = format!("col_{op:?}").to_lowercase();
        assemble(&name, &render_col_reduce(op, &name));
    }
    // conv2d's im2col (the GPU's conv2d is im2col + a cuBLAS GEMM).
    // conv2d's im2col and col2im, pooling and its gradients, of f32 and f64.
    for elem in [Elem::F32, Elem::F64] {
        use tensorjit_jit::ptx::{
            render_avg_pool, render_avg_pool_grad, render_max_pool, render_max_pool_grad, render_max_pool_grad_grad,
        };
        type Render = fn(Elem, &str) -> String;
        let windows: [(&str, Render); 7] = [
            ("im2col", render_im2col),
            ("col2im", render_col2im),
            ("max_pool", render_max_pool),
            ("max_pool_grad", render_max_pool_grad),
            ("max_pool_grad_grad", render_max_pool_grad_grad),
            ("avg_pool", render_avg_pool),
            ("avg_pool_grad", render_avg_pool_grad),
        ];
        for (name, render) in windows {
            let name = format!("{name}_{elem:?}").to_lowercase();
            assemble(&name, &render(elem, &name));
        }
    }
    assemble("permute", &tensorjit_jit::ptx::render_permute("permute"));
}

fn assemble_all(prefix: &str, kernels: &[Kernel]) {
    assert!(!kernels.is_empty(), "{prefix}: the planner made no kernels");
    for (i, k) in kernels.iter().enumerate() {
        let name = format!("{prefix}_{i}");
        // As device plans launch it: a row reduction's expression as one more output.
        assemble(&name, &render_kernel(&k.reduce_as_output().0, &name));
    }
}

#[test]
fn fused_kernels_of_the_workloads_assemble() {
    let w2 = function("w2", |(x, y): (Tensor, Tensor)| workloads::chain(&x, &y));
    w2.call((workloads::uniform(1, &[64], -2.0, 2.0), workloads::uniform(2, &[64], -2.0, 2.0)));
    assemble_all("w2", &kernels_of(&w2.concrete_functions()[0]));

    let w4 = function("w4", |(x, p): (Tensor, Vec<Tensor>)| workloads::mlp_logits(&x, &p).softmax(-1));
    w4.call((workloads::uniform(21, &[128, 784], 0.0, 1.0), workloads::mlp_params()));
    assemble_all("w4", &kernels_of(&w4.concrete_functions()[0]));

    let vars = workloads::mlp_variables(&workloads::mlp_params());
    let w5 = function("w5", move |(x, y): (Tensor, Tensor)| workloads::mlp_train_step(&vars, &x, &y));
    w5.call((workloads::uniform(21, &[128, 784], 0.0, 1.0), workloads::labels()));
    assemble_all("w5", &kernels_of(&w5.concrete_functions()[0]));
}

#[test]
fn fused_kernels_of_the_keras_examples_assemble() {
    // mlp_digits' train step (Adam, dropout, sparse cross-entropy) and the GAN's
    // generator (elu).
    let model = Sequential::new(vec![
        Dense::new(16).activation(Activation::Relu).boxed(),
        Dropout::new(0.1).boxed(),
        Dense::new(10).boxed(),
    ])
    .with_input_shape(&[64]);
    let opt = Adam::new(1e-3);
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let m = model.clone();
    let step = function("mlp_step", move |(x, y): (Tensor, Tensor)| {
        opt.minimize(&|| loss.compute(&y, &m.call(&x, true)), &m.trainable_variables())
    });
    step.call((
        workloads::uniform(3, &[32, 64], 0.0, 1.0),
        Tensor::from_vec((0..32).map(|i| i % 10).collect::<Vec<i64>>(), [32]).unwrap(),
    ));
    assemble_all("mlp_digits", &kernels_of(&step.concrete_functions()[0]));

    let gen = Sequential::new(vec![Dense::new(8).activation(Activation::Elu).boxed(), Dense::new(1).boxed()])
        .with_input_shape(&[4]);
    let g = gen.clone();
    let f = function("gan_g", move |x: Tensor| g.call(&x, false).sigmoid());
    f.call(workloads::uniform(4, &[16, 4], -1.0, 1.0));
    assemble_all("gan", &kernels_of(&f.concrete_functions()[0]));
}

#[test]
fn golden_ptx_of_two_small_kernels() {
    let axpy = Kernel {
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
    };
    let bias_relu = Kernel {
        inputs: vec![Access::Full, Access::Row],
        exprs: vec![Expr::Input(0), Expr::Input(1), Expr::Binary(BinaryOp::Add, 0, 1), Expr::Unary(UnaryOp::Relu, 2)],
        outputs: vec![3],
        reduce: None,
    };
    for (name, k) in [("axpy", axpy), ("bias_relu", bias_relu)] {
        let text = render_kernel(&k, name);
        golden_file(&format!("ptx_{name}.ptx"), &text);
        assemble(name, &text);
    }
}

#[test]
fn the_eager_gpu_backends_kernels_assemble() {
    use tensorjit::ops::Op;
    use tensorjit_jit::cuda::backend::{mean_kernel, single_op_kernel};
    let patterns = [Access::Full, Access::Row, Access::Col, Access::Scalar];
    let mut n = 0;
    for u in UnaryOp::ALL {
        if let Some(k) = single_op_kernel(&Op::Unary(u), &[Access::Full]) {
            assemble(&format!("eager_{}", u.name()), &render_kernel(&k, "eager_unary"));
            n += 1;
        }
    }
    for b in BinaryOp::ALL {
        for a0 in patterns {
            for a1 in patterns {
                if let Some(k) = single_op_kernel(&Op::Binary(b), &[a0, a1]) {
                    assemble(&format!("eager_{}_{a0:?}_{a1:?}", b.name()), &render_kernel(&k, "eager_binary"));
                    n += 1;
                }
            }
        }
    }
    let fill = single_op_kernel(&Op::Fill { value: -2.5 }, &[]).expect("fills run on the GPU");
    assemble("eager_fill", &render_kernel(&fill, "eager_fill"));
    assemble("eager_mean", &render_kernel(&mean_kernel(129), "eager_mean"));
    // 12 unary ops, 6 binary ops × 16 access pairs.
    assert_eq!(n, 12 + 6 * 16, "the GPU computes every fusible op under every access pair");
}

/// Entries of several modules in one module (one ptxas run): the first module's header,
/// every module's entries (their names must differ), each module-scope `.const` table
/// once.
fn one_module(modules: &[String]) -> String {
    let mut text = String::new();
    let mut tables: Vec<&str> = Vec::new();
    for (i, m) in modules.iter().enumerate() {
        let starts = |l: &str| [".visible", ".shared", ".const"].iter().any(|s| l.starts_with(s));
        for l in m.lines().skip_while(|l| i > 0 && !starts(l)) {
            if l.starts_with(".const") {
                if tables.contains(&l) {
                    continue;
                }
                tables.push(l);
            }
            text.push_str(l);
            text.push('\n');
        }
    }
    text
}

#[test]
fn the_typed_index_and_movement_kernels_assemble() {
    use tensorjit_jit::ptx::{
        render_arg_reduce, render_argsort, render_concat_part, render_fill_words, render_gather, render_one_hot,
        render_random, render_scan, render_scatter, render_split_reduce, render_strided, render_typed, Draw, Elem,
        RandomKernel, ScatterFold, TypedKernel, TypedOp,
    };
    let patterns = [Access::Full, Access::Row, Access::Col, Access::Scalar];
    let mut modules = Vec::new();
    for op in TypedOp::all() {
        // Each operand under each access pattern at least once.
        for v in 0..patterns.len() {
            let inputs = (0..op.operands().len()).map(|j| patterns[(v + j) % patterns.len()]).collect();
            let k = TypedKernel { op, inputs };
            modules.push(render_typed(&k, &format!("typed_{}", modules.len())));
        }
    }
    let elems = [Elem::F32, Elem::F64, Elem::I32, Elem::I64, Elem::Bool];
    for index in [Elem::I32, Elem::I64] {
        for out in elems {
            modules.push(render_one_hot(index, out, &format!("one_hot_{}", modules.len())));
            modules.push(render_gather(out, index, &format!("gather_{}", modules.len())));
        }
    }
    for elem in elems {
        for scatter in [false, true] {
            modules.push(render_strided(elem, scatter, &format!("strided_{}", modules.len())));
        }
        modules.push(render_concat_part(elem, &format!("concat_{}", modules.len())));
    }
    for index in [Elem::I32, Elem::I64] {
        for value in elems {
            for fold in [ScatterFold::Add, ScatterFold::Max, ScatterFold::Min, ScatterFold::Prod] {
                if value != Elem::Bool || !matches!(fold, ScatterFold::Add | ScatterFold::Prod) {
                    modules.push(render_scatter(fold, value, index, &format!("scatter_{}", modules.len())));
                }
            }
        }
    }
    for draw in [Draw::Uniform, Draw::Normal, Draw::TruncatedNormal] {
        for f64 in [false, true] {
            for from_counter in [false, true] {
                let k = RandomKernel { draw, f64, from_counter };
                modules.push(render_random(k, &format!("random_{}", modules.len())));
            }
        }
    }
    for elem in [Elem::F32, Elem::F64, Elem::I32, Elem::I64] {
        for max in [true, false] {
            modules.push(render_arg_reduce(elem, max, &format!("arg_reduce_{}", modules.len())));
        }
        for product in [false, true] {
            modules.push(render_scan(elem, product, &format!("scan_{}", modules.len())));
        }
        modules.push(render_argsort(elem, &format!("argsort_{}", modules.len())));
    }
    for elem in [Elem::I32, Elem::I64, Elem::F64] {
        for op in [RowReduce::Sum, RowReduce::Prod, RowReduce::Max, RowReduce::Min] {
            modules.push(render_split_reduce(op, elem, &format!("split_reduce_{}", modules.len())));
        }
    }
    modules.push(render_fill_words(&format!("fill_{}", modules.len())));
    // 4 element types × (6 comparisons, where, 5 casts), bools' 2 comparisons, where and
    // 5 casts, 3 logical ops, f32 pow, floor division, floormod, 2 rounding ops, sin, cos
    // and erf, 2 × 8 integer binary and 2 × 5 integer unary ops, 9 binary and 17 unary f64
    // ops — four
    // access variants each; 20 one_hot and gather entries; strided gathers, scatters and
    // concat parts of 5 element types; 36 scatters (2 index types × (4 adds + 5 maxima +
    // 5 minima + 4 products)); 12 random generators (3 distributions × 2 dtypes × 2 key sources); 8
    // arg-reductions; 4 cumsums, 4 cumprods and 4 argsorts; 12 split reductions (i32,
    // i64, f64); the fill.
    assert_eq!(modules.len(), (4 * 12 + 8 + 11 + 2 * 8 + 2 * 5 + 9 + 17) * 4 + 20 + 15 + 36 + 12 + 8 + 12 + 12 + 1);
    assemble("typed_and_index", &one_module(&modules));
}

/// `while` loops rendered as one entry each (`ptx::render_loop`): W6, a loop whose body
/// reads a mean and an outer value, and one whose body has a kernel ending in a row
/// mean.
#[test]
fn while_loops_as_one_launch_assemble() {
    use common::emulated::emulated_plan;
    let w6 = function("w6", |x: Tensor| while_loop(|x: &Tensor| x.sum_all().lt(1000.0), |x| &x * 1.5 + 1.0, x));
    let mixed = function("mixed", |(x, w): (Tensor, Tensor)| {
        let step = |(a, b): (Tensor, Tensor)| (&b * 0.5 + a.mean_all() + w.abs(), a.tanh());
        while_loop(|(a, _): &(Tensor, Tensor)| a.max(Axes::All, false).lt(5.0), step, (x.clone(), x))
    });
    let rows = function("rows", |x: Tensor| {
        let step = |x: Tensor| &x * 0.9 + (&x * &x).mean([-1i64], true) * 0.05 + 0.5;
        while_loop(|x: &Tensor| x.sum_all().lt(900.0), step, x)
    });
    let x = common::rand_f32(40, &[37], 0.0, 1.0);
    let _ = w6.call(x.clone());
    let _ = mixed.call((x.clone(), common::rand_f32(41, &[37], -1.0, 1.0)));
    let _ = rows.call(common::rand_f32(42, &[8, 50], -1.0, 1.0));
    let mut loops = 0;
    for f in [&w6.concrete_functions()[0], &mixed.concrete_functions()[0], &rows.concrete_functions()[0]] {
        let plan = emulated_plan(&f.graph);
        for m in plan.loop_modules() {
            assemble(&m.name, &m.ptx);
            loops += 1;
        }
    }
    assert_eq!(loops, 3, "each loop runs as one launch");
}

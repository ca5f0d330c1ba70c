//! The IR text form: golden files round-trip through the parser, traced graphs of many
//! ops (and their gradients) print → parse → print identically and verify, DOT export.

mod common;
use common::*;
use tensorjit::ir;
use tensorjit::prelude::*;

fn round_trip(text: &str) {
    let g = ir::parse(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    ir::verify(&g).unwrap_or_else(|e| panic!("parsed graph does not verify: {e}\n{text}"));
    assert_eq!(g.to_string(), text, "print(parse(text)) != text");
}

#[test]
fn golden_files_round_trip() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "ir") {
            round_trip(&std::fs::read_to_string(&path).unwrap());
            n += 1;
        }
    }
    assert!(n >= 2, "golden files found: {n}");
}

#[test]
fn traced_graphs_of_every_op_family_round_trip() {
    let x = rand_f32(1, &[2, 6, 5, 3], -1.0, 1.0);
    let k = rand_f32(2, &[3, 2, 3, 4], -1.0, 1.0);
    let v = Variable::new(rand_f32(3, &[4], -1.0, 1.0), "block/bias");
    let v2 = v.clone();
    let f = function("everything", move |(x, k): (Tensor, Tensor)| {
        let tape = GradientTape::new();
        tape.watch(&x);
        tape.watch(&k);
        let y = x.conv2d(&k, [2, 1], Padding::Same) + &v2;
        let p = y.max_pool2d([2, 2], [1, 1], Padding::Same) + y.avg_pool2d([2, 2], [1, 1], Padding::Valid).mean_all();
        let z = p.reshape([-1, 4]).softmax(-1).slice(&[SliceArg::full().step(2)]);
        let z = z.cumsum_with(1, CumsumOptions { exclusive: true, reverse: true }) + &z;
        let z = z.sort(1, true) + z.top_k(2).0.sum(1, true);
        let idx = Tensor::from_vec(vec![0i64, 2, 1], [3]).unwrap();
        let seg = Tensor::from_vec(vec![1i64, 0, 1], [3]).unwrap();
        let cols = z.gather(&idx, 1).permute(&[1, 0]);
        let m = cols.unsorted_segment_max(&seg, 2) + cols.unsorted_segment_min(&seg, 2);
        let exclusive = CumsumOptions { exclusive: true, reverse: false };
        let m = m + cols.unsorted_segment_prod(&seg, 2) + cols.cumprod_with(0, exclusive).sum(0, true);
        let w = z.gather(&idx, 1).sum(0, true) + random::uniform([1, 3], 0.0, 1.0, DType::F32, Some(4)) + m.sum_all();
        let loss = Tensor::concat(&[&w, &w.sqrt().maximum(0.1)], 0).square().sum_all();
        let g = tape.gradient(&loss, &[&x, &k]);
        v2.assign_sub(&y.mean([0, 1, 2], false) * 0.01);
        tf_print!("loss {}", loss);
        (loss, g[0].clone().unwrap(), g[1].clone().unwrap())
    });
    f.call((x, k));
    let cf = &f.concrete_functions()[0];
    let text = cf.ir_text();
    for op in
        ["argsort[axis=1, descending=true, keep=2]", "cumprod[axis=0, exclusive=true", "scatter_prod[axis=0, size=2]"]
    {
        assert!(text.contains(op), "{op} in {text}");
    }
    round_trip(&text);
    let dot = cf.dot();
    assert!(dot.starts_with("digraph \"everything\""));
    assert!(dot.contains("block/bias f32[4]"), "variables carry their names");
    assert!(dot.contains("style=dashed, color=gray"), "effect chain edges");
    let _ = v;
}

#[test]
fn parse_errors_name_the_line() {
    let e = ir::parse("func @f(%0: f32[2]) -> (f32[2]) {\n  %1: f32[2] = frobnicate %0\n  return %1\n}").unwrap_err();
    assert!(e.contains("line 2: unknown op `frobnicate`"), "{e}");
    let bad = "func @f(%0: f32[2]) -> (f32[2]) {\n  %1: f32[3] = exp %0\n  return %1\n}";
    let g = ir::parse(bad).unwrap();
    let v = ir::verify(&g).unwrap_err();
    assert!(v.contains("output declared f32[3], the op infers f32[2]"), "{v}");
    // An op a traced function never makes from these operands is refused, not run.
    let bools = "func @f(%0: bool[2], %1: i64[2]) -> (bool[2]) {\n  %2: bool[2] = scatter_prod[axis=0, size=2] %0, %1\n  return %2\n}";
    let v = ir::parse(bools).and_then(|g| ir::verify(&g)).unwrap_err();
    assert!(v.contains("scatter_prod") && v.contains("bool"), "{v}");
}

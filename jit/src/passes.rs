//! Graph passes run before planning, each followed by the IR verifier in debug and test
//! builds: constant folding, algebraic simplification, common subexpressions, dead code.
//!
//! Every rewrite is exact — it never changes a result's bits (`x + 0.0` is not `x` when
//! `x = −0.0`, so only `x − 0.0`, `x + (−0.0)`, `x · 1` and `x / 1` simplify) — and the
//! effect chain is never touched: only pure nodes are folded, merged or removed.

use std::collections::{HashMap, HashSet};

use tensorjit_runtime::ir::{verify, Graph, Node, NodeKind, Region, ValueId};
use tensorjit_runtime::ops::{BinaryOp, Op};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::run_kernel;
use tensorjit_runtime::Tensor;

/// Constants larger than this are not folded (the graph would carry the data).
const FOLD_MAX: usize = 1 << 16;

type Pass = fn(&mut Graph);

/// Runs every pass; `Err` names the pass whose output failed verification.
pub fn optimize(g: &Graph) -> Result<Graph, String> {
    let mut g = g.clone();
    let passes: [(&str, Pass); 4] = [("fold", fold), ("simplify", simplify), ("cse", cse), ("dce", dce)];
    for (name, pass) in passes {
        pass(&mut g);
        if cfg!(debug_assertions) {
            verify(&g).map_err(|e| format!("after the {name} pass: {e}\n{g}"))?;
        }
    }
    Ok(g)
}

/// Replaces uses of values by others (everywhere: nodes, regions, results).
fn substitute(g: &mut Graph, map: &HashMap<ValueId, ValueId>) {
    if map.is_empty() {
        return;
    }
    let fix = |v: &mut ValueId| {
        while let Some(w) = map.get(v) {
            *v = *w;
        }
    };
    fn nodes(ns: &mut [Node], fix: &impl Fn(&mut ValueId)) {
        for n in ns {
            n.inputs.iter_mut().for_each(fix);
            for r in &mut n.regions {
                nodes(&mut r.nodes, fix);
                r.results.iter_mut().for_each(fix);
            }
        }
    }
    nodes(&mut g.nodes, &fix);
    g.results.iter_mut().for_each(fix);
}

fn pure_op(n: &Node) -> Option<&Op> {
    match &n.kind {
        NodeKind::Op(op) if !matches!(op, Op::Random(_)) && n.regions.is_empty() => Some(op),
        _ => None,
    }
}

/// Evaluates pure top-level ops whose inputs are all constants.
fn fold(g: &mut Graph) {
    let mut consts: HashMap<ValueId, Tensor> = g.constants.iter().cloned().collect();
    let mut kept = Vec::with_capacity(g.nodes.len());
    for n in std::mem::take(&mut g.nodes) {
        let folded = pure_op(&n).zip(n.output()).and_then(|(op, o)| {
            let ty = g.value_type(o);
            let small = ty.shape.is_fully_known() && ty.shape.iter().product::<usize>() <= FOLD_MAX;
            // `fill_like` depends only on its input's (known) shape.
            if let (Op::Fill { value }, true) = (op, small) {
                return Some((o, Tensor::full(ty.shape.clone(), *value, ty.dtype)));
            }
            let ins: Option<Vec<&Tensor>> = n.inputs.iter().map(|v| consts.get(v)).collect();
            match ins {
                Some(ins) if small && !ins.is_empty() => run_kernel(op, &ins, ty).ok().map(|t| (o, t)),
                _ => None,
            }
        });
        match folded {
            Some((o, t)) => {
                consts.insert(o, t.clone());
                g.constants.push((o, t));
            }
            None => kept.push(n),
        }
    }
    g.nodes = kept;
}

/// The one-element constants of a graph, by value (exact in f64 for every dtype).
fn scalar_consts(g: &Graph) -> HashMap<ValueId, f64> {
    g.constants
        .iter()
        .filter(|(_, t)| t.numel() == 1)
        .filter_map(|(v, t)| Some((*v, t.cast(tensorjit_runtime::DType::F64).to_scalar::<f64>().ok()?)))
        .collect()
}

/// Exact algebraic identities: `x·1`, `x/1`, `x−0`, `x+(−0)`, `1·x`, `(−0)+x`, double
/// transposes that cancel, reshapes and broadcasts to the same shape, reshape chains,
/// `stop_gradient` (no tape runs in compiled code), and `broadcast_to` operands of
/// elementwise ops (which broadcast themselves).
fn simplify(g: &mut Graph) {
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let mut rereads: Vec<(usize, ValueId)> = Vec::new();
    // (node, input position, value read there instead).
    let mut input_swaps: Vec<(usize, usize, ValueId)> = Vec::new();
    let consts = scalar_consts(g);
    let producer: HashMap<ValueId, (Op, Vec<ValueId>)> =
        g.nodes.iter().filter_map(|n| Some((n.output()?, (pure_op(n)?.clone(), n.inputs.clone())))).collect();
    for i in 0..g.nodes.len() {
        let n = &g.nodes[i];
        let (Some(op), Some(o)) = (pure_op(n), n.output()) else { continue };
        let same_type = |v: ValueId| g.value_type(v) == g.value_type(o);
        let one = |v: ValueId| consts.get(&v) == Some(&1.0);
        // `x − (+0)` is exact; `x + 0` is exact only for `−0` (or integers): −0 + +0 = +0.
        let pos_zero = |v: ValueId| consts.get(&v).is_some_and(|c| *c == 0.0 && !c.is_sign_negative());
        let additive_zero = |v: ValueId| {
            consts.get(&v).is_some_and(|c| *c == 0.0 && (c.is_sign_negative() || !g.value_type(v).dtype.is_float()))
        };
        // An elementwise op broadcasts its operands itself: one made by `broadcast_to`
        // is read at its source when the output's shape stays (the kernel then reads a
        // scalar, row or column instead of a materialised copy; same values).
        if matches!(op, Op::Binary(_) | Op::Select) {
            let out_shape = &g.value_type(o).shape;
            // (A select's mask stays whole: kernels take masks of the output's shape.)
            let first = usize::from(matches!(op, Op::Select));
            for (k, v) in n.inputs.iter().enumerate().skip(first) {
                let Some((Op::BroadcastTo(_), ins)) = producer.get(v) else { continue };
                let src = ins[0];
                let shapes = n.inputs.iter().enumerate().map(|(j, w)| if j == k { src } else { *w });
                let shapes: Vec<Shape> = shapes.map(|w| g.value_type(w).shape.clone()).collect();
                let joined = shapes[1..].iter().try_fold(shapes[0].clone(), |acc, s| Shape::broadcast(&acc, s));
                if joined.as_ref() == Some(out_shape) && g.value_type(src).dtype == g.value_type(*v).dtype {
                    input_swaps.push((i, k, src));
                }
            }
        }
        let replacement = match op {
            Op::Binary(b) => {
                let (x, y) = (n.inputs[0], n.inputs[1]);
                match b {
                    BinaryOp::Mul if one(y) && same_type(x) => Some(x),
                    BinaryOp::Mul if one(x) && same_type(y) => Some(y),
                    BinaryOp::Div if one(y) && same_type(x) => Some(x),
                    BinaryOp::Sub if pos_zero(y) && same_type(x) => Some(x),
                    BinaryOp::Add if additive_zero(y) && same_type(x) => Some(x),
                    BinaryOp::Add if additive_zero(x) && same_type(y) => Some(y),
                    _ => None,
                }
            }
            Op::Permute(p) => match producer.get(&n.inputs[0]) {
                Some((Op::Permute(q), ins)) if p.iter().map(|&a| q[a]).enumerate().all(|(i, a)| i == a) => {
                    Some(ins[0]).filter(|v| same_type(*v))
                }
                _ => None,
            },
            Op::Reshape(_) | Op::BroadcastTo(_) if same_type(n.inputs[0]) => Some(n.inputs[0]),
            // Compiled code runs no tape: stop_gradient is the identity.
            Op::StopGradient => Some(n.inputs[0]),
            // reshape(reshape(x)) = reshape(x): the outer one reads x directly.
            Op::Reshape(_) => match producer.get(&n.inputs[0]) {
                Some((Op::Reshape(_), ins)) => {
                    rereads.push((i, ins[0]));
                    None
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(r) = replacement {
            map.insert(o, r);
        }
    }
    for (i, src) in rereads {
        g.nodes[i].inputs = vec![src];
    }
    for (i, k, src) in input_swaps {
        g.nodes[i].inputs[k] = src;
    }
    substitute(g, &map);
}

/// Merges pure top-level nodes with the same op and inputs.
fn cse(g: &mut Graph) {
    let mut seen: HashMap<(String, Vec<ValueId>), ValueId> = HashMap::new();
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let mut kept = Vec::with_capacity(g.nodes.len());
    for mut n in std::mem::take(&mut g.nodes) {
        for v in &mut n.inputs {
            while let Some(w) = map.get(v) {
                *v = *w;
            }
        }
        if let (Some(op), Some(o)) = (pure_op(&n), n.output()) {
            let key = (format!("{op:?}"), n.inputs.clone());
            if let Some(&prev) = seen.get(&key) {
                if g.value_type(prev) == g.value_type(o) {
                    map.insert(o, prev);
                    continue;
                }
            }
            seen.insert(key, o);
        }
        kept.push(n);
    }
    g.nodes = kept;
    substitute(g, &map);
}

/// Values a region (and the regions nested in it) reads.
fn region_uses(r: &Region, out: &mut HashSet<ValueId>) {
    for n in &r.nodes {
        out.extend(n.inputs.iter().copied());
        n.regions.iter().for_each(|r| region_uses(r, out));
    }
    out.extend(r.results.iter().copied());
}

/// Removes pure nodes (and unused constants) nothing needs. Effects always stay.
fn dce(g: &mut Graph) {
    let mut live: HashSet<ValueId> = g.results.iter().copied().collect();
    let mut keep = vec![false; g.nodes.len()];
    for (i, n) in g.nodes.iter().enumerate().rev() {
        let needed = n.effect.is_some() || n.outputs.iter().any(|o| live.contains(o));
        if needed {
            keep[i] = true;
            live.extend(n.inputs.iter().copied());
            n.regions.iter().for_each(|r| region_uses(r, &mut live));
        }
    }
    let mut k = keep.into_iter();
    g.nodes.retain(|_| k.next().unwrap_or(true));
    g.constants.retain(|(v, _)| live.contains(v));
}

#[cfg(test)]
mod tests {
    use super::optimize;
    use tensorjit_runtime::ir::parse;

    fn opt(body: &str) -> String {
        let text = format!("func @f(%0: f32[4], %1: f32[4]) -> (f32[4]) {{\n  @0 = variable \"v\" f32[4]\n{body}\n}}");
        let g = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        optimize(&g).unwrap().to_string()
    }

    #[test]
    fn exact_identities_simplify_and_inexact_ones_do_not() {
        let out = opt("  %2: f32[] = const 1.0\n  %3: f32[4] = mul %0, %2\n  %4: f32[] = const -0.0\n  %5: f32[4] = add %3, %4\n  return %5");
        assert!(!out.contains("mul") && !out.contains("add") && out.contains("return %0"), "{out}");
        // x + (+0.0) is not x when x = −0.0: kept.
        let out = opt("  %2: f32[] = const 0.0\n  %3: f32[4] = add %0, %2\n  return %3");
        assert!(out.contains("add %0, %2"), "{out}");
        // x · 1 that broadcasts to a bigger shape is not x: kept.
        let text = "func @f(%0: f32[]) -> (f32[4]) {\n  %1: f32[4] = const <4 elements>\n  %2: f32[4] = mul %0, %1\n  return %2\n}";
        let g = parse(text).unwrap();
        assert!(optimize(&g).unwrap().to_string().contains("mul"));
    }

    #[test]
    fn constants_fold_common_subexpressions_merge_and_dead_code_goes() {
        let out = opt(
            "  %2: f32[] = const 2.0\n  %3: f32[] = const 3.0\n  %4: f32[] = mul %2, %3\n  %5: f32[4] = mul %0, %4\n  %6: f32[4] = mul %0, %4\n  %7: f32[4] = add %5, %6\n  %8: f32[4] = exp %1\n  return %7",
        );
        assert!(out.contains("const 6.0"), "folded: {out}");
        assert_eq!(out.matches(" = mul ").count(), 1, "merged: {out}");
        assert!(!out.contains("exp"), "dead: {out}");
    }

    #[test]
    fn effects_are_never_removed_or_merged() {
        let out = opt(
            "  %2: f32[4] = read_variable @0 !e0\n  %3: f32[4] = read_variable @0 !e1\n  %4: f32[4] = add %0, %1\n  assign_variable @0, %4 !e2\n  print \"x {}\", %0 !e3\n  return %0",
        );
        assert_eq!(out.matches("read_variable").count(), 2, "{out}");
        assert!(out.contains("assign_variable") && out.contains("print"), "{out}");
        assert!(out.contains("add %0, %1"), "{out}");
    }

    #[test]
    fn transposes_that_cancel_and_reshape_chains() {
        let text = "func @f(%0: f32[2,3]) -> (f32[2,3], f32[6]) {\n  %1: f32[3,2] = transpose[perm=[1,0]] %0\n  %2: f32[2,3] = transpose[perm=[1,0]] %1\n  %3: f32[3,2] = reshape[shape=[3,2]] %0\n  %4: f32[6] = reshape[shape=[6]] %3\n  return %2, %4\n}";
        let out = optimize(&parse(text).unwrap()).unwrap().to_string();
        assert!(out.contains("return %0, %4"), "{out}");
        assert!(out.contains("%4: f32[6] = reshape[shape=[6]] %0"), "{out}");
        assert!(!out.contains("transpose"), "{out}");
    }

    #[test]
    fn broadcast_operands_of_elementwise_ops_are_read_at_their_source() {
        // s·2 broadcast to [4, 3] times x [4, 3]: the mul reads the scalar; a broadcast
        // whose removal would change the output's shape stays.
        let text = "func @f(%0: f32[4,3], %1: f32[], %2: f32[3]) -> (f32[4,3], f32[4,3]) {\n  %3: f32[4,3] = broadcast_to[shape=[4,3]] %1\n  %4: f32[4,3] = mul %0, %3\n  %5: f32[4,3] = broadcast_to[shape=[4,3]] %2\n  %6: f32[] = const 2.0\n  %7: f32[4,3] = mul %5, %6\n  return %4, %7\n}";
        let out = optimize(&parse(text).unwrap()).unwrap().to_string();
        assert!(out.contains("mul %0, %1"), "{out}");
        assert_eq!(out.matches("broadcast_to").count(), 1, "{out}");
        assert!(out.contains("mul %5, %6") || out.contains("= broadcast_to[shape=[4,3]] %2"), "{out}");
    }
}

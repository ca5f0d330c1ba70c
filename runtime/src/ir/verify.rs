//! The IR verifier: run after tracing (and, later, after every pass in debug builds).

use super::{Graph, NodeKind, Resource, ValueType};
use crate::tensor::{Symbol, Tensor};

/// Checks that `g` is well formed: every value defined exactly once before its uses,
/// node types agree with the op's own inference, resources and results exist, and the
/// effect chain numbers the stateful nodes 0, 1, 2, … in node order.
pub fn verify(g: &Graph) -> Result<(), String> {
    let n = g.values.len();
    let mut defined = vec![false; n];
    fn define(defined: &mut [bool], v: super::ValueId, what: &str) -> Result<(), String> {
        let slot = defined.get_mut(v.index()).ok_or_else(|| format!("{what} {v} has no type"))?;
        if std::mem::replace(slot, true) {
            return Err(format!("{v} is defined twice ({what})"));
        }
        Ok(())
    }
    for p in &g.params {
        define(&mut defined, *p, "parameter")?;
    }
    for (v, t) in &g.constants {
        define(&mut defined, *v, "constant")?;
        let ty = ValueType { dtype: t.dtype(), shape: t.shape().clone() };
        if g.value_type(*v) != &ty {
            return Err(format!("constant {v} is {ty}, declared {}", g.value_type(*v)));
        }
    }
    let mut next_effect = 0;
    for (i, node) in g.nodes.iter().enumerate() {
        for v in &node.inputs {
            if !defined.get(v.index()).copied().unwrap_or(false) {
                return Err(format!("node {i} uses {v} before it is defined"));
            }
        }
        match (node.kind.is_effect(), node.effect) {
            (true, Some(e)) if e == next_effect => next_effect += 1,
            (true, e) => return Err(format!("node {i} is stateful but has effect {e:?}, expected !e{next_effect}")),
            (false, Some(_)) => return Err(format!("node {i} is pure but sits in the effect chain")),
            (false, None) => {}
        }
        match &node.kind {
            NodeKind::ReadVariable(r) | NodeKind::AssignVariable(r) => {
                let res = g.resources.get(r.index()).ok_or_else(|| format!("node {i} uses missing resource {r}"))?;
                let ty = match res {
                    Resource::Captured(v) => ValueType { dtype: v.dtype(), shape: v.shape().clone() },
                    Resource::Param(t) => t.clone(),
                };
                let io =
                    node.output.or(node.inputs.first().copied()).ok_or_else(|| format!("node {i} has no value"))?;
                if g.value_type(io) != &ty {
                    return Err(format!("node {i}: value {} does not match resource {r} ({ty})", g.value_type(io)));
                }
            }
            NodeKind::Op(op) => {
                let ins: Vec<Tensor> = node
                    .inputs
                    .iter()
                    .map(|v| {
                        let t = g.value_type(*v);
                        Tensor::symbolic(Symbol { trace: 0, value: *v, dtype: t.dtype }, t.shape.clone())
                    })
                    .collect();
                let refs: Vec<&Tensor> = ins.iter().collect();
                let (dtype, shape) = op.infer(&refs).map_err(|e| format!("node {i}: {e}"))?;
                let out = node.output.ok_or_else(|| format!("node {i} ({}) has no output", op.name()))?;
                let want = ValueType { dtype, shape };
                if g.value_type(out) != &want {
                    return Err(format!(
                        "node {i} ({}): output declared {}, the op infers {want}",
                        op.name(),
                        g.value_type(out)
                    ));
                }
            }
            NodeKind::Print(_) => {}
        }
        if let Some(o) = node.output {
            define(&mut defined, o, "node output")?;
        }
    }
    for r in &g.results {
        if !defined.get(r.index()).copied().unwrap_or(false) {
            return Err(format!("result {r} is not defined"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::verify;
    use crate::ir::parse;

    fn check(body: &str) -> Result<(), String> {
        let text = format!("func @f(%0: f32[2]) -> (f32[2]) {{\n  @0 = variable \"v\" f32[2]\n{body}\n}}");
        verify(&parse(&text).map_err(|e| format!("parse: {e}"))?)
    }

    #[test]
    fn accepts_a_well_formed_graph() {
        check(
            "  %1: f32[2] = read_variable @0 !e0\n  %2: f32[2] = add %0, %1\n  assign_variable @0, %2 !e1\n  return %2",
        )
        .unwrap();
    }

    #[test]
    fn rejects_reordered_or_missing_effects() {
        let e = check("  %1: f32[2] = read_variable @0 !e1\n  assign_variable @0, %1 !e0\n  return %1").unwrap_err();
        assert!(e.contains("stateful but has effect Some(1), expected !e0"), "{e}");
        let e = check("  %1: f32[2] = read_variable @0\n  return %1").unwrap_err();
        assert!(e.contains("stateful but has effect None"), "{e}");
        let e = check("  %1: f32[2] = exp %0 !e0\n  return %1").unwrap_err();
        assert!(e.contains("pure but sits in the effect chain"), "{e}");
    }

    #[test]
    fn rejects_use_before_definition_and_double_definition() {
        let e = check("  %1: f32[2] = exp %2\n  %2: f32[2] = exp %0\n  return %1").unwrap_err();
        assert!(e.contains("uses %2 before it is defined"), "{e}");
        let e = check("  %1: f32[2] = exp %0\n  %1: f32[2] = exp %0\n  return %1").unwrap_err();
        assert!(e.contains("%1 is defined twice"), "{e}");
        let e = check("  %1: f32[2] = exp %0\n  return %5").unwrap_err();
        assert!(e.contains("result %5 is not defined") || e.contains("has no type"), "{e}");
    }
}

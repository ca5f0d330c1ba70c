//! The IR verifier: run after tracing (and, later, after every pass in debug builds).

use super::{Graph, Node, NodeKind, Region, Resource, ValueId, ValueType};
use crate::device::Device;
use crate::dtype::DType;
use crate::tensor::{Symbol, Tensor};

fn scalar_bool(t: &ValueType) -> bool {
    t.dtype == DType::Bool && t.shape.rank() == 0
}

/// Where a value stands while the verifier walks the graph.
#[derive(Clone, Copy, PartialEq)]
enum Scope {
    Undefined,
    Live,
    /// Defined inside a region that has ended: invisible outside it.
    Closed,
}

struct Verifier<'g> {
    g: &'g Graph,
    scope: Vec<Scope>,
    next_effect: u32,
    /// Node counter in pre-order, for messages.
    index: usize,
}

/// Checks that `g` is well formed: every value defined exactly once before its uses and
/// used only inside the region that defines it (or regions nested in it), node types
/// agree with the op's own inference, control-flow regions agree with their node's
/// inputs and outputs, resources and results exist, and the effect chain numbers the
/// stateful nodes 0, 1, 2, … in pre-order.
pub fn verify(g: &Graph) -> Result<(), String> {
    let mut v = Verifier { g, scope: vec![Scope::Undefined; g.values.len()], next_effect: 0, index: 0 };
    for p in &g.params {
        v.define(*p, "parameter")?;
    }
    for (c, t) in &g.constants {
        v.define(*c, "constant")?;
        let ty = ValueType { dtype: t.dtype(), shape: t.shape().clone() };
        if g.value_type(*c) != &ty {
            return Err(format!("constant {c} is {ty}, declared {}", g.value_type(*c)));
        }
    }
    for node in &g.nodes {
        v.node(node)?;
    }
    for r in &g.results {
        v.use_value(*r, "the results")?;
    }
    Ok(())
}

impl Verifier<'_> {
    fn define(&mut self, v: ValueId, what: &str) -> Result<(), String> {
        let slot = self.scope.get_mut(v.index()).ok_or_else(|| format!("{what} {v} has no type"))?;
        if *slot != Scope::Undefined {
            return Err(format!("{v} is defined twice ({what})"));
        }
        *slot = Scope::Live;
        Ok(())
    }

    fn use_value(&self, v: ValueId, user: &str) -> Result<(), String> {
        match self.scope.get(v.index()).copied().unwrap_or(Scope::Undefined) {
            Scope::Live => Ok(()),
            Scope::Closed => Err(format!("{user} uses {v} outside the region that defines it")),
            Scope::Undefined if user == "the results" => Err(format!("result {v} is not defined")),
            Scope::Undefined => Err(format!("{user} uses {v} before it is defined")),
        }
    }

    fn ty(&self, v: ValueId) -> &ValueType {
        self.g.value_type(v)
    }

    /// Checks a region's nodes and results; its values are closed afterwards.
    fn region(&mut self, r: &Region, what: &str) -> Result<(), String> {
        let first_new = self.scope.iter().map(|s| *s == Scope::Live).collect::<Vec<_>>();
        for p in &r.params {
            self.define(*p, "region parameter")?;
        }
        for n in &r.nodes {
            self.node(n)?;
        }
        for v in &r.results {
            self.use_value(*v, what)?;
        }
        for (s, was_live) in self.scope.iter_mut().zip(first_new) {
            if *s == Scope::Live && !was_live {
                *s = Scope::Closed;
            }
        }
        Ok(())
    }

    fn node(&mut self, node: &Node) -> Result<(), String> {
        let i = self.index;
        self.index += 1;
        let g = self.g;
        for v in &node.inputs {
            self.use_value(*v, &format!("node {i}"))?;
        }
        match (node.is_effect(), node.effect) {
            (true, Some(e)) if e == self.next_effect => self.next_effect += 1,
            (true, e) => {
                return Err(format!("node {i} is stateful but has effect {e:?}, expected !e{}", self.next_effect))
            }
            (false, Some(_)) => return Err(format!("node {i} is pure but sits in the effect chain")),
            (false, None) => {}
        }
        let want_regions = super::text::region_names(&node.kind).len();
        if node.regions.len() != want_regions {
            return Err(format!(
                "node {i} ({}) has {} regions, expected {want_regions}",
                node.kind.name(),
                node.regions.len()
            ));
        }
        match &node.kind {
            NodeKind::ReadVariable(r) | NodeKind::AssignVariable(r) => {
                let res = g.resources.get(r.index()).ok_or_else(|| format!("node {i} uses missing resource {r}"))?;
                let ty = match res {
                    Resource::Captured(v) => ValueType { dtype: v.dtype(), shape: v.shape().clone() },
                    Resource::Param(t) => t.clone(),
                };
                let io =
                    node.output().or(node.inputs.first().copied()).ok_or_else(|| format!("node {i} has no value"))?;
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
                        Tensor::symbolic(
                            Symbol { trace: 0, value: *v, dtype: t.dtype, device: Device::Cpu },
                            t.shape.clone(),
                        )
                    })
                    .collect();
                let refs: Vec<&Tensor> = ins.iter().collect();
                let (dtype, shape) = op.infer(&refs).map_err(|e| format!("node {i}: {e}"))?;
                let out = node.output().ok_or_else(|| format!("node {i} ({}) has no output", op.name()))?;
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
            NodeKind::Cond => {
                let pred = node.inputs.first().map(|p| self.ty(*p));
                if node.inputs.len() != 1 || pred.is_some_and(|t| !scalar_bool(t)) {
                    return Err(format!("node {i} (cond) needs one scalar bool predicate"));
                }
                for (name, r) in ["then", "else"].iter().zip(&node.regions) {
                    if !r.params.is_empty() {
                        return Err(format!("node {i}: the {name} region of a cond takes no parameters"));
                    }
                    self.region(r, &format!("the {name} region of node {i}"))?;
                    self.agree(&r.results, &node.outputs, &format!("node {i}: {name} yields"))?;
                }
            }
            NodeKind::While { .. } => {
                let (cond, body) = (&node.regions[0], &node.regions[1]);
                for (what, list) in [("cond parameters", &cond.params), ("body parameters", &body.params)] {
                    if list.len() != node.inputs.len()
                        || list.iter().zip(&node.outputs).any(|(p, o)| self.ty(*p) != self.ty(*o))
                    {
                        return Err(format!("node {i} (while): {what} do not match the loop variables"));
                    }
                }
                self.agree(&node.inputs, &node.outputs, &format!("node {i} (while): initial values"))?;
                self.region(cond, &format!("the cond region of node {i}"))?;
                let c = cond.results.first().map(|v| self.ty(*v));
                if cond.results.len() != 1 || c.is_some_and(|t| !scalar_bool(t)) {
                    return Err(format!("node {i} (while): the cond region must yield one scalar bool"));
                }
                self.region(body, &format!("the body region of node {i}"))?;
                self.agree(&body.results, &node.outputs, &format!("node {i} (while): body yields"))?;
            }
        }
        for o in &node.outputs {
            self.define(*o, "node output")?;
        }
        Ok(())
    }

    /// Checks that values `got` fit slots `want`: same count and dtype, shapes accepted
    /// (a slot's unknown dim takes any size).
    fn agree(&self, got: &[ValueId], want: &[ValueId], what: &str) -> Result<(), String> {
        if got.len() != want.len() {
            return Err(format!("{what} {} values for {} outputs", got.len(), want.len()));
        }
        for (k, (a, b)) in got.iter().zip(want).enumerate() {
            let (ta, tb) = (self.ty(*a), self.ty(*b));
            if ta.dtype != tb.dtype || !tb.shape.accepts(&ta.shape) {
                return Err(format!("{what} {ta} for output {k} of type {tb}"));
            }
        }
        Ok(())
    }
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

#[cfg(test)]
mod region_tests {
    use super::verify;
    use crate::ir::parse;

    const LOOP: &str = "func @f(%0: f32[2]) -> (f32[2]) {
  %1: f32[] = const 10.0
  %7: f32[2] = while[max_iterations=none] %0 {
    cond(%2: f32[2]) {
      %3: f32[] = reduce_sum[axes=[0], keepdims=false] %2
      %4: bool[] = less %3, %1
      yield %4
    }
    body(%5: f32[2]) {
      %6: f32[2] = add %5, %5
      yield %6
    }
  }
  return %7
}";

    fn check(text: &str) -> Result<(), String> {
        verify(&parse(text).map_err(|e| format!("parse: {e}"))?)
    }

    #[test]
    fn accepts_a_loop_and_round_trips_it() {
        check(LOOP).unwrap();
        assert_eq!(parse(LOOP).unwrap().to_string(), LOOP);
    }

    #[test]
    fn rejects_values_used_outside_their_region() {
        let e = check(&LOOP.replace("return %7", "return %6")).unwrap_err();
        assert!(e.contains("uses %6 outside the region that defines it"), "{e}");
        let e = check(&LOOP.replace("add %5, %5", "add %5, %2")).unwrap_err();
        assert!(e.contains("uses %2 outside the region that defines it"), "{e}");
    }

    #[test]
    fn rejects_mistyped_regions() {
        let e = check(&LOOP.replace("yield %4", "yield %3")).unwrap_err();
        assert!(e.contains("the cond region must yield one scalar bool"), "{e}");
        let e = check(&LOOP.replace("body(%5: f32[2])", "body(%5: f32[3])")).unwrap_err();
        assert!(e.contains("body parameters do not match the loop variables"), "{e}");
        let cond = "func @g(%0: bool[], %1: f32[2]) -> (f32[2]) {
  %4: f32[2] = cond %0 {
    then() {
      %2: f32[2] = exp %1
      yield %2
    }
    else() {
      %3: f64[2] = cast[to=f64] %1
      yield %3
    }
  }
  return %4
}";
        let e = check(cond).unwrap_err();
        assert!(e.contains("else yields f64[2] for output 0 of type f32[2]"), "{e}");
        check(&cond.replace("%3: f64[2] = cast[to=f64] %1", "%3: f32[2] = neg %1")).unwrap();
    }
}

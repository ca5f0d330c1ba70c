//! Specialisation: the graph for one set of concrete input shapes. A trace made for an
//! `input_signature` with unknown dims (`?`) has values of partly unknown shape; backends
//! that need every shape (the JIT's kernels) re-infer each node's type from the call's
//! actual shapes and compile that graph.

use super::{Graph, Node, NodeKind, ValueId, ValueType};
use crate::device::Device;
use crate::shape::Shape;
use crate::tensor::{Symbol, Tensor};

/// `g` with its parameters given `shapes` (one per parameter, each accepted by the
/// parameter's declared shape) and every value's shape re-inferred. `Err` when a shape
/// stays unknown (a loop variable whose shape changes between trips) or an op rejects
/// the shapes.
pub fn specialize(g: &Graph, shapes: &[Shape]) -> Result<Graph, String> {
    if shapes.len() != g.params.len() {
        return Err(format!("{} shapes for {} parameters", shapes.len(), g.params.len()));
    }
    let mut out = g.clone();
    for (p, s) in g.params.iter().zip(shapes) {
        let ty = &mut out.values[p.index()];
        if !ty.shape.accepts(s) {
            return Err(format!("parameter {p} is {ty}, called with shape {s}"));
        }
        ty.shape = s.clone();
    }
    let nodes = std::mem::take(&mut out.nodes);
    infer_nodes(&mut out, &nodes)?;
    out.nodes = nodes;
    if let Some(v) = out.values.iter().position(|t| !t.shape.is_fully_known()) {
        return Err(format!("%{v} keeps an unknown shape"));
    }
    Ok(out)
}

fn symbolic(g: &Graph, v: ValueId) -> Tensor {
    let t = g.value_type(v);
    Tensor::symbolic(Symbol { trace: 0, value: v, dtype: t.dtype, device: Device::Cpu }, t.shape.clone())
}

fn set(g: &mut Graph, to: &[ValueId], from: &[ValueId]) {
    for (t, f) in to.iter().zip(from) {
        let ty = g.value_type(*f).clone();
        g.values[t.index()] = ty;
    }
}

fn infer_nodes(g: &mut Graph, nodes: &[Node]) -> Result<(), String> {
    for n in nodes {
        match &n.kind {
            NodeKind::Op(op) => {
                let ins: Vec<Tensor> = n.inputs.iter().map(|v| symbolic(g, *v)).collect();
                let refs: Vec<&Tensor> = ins.iter().collect();
                let (dtype, shape) = op.infer(&refs).map_err(|e| e.to_string())?;
                if let Some(o) = n.output() {
                    g.values[o.index()] = ValueType { dtype, shape };
                }
            }
            NodeKind::Cond => {
                for r in &n.regions {
                    infer_nodes(g, &r.nodes)?;
                }
                let (a, b) = (&n.regions[0].results, &n.regions[1].results);
                for (k, o) in n.outputs.iter().enumerate() {
                    let (ta, tb) = (g.value_type(a[k]).clone(), g.value_type(b[k]).clone());
                    if ta != tb {
                        return Err(format!("the branches of a cond give {ta} and {tb} for output {k}"));
                    }
                    g.values[o.index()] = ta;
                }
            }
            NodeKind::While { .. } => {
                let (cond, body) = (&n.regions[0], &n.regions[1]);
                set(g, &cond.params, &n.inputs);
                set(g, &body.params, &n.inputs);
                infer_nodes(g, &cond.nodes)?;
                infer_nodes(g, &body.nodes)?;
                for (p, r) in body.params.iter().zip(&body.results) {
                    if g.value_type(*p) != g.value_type(*r) {
                        return Err(format!(
                            "a loop variable changes from {} to {}",
                            g.value_type(*p),
                            g.value_type(*r)
                        ));
                    }
                }
                set(g, &n.outputs, &n.inputs);
            }
            NodeKind::ReadVariable(_) | NodeKind::AssignVariable(_) | NodeKind::Print(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::specialize;
    use crate::ir::{parse, verify};
    use crate::shape::Shape;

    #[test]
    fn unknown_dims_take_the_call_shapes_through_ops_and_loops() {
        let text = "func @f(%0: f32[?,3], %1: f32[3]) -> (f32[?,3]) {
  %2: f32[?,3] = add %0, %1
  %3: f32[] = const 10.0
  %8: f32[?,3] = while[max_iterations=none] %2 {
    cond(%4: f32[?,3]) {
      %5: f32[] = reduce_sum[axes=[0,1], keepdims=false] %4
      %6: bool[] = less %5, %3
      yield %6
    }
    body(%7: f32[?,3]) {
      %9: f32[?,3] = add %7, %7
      yield %9
    }
  }
  return %8
}";
        let g = parse(text).unwrap();
        let s = specialize(&g, &[Shape::new(&[5, 3]), Shape::new(&[3])]).unwrap();
        verify(&s).unwrap();
        let out = s.to_string();
        assert!(!out.contains('?'), "{out}");
        assert!(out.contains("%8: f32[5,3] = while"), "{out}");
        let e = specialize(&g, &[Shape::new(&[5, 4]), Shape::new(&[3])]).unwrap_err();
        assert!(e.contains("called with shape [5,4]"), "{e}");
    }
}

//! Graphviz DOT export: one node per parameter, constant, variable and op; variables are
//! labelled with their names; effect-chain edges are dashed.

use std::fmt::Write;

use super::{Graph, NodeKind, Resource};

/// The graph in DOT form (`dot -Tsvg`).
pub fn to_dot(g: &Graph) -> String {
    let mut s = format!("digraph \"{}\" {{\n  rankdir=TB;\n  node [fontname=\"monospace\"];\n", g.name);
    let mut producer = vec![String::new(); g.values.len()];
    for (i, p) in g.params.iter().enumerate() {
        let _ = writeln!(s, "  p{i} [shape=invhouse, label=\"{p}: {}\"];", g.value_type(*p));
        producer[p.index()] = format!("p{i}");
    }
    for (i, (v, _)) in g.constants.iter().enumerate() {
        let _ = writeln!(s, "  c{i} [shape=box, style=dashed, label=\"const {}\"];", g.value_type(*v));
        producer[v.index()] = format!("c{i}");
    }
    for (i, r) in g.resources.iter().enumerate() {
        let label = match r {
            Resource::Captured(v) => format!("{} {}{}", v.name(), v.dtype(), v.shape()),
            Resource::Param(t) => format!("variable argument {t}"),
        };
        let _ = writeln!(s, "  r{i} [shape=cylinder, label=\"{}\"];", label.replace('"', "'"));
    }
    let mut last_effect: Option<String> = None;
    for (i, n) in g.nodes.iter().enumerate() {
        let label = match &n.kind {
            NodeKind::Op(op) => format!("{}{}", op.name(), super::text::attrs(op)),
            NodeKind::ReadVariable(_) => "read_variable".into(),
            NodeKind::AssignVariable(_) => "assign_variable".into(),
            NodeKind::Print(_) => "print".into(),
        };
        let ty = n.output.map(|o| format!("\\n{}", g.value_type(o))).unwrap_or_default();
        let _ = writeln!(s, "  n{i} [label=\"{}{ty}\"];", label.replace('"', "'"));
        for v in &n.inputs {
            let _ = writeln!(s, "  {} -> n{i};", producer[v.index()]);
        }
        match &n.kind {
            NodeKind::ReadVariable(r) => {
                let _ = writeln!(s, "  r{} -> n{i};", r.index());
            }
            NodeKind::AssignVariable(r) => {
                let _ = writeln!(s, "  n{i} -> r{};", r.index());
            }
            _ => {}
        }
        if n.effect.is_some() {
            if let Some(prev) = last_effect.replace(format!("n{i}")) {
                let _ = writeln!(s, "  {prev} -> n{i} [style=dashed, color=gray];");
            }
        }
        if let Some(o) = n.output {
            producer[o.index()] = format!("n{i}");
        }
    }
    for (i, r) in g.results.iter().enumerate() {
        let _ = writeln!(s, "  out{i} [shape=house, label=\"result {i}\"];\n  {} -> out{i};", producer[r.index()]);
    }
    s.push_str("}\n");
    s
}

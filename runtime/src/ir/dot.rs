//! Graphviz DOT export: one node per parameter, constant, variable and op; variables are
//! labelled with their names; effect-chain edges are dashed; control-flow regions are
//! clusters whose parameters hang off their node.

use std::fmt::Write;

use super::{Graph, Node, NodeKind, Resource};

struct Dot<'g> {
    g: &'g Graph,
    s: String,
    producer: Vec<String>,
    last_effect: Option<String>,
    count: usize,
}

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
    let mut d = Dot { g, s, producer, last_effect: None, count: 0 };
    d.nodes(&g.nodes);
    let Dot { mut s, producer, .. } = d;
    for (i, r) in g.results.iter().enumerate() {
        let _ = writeln!(s, "  out{i} [shape=house, label=\"result {i}\"];\n  {} -> out{i};", producer[r.index()]);
    }
    s.push_str("}\n");
    s
}

impl Dot<'_> {
    fn nodes(&mut self, nodes: &[Node]) {
        for n in nodes {
            self.node(n);
        }
    }

    fn node(&mut self, n: &Node) {
        let (g, i) = (self.g, self.count);
        self.count += 1;
        let label = match &n.kind {
            NodeKind::Op(op) => format!("{}{}", op.name(), super::text::attrs(op)),
            k => k.name().to_string(),
        };
        let ty: String = n.outputs.iter().map(|o| format!("\\n{}", g.value_type(*o))).collect();
        let _ = writeln!(self.s, "  n{i} [label=\"{}{ty}\"];", label.replace('"', "'"));
        for v in &n.inputs {
            let _ = writeln!(self.s, "  {} -> n{i};", self.producer[v.index()]);
        }
        match &n.kind {
            NodeKind::ReadVariable(r) => {
                let _ = writeln!(self.s, "  r{} -> n{i};", r.index());
            }
            NodeKind::AssignVariable(r) => {
                let _ = writeln!(self.s, "  n{i} -> r{};", r.index());
            }
            _ => {}
        }
        if n.effect.is_some() {
            if let Some(prev) = self.last_effect.replace(format!("n{i}")) {
                let _ = writeln!(self.s, "  {prev} -> n{i} [style=dashed, color=gray];");
            }
        }
        for (name, r) in super::text::region_names(&n.kind).iter().zip(&n.regions) {
            let _ = writeln!(self.s, "  subgraph cluster_n{i}_{name} {{\n  label=\"{name}\";");
            for p in &r.params {
                self.producer[p.index()] = format!("n{i}");
            }
            self.nodes(&r.nodes);
            for v in &r.results {
                let _ = writeln!(self.s, "  {} -> n{i} [style=dotted, label=\"yield\"];", self.producer[v.index()]);
            }
            self.s.push_str("  }\n");
        }
        for o in &n.outputs {
            self.producer[o.index()] = format!("n{i}");
        }
    }
}

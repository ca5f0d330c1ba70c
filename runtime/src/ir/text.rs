//! The stable text form of the IR.
//!
//! ```text
//! func @train_step(%0: f32[128,784], %1: f32[128,10]) -> (f32[]) {
//!   @0 = variable "dense/kernel" f32[784,10]
//!   %2: f32[] = const 0.01
//!   %3: f32[784,10] = read_variable @0 !e0
//!   %4: f32[128,10] = matmul[transpose_a=false, transpose_b=false] %0, %3
//!   assign_variable @0, %9 !e1
//!   return %8
//! }
//! ```
//!
//! Control flow prints its regions nested, each ending in `yield`:
//!
//! ```text
//!   %5: f32[16] = while[max_iterations=none] %0 {
//!     cond(%6: f32[16]) {
//!       %7: f32[] = reduce_sum[axes=[0], keepdims=false] %6
//!       %8: bool[] = less %7, %1
//!       yield %8
//!     }
//!     body(%9: f32[16]) {
//!       …
//!       yield %11
//!     }
//!   }
//! ```

use std::fmt::{self, Write};

use super::{Graph, Node, NodeKind, Region, Resource};
use crate::buffer::Buffer;
use crate::ops::nn::{Conv2dParams, Padding, PoolParams};
use crate::ops::{Distribution, Op, SliceAxis};
use crate::tensor::Tensor;

fn list(v: &[usize]) -> String {
    format!("[{}]", v.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(","))
}

fn padding(p: Padding) -> &'static str {
    match p {
        Padding::Same => "SAME",
        Padding::Valid => "VALID",
    }
}

fn slices(s: &[SliceAxis]) -> String {
    format!("[{}]", s.iter().map(|a| format!("{}:{}:{}", a.start, a.len, a.step)).collect::<Vec<_>>().join(","))
}

fn conv(p: &Conv2dParams) -> String {
    format!("strides={}, padding={}", list(&p.strides), padding(p.padding))
}

fn pool(p: &PoolParams) -> String {
    format!("ksize={}, strides={}, padding={}", list(&p.ksize), list(&p.strides), padding(p.padding))
}

fn dist(d: &Distribution) -> String {
    match d {
        Distribution::Uniform { low, high } => format!("uniform({low:?},{high:?})"),
        Distribution::Normal { mean, stddev } => format!("normal({mean:?},{stddev:?})"),
        Distribution::TruncatedNormal { mean, stddev } => format!("truncated_normal({mean:?},{stddev:?})"),
    }
}

/// Attributes of an op in `[k=v, …]` form ("" when it has none). `parse.rs` reads
/// exactly this back.
pub(crate) fn attrs(op: &Op) -> String {
    let a = match op {
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::StopGradient => return String::new(),
        Op::Fill { value } => format!("value={value:?}"),
        Op::Cumsum { axis, exclusive, reverse } | Op::Cumprod { axis, exclusive, reverse } => {
            format!("axis={axis}, exclusive={exclusive}, reverse={reverse}")
        }
        Op::Argsort { axis, descending, keep: None } => format!("axis={axis}, descending={descending}"),
        Op::Argsort { axis, descending, keep: Some(k) } => format!("axis={axis}, descending={descending}, keep={k}"),
        Op::Cast(d) => format!("to={d}"),
        Op::Reduce { axes, keepdims, .. } => format!("axes={}, keepdims={keepdims}", list(axes)),
        Op::ArgReduce { axis, .. } | Op::Concat { axis } | Op::Gather { axis } => format!("axis={axis}"),
        Op::MatMul { transpose_a, transpose_b } => format!("transpose_a={transpose_a}, transpose_b={transpose_b}"),
        Op::Reshape(s) | Op::BroadcastTo(s) => format!("shape={s}"),
        Op::Permute(p) => format!("perm={}", list(p)),
        Op::Slice(s) => format!("slices={}", slices(s)),
        Op::SliceGrad { input, slice } => format!("input={input}, slices={}", slices(slice)),
        Op::ScatterAdd { axis, size }
        | Op::ScatterMax { axis, size }
        | Op::ScatterMin { axis, size }
        | Op::ScatterProd { axis, size } => {
            format!("axis={axis}, size={size}")
        }
        Op::OneHot { depth, dtype } => format!("depth={depth}, dtype={dtype}"),
        Op::Conv2d(p) => conv(p),
        Op::Conv2dBackpropInput { params, input } => format!("{}, input={input}", conv(params)),
        Op::Conv2dBackpropFilter { params, filter } => format!("{}, filter={filter}", conv(params)),
        Op::MaxPool2d(p) | Op::MaxPool2dGrad(p) | Op::MaxPool2dGradGrad(p) | Op::AvgPool2d(p) => pool(p),
        Op::AvgPool2dGrad { params, input } => format!("{}, input={input}", pool(params)),
        Op::Random(p) => format!(
            "dist={}, shape={}, dtype={}, seed={}{}",
            dist(&p.dist),
            p.shape,
            p.dtype,
            p.seed.map_or("none".to_string(), |s| s.to_string()),
            if p.stateless { ", stateless=true" } else { "" }
        ),
    };
    format!("[{a}]")
}

fn const_text(t: &Tensor) -> String {
    if t.device() != crate::device::Device::Cpu {
        return match t.to(crate::device::Device::Cpu) {
            Ok(host) => format!("{} on {}", const_text(&host), t.device()),
            Err(_) => format!("<on {}>", t.device()),
        };
    }
    if t.numel() == 1 {
        match t.buffer() {
            Buffer::F32(v) => format!("{:?}", v[0]),
            Buffer::F64(v) => format!("{:?}", v[0]),
            Buffer::I32(v) => v[0].to_string(),
            Buffer::I64(v) => v[0].to_string(),
            Buffer::Bool(v) => v[0].to_string(),
        }
    } else {
        format!("<{} elements>", t.numel())
    }
}

impl fmt::Display for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let params: Vec<String> = self.params.iter().map(|p| format!("{p}: {}", self.value_type(*p))).collect();
        let results: Vec<String> = self.results.iter().map(|r| self.value_type(*r).to_string()).collect();
        writeln!(f, "func @{}({}) -> ({}) {{", self.name, params.join(", "), results.join(", "))?;
        for (i, r) in self.resources.iter().enumerate() {
            match r {
                Resource::Captured(v) => writeln!(f, "  @{i} = variable {:?} {}{}", v.name(), v.dtype(), v.shape())?,
                Resource::Param(t) => writeln!(f, "  @{i} = variable_param {t}")?,
            }
        }
        for (v, t) in &self.constants {
            writeln!(f, "  {v}: {} = const {}", self.value_type(*v), const_text(t))?;
        }
        self.write_nodes(f, &self.nodes, 1)?;
        let res: Vec<String> = self.results.iter().map(|v| v.to_string()).collect();
        writeln!(f, "  return {}", res.join(", "))?;
        f.write_str("}")
    }
}

/// Names of the regions of a control-flow node, in order.
pub(crate) fn region_names(kind: &NodeKind) -> &'static [&'static str] {
    match kind {
        NodeKind::Cond => &["then", "else"],
        NodeKind::While { .. } => &["cond", "body"],
        _ => &[],
    }
}

fn join(v: &[super::ValueId]) -> String {
    v.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

impl Graph {
    fn write_nodes(&self, f: &mut fmt::Formatter<'_>, nodes: &[Node], depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        for n in nodes {
            let mut line = pad.clone();
            if !n.outputs.is_empty() {
                let outs: Vec<String> = n.outputs.iter().map(|o| format!("{o}: {}", self.value_type(*o))).collect();
                let _ = write!(line, "{} = ", outs.join(", "));
            }
            let ins = join(&n.inputs);
            match &n.kind {
                NodeKind::Op(op) => {
                    let _ = write!(line, "{}{}", op.name(), attrs(op));
                    if !ins.is_empty() {
                        let _ = write!(line, " {ins}");
                    }
                }
                NodeKind::ReadVariable(r) => {
                    let _ = write!(line, "read_variable {r}");
                }
                NodeKind::AssignVariable(r) => {
                    let _ = write!(line, "assign_variable {r}, {ins}");
                }
                NodeKind::Print(t) => {
                    let _ = write!(line, "print {t:?}");
                    if !ins.is_empty() {
                        let _ = write!(line, ", {ins}");
                    }
                }
                NodeKind::Cond => {
                    let _ = write!(line, "cond {ins}");
                }
                NodeKind::While { max_iterations } => {
                    let m = max_iterations.map_or("none".to_string(), |m| m.to_string());
                    let _ = write!(line, "while[max_iterations={m}]");
                    if !ins.is_empty() {
                        let _ = write!(line, " {ins}");
                    }
                }
            }
            if let Some(e) = n.effect {
                let _ = write!(line, " !e{e}");
            }
            if n.regions.is_empty() {
                writeln!(f, "{line}")?;
                continue;
            }
            writeln!(f, "{line} {{")?;
            for (name, r) in region_names(&n.kind).iter().zip(&n.regions) {
                self.write_region(f, name, r, depth + 1)?;
            }
            writeln!(f, "{pad}}}")?;
        }
        Ok(())
    }

    fn write_region(&self, f: &mut fmt::Formatter<'_>, name: &str, r: &Region, depth: usize) -> fmt::Result {
        let pad = "  ".repeat(depth);
        let params: Vec<String> = r.params.iter().map(|p| format!("{p}: {}", self.value_type(*p))).collect();
        writeln!(f, "{pad}{name}({}) {{", params.join(", "))?;
        self.write_nodes(f, &r.nodes, depth + 1)?;
        writeln!(f, "{pad}  yield {}", join(&r.results))?;
        writeln!(f, "{pad}}}")
    }
}

//! Parser of the IR text form (`text.rs`), so golden tests round-trip: printing a
//! parsed graph gives the text back. Constants printed as `<N elements>` (the text form
//! elides large values) are read back as zeros of their type; resources named
//! `variable "…"` become fresh variables of that name holding zeros.

use std::collections::HashMap;

use super::{Graph, Node, NodeKind, Region, Resource, ResourceId, ValueId, ValueType};
use crate::dtype::DType;
use crate::ops::nn::{Conv2dParams, Padding, PoolParams};
use crate::ops::{ArgOp, BinaryOp, Distribution, Op, RandomParams, ReduceOp, SliceAxis, UnaryOp};
use crate::shape::Shape;
use crate::tensor::Tensor;
use crate::variable::Variable;

type R<T> = Result<T, String>;

fn dtype(s: &str) -> R<DType> {
    DType::ALL.into_iter().find(|d| d.name() == s).ok_or_else(|| format!("unknown dtype `{s}`"))
}

fn usizes(s: &str) -> R<Vec<usize>> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .ok_or_else(|| format!("expected [..], got `{s}`"))?;
    if inner.trim().is_empty() {
        return Ok(vec![]);
    }
    inner
        .split(',')
        .map(|x| match x.trim() {
            "?" => Ok(crate::shape::UNKNOWN),
            x => x.parse::<usize>().map_err(|e| format!("`{x}`: {e}")),
        })
        .collect()
}

fn shape(s: &str) -> R<Shape> {
    usizes(s).map(Shape::from)
}

/// `f32[2,3]`
fn value_type(s: &str) -> R<ValueType> {
    let s = s.trim();
    let i = s.find('[').ok_or_else(|| format!("expected a type like f32[2,3], got `{s}`"))?;
    Ok(ValueType { dtype: dtype(&s[..i])?, shape: shape(&s[i..])? })
}

/// `%3` / `@0`: a prefixed index.
fn id(s: &str, prefix: char, what: &str) -> R<u32> {
    s.trim()
        .strip_prefix(prefix)
        .and_then(|x| x.parse().ok())
        .ok_or_else(|| format!("expected {what} like {prefix}3, got `{s}`"))
}

fn value(s: &str) -> R<ValueId> {
    id(s, '%', "a value").map(ValueId)
}

fn resource(s: &str) -> R<ResourceId> {
    id(s, '@', "a resource").map(ResourceId)
}

/// Splits at top-level commas (not inside brackets, parentheses or quotes).
fn split_top(s: &str) -> Vec<&str> {
    let (mut depth, mut quoted, mut start, mut out) = (0i32, false, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' | '(' if !quoted => depth += 1,
            ']' | ')' if !quoted => depth -= 1,
            ',' if depth == 0 && !quoted => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    if !s[start..].trim().is_empty() {
        out.push(s[start..].trim());
    }
    out
}

fn attrs(s: &str) -> R<HashMap<String, String>> {
    split_top(s)
        .into_iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("bad attribute `{kv}`"))
        })
        .collect()
}

fn get<'a>(a: &'a HashMap<String, String>, k: &str) -> R<&'a str> {
    a.get(k).map(String::as_str).ok_or_else(|| format!("missing attribute `{k}`"))
}

fn num<T: std::str::FromStr>(a: &HashMap<String, String>, k: &str) -> R<T> {
    get(a, k)?.parse().map_err(|_| format!("attribute `{k}` is not a number"))
}

fn boolean(a: &HashMap<String, String>, k: &str) -> R<bool> {
    get(a, k)?.parse().map_err(|_| format!("attribute `{k}` is not true/false"))
}

fn two(a: &HashMap<String, String>, k: &str) -> R<[usize; 2]> {
    let v = usizes(get(a, k)?)?;
    v.try_into().map_err(|_| format!("attribute `{k}` needs two values"))
}

fn padding(a: &HashMap<String, String>) -> R<Padding> {
    match get(a, "padding")? {
        "SAME" => Ok(Padding::Same),
        "VALID" => Ok(Padding::Valid),
        p => Err(format!("unknown padding `{p}`")),
    }
}

fn slices(s: &str) -> R<Vec<SliceAxis>> {
    let inner = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')).ok_or("slices need [..]")?;
    if inner.is_empty() {
        return Ok(vec![]);
    }
    inner
        .split(',')
        .map(|t| {
            let p: Vec<&str> = t.split(':').collect();
            match p.as_slice() {
                [a, b, c] => Ok(SliceAxis {
                    start: a.parse().map_err(|_| "bad slice start")?,
                    len: b.parse().map_err(|_| "bad slice length")?,
                    step: c.parse().map_err(|_| "bad slice step")?,
                }),
                _ => Err(format!("bad slice `{t}`")),
            }
        })
        .collect()
}

fn distribution(s: &str) -> R<Distribution> {
    let (kind, rest) = s.split_once('(').ok_or_else(|| format!("bad distribution `{s}`"))?;
    let nums: Vec<f64> = rest
        .trim_end_matches(')')
        .split(',')
        .map(|x| x.trim().parse().map_err(|_| format!("bad number in `{s}`")))
        .collect::<R<_>>()?;
    let [a, b] = nums.as_slice() else { return Err(format!("bad distribution `{s}`")) };
    Ok(match kind {
        "uniform" => Distribution::Uniform { low: *a, high: *b },
        "normal" => Distribution::Normal { mean: *a, stddev: *b },
        "truncated_normal" => Distribution::TruncatedNormal { mean: *a, stddev: *b },
        k => return Err(format!("unknown distribution `{k}`")),
    })
}

fn op(name: &str, a: &HashMap<String, String>) -> R<Op> {
    if let Some(u) = UnaryOp::ALL.into_iter().find(|u| u.name() == name) {
        return Ok(Op::Unary(u));
    }
    if let Some(b) = BinaryOp::ALL.into_iter().find(|b| b.name() == name) {
        return Ok(Op::Binary(b));
    }
    if let Some(r) = ReduceOp::ALL.into_iter().find(|r| r.name() == name) {
        let axes = usizes(get(a, "axes")?)?.into_iter().collect();
        return Ok(Op::Reduce { op: r, axes, keepdims: boolean(a, "keepdims")? });
    }
    if let Some(r) = ArgOp::ALL.into_iter().find(|r| r.name() == name) {
        return Ok(Op::ArgReduce { op: r, axis: num(a, "axis")? });
    }
    let conv = || -> R<Conv2dParams> { Ok(Conv2dParams { strides: two(a, "strides")?, padding: padding(a)? }) };
    let pool = || -> R<PoolParams> {
        Ok(PoolParams { ksize: two(a, "ksize")?, strides: two(a, "strides")?, padding: padding(a)? })
    };
    Ok(match name {
        "where" => Op::Select,
        "stop_gradient" => Op::StopGradient,
        "fill_like" => Op::Fill { value: num(a, "value")? },
        "cast" => Op::Cast(dtype(get(a, "to")?)?),
        "matmul" => Op::MatMul { transpose_a: boolean(a, "transpose_a")?, transpose_b: boolean(a, "transpose_b")? },
        "reshape" => Op::Reshape(shape(get(a, "shape")?)?),
        "broadcast_to" => Op::BroadcastTo(shape(get(a, "shape")?)?),
        "transpose" => Op::Permute(usizes(get(a, "perm")?)?.into_iter().collect()),
        "concat" => Op::Concat { axis: num(a, "axis")? },
        "gather" => Op::Gather { axis: num(a, "axis")? },
        "cumsum" => {
            Op::Cumsum { axis: num(a, "axis")?, exclusive: boolean(a, "exclusive")?, reverse: boolean(a, "reverse")? }
        }
        "cumprod" => {
            Op::Cumprod { axis: num(a, "axis")?, exclusive: boolean(a, "exclusive")?, reverse: boolean(a, "reverse")? }
        }
        "argsort" => Op::Argsort {
            axis: num(a, "axis")?,
            descending: boolean(a, "descending")?,
            keep: a.contains_key("keep").then(|| num(a, "keep")).transpose()?,
        },
        "slice" => Op::Slice(slices(get(a, "slices")?)?),
        "slice_grad" => Op::SliceGrad { input: shape(get(a, "input")?)?, slice: slices(get(a, "slices")?)? },
        "scatter_add" => Op::ScatterAdd { axis: num(a, "axis")?, size: num(a, "size")? },
        "scatter_max" => Op::ScatterMax { axis: num(a, "axis")?, size: num(a, "size")? },
        "scatter_min" => Op::ScatterMin { axis: num(a, "axis")?, size: num(a, "size")? },
        "scatter_prod" => Op::ScatterProd { axis: num(a, "axis")?, size: num(a, "size")? },
        "one_hot" => Op::OneHot { depth: num(a, "depth")?, dtype: dtype(get(a, "dtype")?)? },
        "conv2d" => Op::Conv2d(conv()?),
        "conv2d_backprop_input" => Op::Conv2dBackpropInput { params: conv()?, input: shape(get(a, "input")?)? },
        "conv2d_backprop_filter" => Op::Conv2dBackpropFilter { params: conv()?, filter: shape(get(a, "filter")?)? },
        "max_pool2d" => Op::MaxPool2d(pool()?),
        "max_pool2d_grad" => Op::MaxPool2dGrad(pool()?),
        "max_pool2d_grad_grad" => Op::MaxPool2dGradGrad(pool()?),
        "avg_pool2d" => Op::AvgPool2d(pool()?),
        "avg_pool2d_grad" => Op::AvgPool2dGrad { params: pool()?, input: shape(get(a, "input")?)? },
        "random_uniform" | "random_normal" | "truncated_normal" => Op::Random(RandomParams {
            dist: distribution(get(a, "dist")?)?,
            shape: shape(get(a, "shape")?)?,
            dtype: dtype(get(a, "dtype")?)?,
            seed: match get(a, "seed")? {
                "none" => None,
                s => Some(s.parse().map_err(|_| format!("bad seed `{s}`"))?),
            },
            stateless: a.iter().any(|(k, v)| *k == "stateless" && *v == "true"),
        }),
        other => return Err(format!("unknown op `{other}`")),
    })
}

fn constant(ty: &ValueType, text: &str) -> R<Tensor> {
    if text.starts_with('<') {
        return Ok(Tensor::zeros(&ty.shape, ty.dtype));
    }
    let v: f64 = match text {
        "true" => 1.0,
        "false" => 0.0,
        t => t.parse().map_err(|_| format!("bad constant `{t}`"))?,
    };
    Ok(Tensor::full(&ty.shape, v, ty.dtype))
}

/// Splits a trailing ` !eN` effect marker off a line.
fn effect(line: &str) -> R<(&str, Option<u32>)> {
    match line.rsplit_once(" !e") {
        Some((rest, n)) => Ok((rest, Some(n.parse().map_err(|_| format!("bad effect marker `!e{n}`"))?))),
        None => Ok((line, None)),
    }
}

/// Declares `%N: type` (a parameter or an output) and returns its id.
fn declare(g: &mut Graph, decl: &str) -> R<ValueId> {
    let (v, ty) = decl.split_once(": ").ok_or_else(|| format!("expected `%N: type`, got `{decl}`"))?;
    let (v, ty) = (value(v)?, value_type(ty)?);
    if g.values.len() <= v.index() {
        g.values.resize(v.index() + 1, ty.clone());
    }
    g.values[v.index()] = ty;
    Ok(v)
}

type Lines<'a> = dyn Iterator<Item = (usize, &'a str)> + 'a;

/// Parses nodes up to the line starting with `end` (`return` or `yield`) and returns
/// them with the values that line lists.
fn parse_block(g: &mut Graph, lines: &mut Lines<'_>, end: &str) -> R<(Vec<Node>, Vec<ValueId>)> {
    let mut nodes = Vec::new();
    while let Some((n, line)) = lines.next() {
        let at = |e: String| format!("line {}: {e}: `{line}`", n + 1);
        if let Some(rest) = line.strip_prefix(end) {
            let results = split_top(rest).into_iter().map(value).collect::<R<_>>().map_err(at)?;
            return Ok((nodes, results));
        }
        let (body, opens) = match line.strip_suffix(" {") {
            Some(b) => (b, true),
            None => (line, false),
        };
        let Some(mut node) = parse_line(g, body).map_err(at)? else { continue };
        if opens {
            node.regions = parse_regions(g, lines)?;
        }
        nodes.push(node);
    }
    Err(format!("missing `{end}`"))
}

/// Parses `name(%p: type, …) { … yield … }` regions up to the closing `}` of their node.
fn parse_regions(g: &mut Graph, lines: &mut Lines<'_>) -> R<Vec<Region>> {
    let mut regions = Vec::new();
    while let Some((n, line)) = lines.next() {
        if line == "}" {
            return Ok(regions);
        }
        let at = |e: String| format!("line {}: {e}: `{line}`", n + 1);
        let header = line
            .strip_suffix(") {")
            .and_then(|h| h.split_once('('))
            .ok_or_else(|| at("expected a region `name(…) {`".into()))?;
        let params = split_top(header.1).into_iter().map(|p| declare(g, p)).collect::<R<Vec<_>>>().map_err(at)?;
        let (nodes, results) = parse_block(g, lines, "yield")?;
        match lines.next() {
            Some((_, "}")) => {}
            _ => return Err(at("region not closed with `}` after its yield".into())),
        }
        regions.push(Region { params, nodes, results });
    }
    Err("unclosed control-flow node".into())
}

/// Parses one line: resources and constants go straight into `g`; a node is returned.
fn parse_line(g: &mut Graph, line: &str) -> R<Option<Node>> {
    if line.starts_with('@') {
        let (_, def) = line.split_once(" = ").ok_or("bad resource line")?;
        let r = if let Some(t) = def.strip_prefix("variable_param ") {
            Resource::Param(value_type(t)?)
        } else {
            let rest = def.strip_prefix("variable \"").ok_or("bad resource line")?;
            let (name, ty) = rest.split_once("\" ").ok_or("bad variable line")?;
            let ty = value_type(ty)?;
            Resource::Captured(Variable::new(Tensor::zeros(&ty.shape, ty.dtype), name))
        };
        g.resources.push(r);
        return Ok(None);
    }
    let (line, eff) = effect(line)?;
    let (outs, rhs) = match line.split_once(" = ") {
        Some((lhs, rhs)) if lhs.starts_with('%') => {
            (split_top(lhs).into_iter().map(|d| declare(g, d)).collect::<R<Vec<_>>>()?, rhs)
        }
        _ => (vec![], line),
    };
    if let Some(c) = rhs.strip_prefix("const ") {
        let v = *outs.first().ok_or("a constant needs a value")?;
        let t = constant(g.value_type(v), c.trim())?;
        g.constants.push((v, t));
        return Ok(None);
    }
    let (kind, inputs) = if let Some(r) = rhs.strip_prefix("cond ") {
        (NodeKind::Cond, vec![value(r)?])
    } else if let Some(r) = rhs.strip_prefix("while[max_iterations=") {
        let (m, args) = r.split_once(']').ok_or("unclosed while attributes")?;
        let max_iterations = match m {
            "none" => None,
            m => Some(m.parse().map_err(|_| format!("bad max_iterations `{m}`"))?),
        };
        (NodeKind::While { max_iterations }, split_top(args).into_iter().map(value).collect::<R<_>>()?)
    } else if let Some(r) = rhs.strip_prefix("read_variable ") {
        (NodeKind::ReadVariable(resource(r)?), vec![])
    } else if let Some(r) = rhs.strip_prefix("assign_variable ") {
        let (res, x) = r.split_once(',').ok_or("assign_variable needs a resource and a value")?;
        (NodeKind::AssignVariable(resource(res)?), vec![value(x)?])
    } else if let Some(r) = rhs.strip_prefix("print ") {
        let parts = split_top(r);
        let t = parts
            .first()
            .and_then(|t| t.strip_prefix('"'))
            .and_then(|t| t.strip_suffix('"'))
            .ok_or("print needs a quoted template")?;
        (NodeKind::Print(t.replace("\\\"", "\"")), parts[1..].iter().map(|v| value(v)).collect::<R<_>>()?)
    } else {
        let (head, args) = match rhs.find(" %") {
            Some(i) => (&rhs[..i], &rhs[i + 1..]),
            None => (rhs, ""),
        };
        let (name, attr) = match head.split_once('[') {
            Some((n, a)) => (n, attrs(a.strip_suffix(']').ok_or("unclosed attributes")?)?),
            None => (head, HashMap::new()),
        };
        (NodeKind::Op(op(name.trim(), &attr)?), split_top(args).into_iter().map(value).collect::<R<_>>()?)
    };
    let mut node = Node::simple(kind, inputs, None);
    node.outputs = outs;
    node.effect = eff;
    Ok(Some(node))
}

/// Parses the text form of one function.
pub fn parse(text: &str) -> Result<Graph, String> {
    let mut lines = text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or("empty text")?;
    let rest = header.strip_prefix("func @").ok_or("expected `func @name(`")?;
    let (name, rest) = rest.split_once('(').ok_or("expected `(` after the name")?;
    let (params, _) = rest.rsplit_once(") -> (").ok_or("expected `) -> (`")?;
    let mut g = Graph::new(name);
    for p in split_top(params) {
        let v = declare(&mut g, p).map_err(|e| format!("bad parameter `{p}`: {e}"))?;
        g.params.push(v);
    }
    let mut lines = lines.map(|(n, l)| (n, l.trim()));
    let (nodes, results) = parse_block(&mut g, &mut lines, "return")?;
    g.nodes = nodes;
    g.results = results;
    Ok(g)
}

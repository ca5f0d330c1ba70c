//! `einsum`: Einstein summation (`tf.einsum`, `np.einsum`), built from the primitives.
//!
//! The equation names every axis of every operand with a letter (`"bij,bjk->bik"`);
//! `...` stands for broadcast axes. Letters repeated in one operand take a diagonal,
//! letters missing from the output are summed. Operands are contracted left to right,
//! each pair as one (batched) matmul when a letter is summed over and both sides keep
//! letters of their own, otherwise as a broadcast multiply and a sum — so `einsum`
//! traces, compiles and differentiates like the ops it is made of. Transposed operands
//! use matmul's transpose flags instead of a copy.

use std::panic::Location;

use super::shape::SliceArg;
use crate::dtype::DType;
use crate::error::OpError;
use crate::shape::{Shape, UNKNOWN};
use crate::tensor::Tensor;

/// An axis name: a letter's code, or [`ELLIPSIS`] + the position among the broadcast
/// axes that `...` stands for (counted from the left of the widest `...`).
type Label = u32;
const ELLIPSIS: Label = 1 << 16;

fn show(l: Label) -> String {
    match char::from_u32(l) {
        Some(c) if l < ELLIPSIS => format!("'{c}'"),
        _ => format!("axis {} of '...'", l - ELLIPSIS),
    }
}

/// A parsed equation, with `...` expanded into labels.
#[derive(Debug, PartialEq)]
struct Equation {
    inputs: Vec<Vec<Label>>,
    output: Vec<Label>,
}

/// The letters of one subscript and where its `...` is (as a letter index).
fn split_subscript(s: &str) -> Result<(Vec<Label>, Option<usize>), String> {
    let mut labels = Vec::new();
    let mut ellipsis = None;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("...") {
            if ellipsis.replace(labels.len()).is_some() {
                return Err(format!("'...' appears twice in \"{s}\""));
            }
            rest = after;
        } else if c.is_ascii_alphabetic() {
            labels.push(c as Label);
            rest = &rest[1..];
        } else {
            return Err(format!("unexpected character '{c}' in \"{s}\" (subscripts are letters and '...')"));
        }
    }
    Ok((labels, ellipsis))
}

fn parse(equation: &str, ranks: &[usize]) -> Result<Equation, String> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) if r.contains("->") => return Err(format!("\"{l}->{r}\" has more than one '->'")),
        Some((l, r)) => (l, Some(r)),
        None => (eq.as_str(), None),
    };
    let subscripts: Vec<&str> = lhs.split(',').collect();
    if subscripts.len() != ranks.len() {
        return Err(format!("the equation has {} input subscripts for {} operands", subscripts.len(), ranks.len()));
    }
    let mut parsed = Vec::with_capacity(ranks.len());
    for (k, (s, &rank)) in subscripts.iter().zip(ranks).enumerate() {
        let (labels, ellipsis) = split_subscript(s)?;
        let fits = if ellipsis.is_some() { labels.len() <= rank } else { labels.len() == rank };
        if !fits {
            return Err(format!("subscript \"{s}\" names {} axes, but operand {k} has rank {rank}", labels.len()));
        }
        parsed.push((labels, ellipsis));
    }
    // Broadcast axes line up from the right, as in NumPy broadcasting.
    let widest = parsed.iter().zip(ranks).map(|((l, e), &r)| if e.is_some() { r - l.len() } else { 0 }).max();
    let widest = widest.unwrap_or(0) as Label;
    let inputs: Vec<Vec<Label>> = parsed
        .iter()
        .zip(ranks)
        .map(|((labels, ellipsis), &rank)| match ellipsis {
            None => labels.clone(),
            Some(at) => {
                let n = (rank - labels.len()) as Label;
                let broadcast = (widest - n..widest).map(|i| ELLIPSIS + i);
                labels[..*at].iter().copied().chain(broadcast).chain(labels[*at..].iter().copied()).collect()
            }
        })
        .collect();
    let output = match rhs {
        Some(r) => {
            let (labels, ellipsis) = split_subscript(r)?;
            if ellipsis.is_none() && widest > 0 {
                return Err(format!("the inputs have '...' axes, so the output \"{r}\" needs a '...' too"));
            }
            let at = ellipsis.unwrap_or(labels.len());
            let out: Vec<Label> = labels[..at]
                .iter()
                .copied()
                .chain((0..widest).map(|i| ELLIPSIS + i))
                .chain(labels[at..].iter().copied())
                .collect();
            for (i, l) in labels.iter().enumerate() {
                if labels[..i].contains(l) {
                    return Err(format!("the output \"{r}\" names {} twice", show(*l)));
                }
                if !inputs.iter().any(|inp| inp.contains(l)) {
                    return Err(format!("the output \"{r}\" names {}, which no input has", show(*l)));
                }
            }
            out
        }
        None => {
            // Implicit output: the broadcast axes, then every letter used once, sorted.
            let mut once: Vec<Label> = inputs
                .iter()
                .flatten()
                .copied()
                .filter(|&l| l < ELLIPSIS && inputs.iter().flatten().filter(|&&m| m == l).count() == 1)
                .collect();
            once.sort_unstable();
            (0..widest).map(|i| ELLIPSIS + i).chain(once).collect()
        }
    };
    Ok(Equation { inputs, output })
}

/// Checks that every letter has one size (broadcast axes may also be 1).
fn check_sizes(eq: &Equation, operands: &[&Tensor]) -> Result<(), String> {
    let mut seen: Vec<(Label, usize, usize)> = Vec::new();
    for (k, (labels, t)) in eq.inputs.iter().zip(operands).enumerate() {
        for (&l, &d) in labels.iter().zip(t.dims()) {
            if d == UNKNOWN || (l >= ELLIPSIS && d == 1) {
                continue;
            }
            match seen.iter().find(|s| s.0 == l) {
                Some(&(_, size, other)) if size != d => {
                    return Err(format!("{} has size {size} in operand {other} but {d} in operand {k}", show(l)));
                }
                Some(_) => {}
                None => seen.push((l, d, k)),
            }
        }
    }
    Ok(())
}

/// A tensor with a label for each of its axes.
struct Term {
    t: Tensor,
    labels: Vec<Label>,
}

/// Product of dims; unknown when one of them is.
fn product(dims: impl IntoIterator<Item = usize>) -> usize {
    dims.into_iter().try_fold(1usize, |p, d| (d != UNKNOWN).then(|| p * d)).unwrap_or(UNKNOWN)
}

impl Term {
    fn dims_of(&self, labels: &[Label]) -> Vec<usize> {
        labels.iter().map(|l| self.t.dims()[self.pos(*l)]).collect()
    }

    fn pos(&self, l: Label) -> usize {
        self.labels.iter().position(|&m| m == l).unwrap_or_else(|| unreachable!("label {l} not in the term"))
    }

    /// The term with its axes in `order` (no copy when they already are).
    #[track_caller]
    fn arranged(&self, order: &[Label]) -> Tensor {
        let perm: Vec<i64> = order.iter().map(|&l| self.pos(l) as i64).collect();
        if perm.iter().enumerate().all(|(i, &p)| p == i as i64) {
            self.t.clone()
        } else {
            self.t.permute(&perm)
        }
    }

    /// Takes the diagonal of the first label that appears twice, until none does.
    #[track_caller]
    fn diagonals(mut self) -> Result<Term, String> {
        while let Some(q) = (1..self.labels.len()).find(|&q| self.labels[..q].contains(&self.labels[q])) {
            let l = self.labels[q];
            let p = self.pos(l);
            let n = match (self.t.dims()[p], self.t.dims()[q]) {
                (UNKNOWN, UNKNOWN) => return Err(format!("the repeated label {} needs a known size", show(l))),
                (UNKNOWN, n) | (n, _) => n,
            };
            let others: Vec<usize> = (0..self.labels.len()).filter(|&i| i != p && i != q).collect();
            let rest: Vec<Label> = others.iter().map(|&i| self.labels[i]).collect();
            let mut dims: Vec<usize> = others.iter().map(|&i| self.t.dims()[i]).collect();
            if dims.iter().filter(|&&d| d == UNKNOWN).count() > 1 {
                return Err(format!("the diagonal of {} needs at most one axis of unknown size beside it", show(l)));
            }
            let perm: Vec<i64> = others.iter().chain([&p, &q]).map(|&i| i as i64).collect();
            dims.push(n * n);
            let flat = self.t.permute(&perm).reshape_to(&Shape::from(dims));
            let mut args = vec![SliceArg::full(); rest.len() + 1];
            args[rest.len()] = SliceArg::new(Some(0), None, n as i64 + 1);
            self.t = flat.slice(&args);
            self.labels = rest;
            self.labels.push(l);
        }
        Ok(self)
    }

    /// Sums away the labels that are not in `keep`.
    #[track_caller]
    fn sum_except(self, keep: &[Label]) -> Term {
        let gone: Vec<i64> =
            (0..self.labels.len()).filter(|&i| !keep.contains(&self.labels[i])).map(|i| i as i64).collect();
        if gone.is_empty() {
            return self;
        }
        let labels = self.labels.iter().copied().filter(|l| keep.contains(l)).collect();
        Term { t: self.t.sum(gone, false), labels }
    }
}

/// `a` and `b` contracted into a term of the labels in `keep` (plus nothing else).
///
/// The plan depends on the equation only, never on which sizes are known, so a traced
/// call runs the ops an eager call runs.
#[track_caller]
fn contract(a: Term, b: Term, keep: &[Label]) -> Result<Term, String> {
    let shared = |l: &&Label| b.labels.contains(l);
    let batch: Vec<Label> = a.labels.iter().filter(shared).filter(|l| keep.contains(l)).copied().collect();
    let summed: Vec<Label> = a.labels.iter().filter(shared).filter(|l| !keep.contains(l)).copied().collect();
    let m: Vec<Label> = a.labels.iter().filter(|l| !b.labels.contains(l)).copied().collect();
    let n: Vec<Label> = b.labels.iter().filter(|l| !a.labels.contains(l)).copied().collect();
    if summed.is_empty() || (m.is_empty() && n.is_empty()) {
        // Broadcast multiply, then sum: a[batch, m, 1.., k] * b[batch, 1.., n, k].
        let labels: Vec<Label> = [&batch[..], &m, &n].concat();
        let mut x = a.arranged(&[&batch[..], &m, &summed].concat());
        for _ in &n {
            x = x.expand_dims((batch.len() + m.len()) as i64);
        }
        let mut y = b.arranged(&[&batch[..], &n, &summed].concat());
        for _ in &m {
            y = y.expand_dims(batch.len() as i64);
        }
        let prod = &x * &y;
        let t = match summed.len() {
            0 => prod,
            k => prod.sum((labels.len()..labels.len() + k).map(|i| i as i64).collect::<Vec<_>>(), false),
        };
        return Ok(Term { t, labels });
    }
    // One matmul over the summed labels (merged into one axis K). Of a's own labels the
    // last is its matrix axis M and the others batch axes (of size 1 in b), so the
    // result needs no split there; b's own labels merge into N, which a shared b (no
    // batch labels: a weight) turns into one GEMM over all of a's rows:
    // a[batch, m.., M, K] · b[batch, 1.., K, N].
    let (m_lead, m_last) = m.split_at(m.len().saturating_sub(1));
    let k_size = product(a.dims_of(&summed));
    let unknowns = |s: &Shape| s.iter().filter(|&&d| d == UNKNOWN).count();
    // The reshapes resolve unknown dims one to one, or a single one from the element
    // count: an unknown axis merged with (or split from) others needs the latter.
    let resolvable = |merged: &[Label], size: usize, target: &Shape, what: &str, of: &Shape| -> Result<(), String> {
        if merged.len() > 1 && size == UNKNOWN && unknowns(target) > 1 {
            return Err(format!(
                "its matmul {what} {of} into one, which needs all but one axis of {target} to have a known size \
                 (give them one in the input_signature)"
            ));
        }
        Ok(())
    };
    // Matmul's operand for one side (its batch-axis labels `lead`, its matrix labels
    // `mat`), and whether it is transposed (a layout of [.., K, M] for a, [.., N, K]
    // for b, used as it is).
    let side = |term: &Term, lead: &[Label], mat: &[Label], ones_before: usize, own_first: bool| {
        let order = |own_then_k: bool| -> Vec<Label> {
            let pair = if own_then_k { [mat, &summed].concat() } else { [&summed[..], mat].concat() };
            [&batch[..], lead, &pair].concat()
        };
        let (straight, flipped) = (order(own_first), order(!own_first));
        // As it is when either layout fits; else the one that keeps the operand's last
        // axis last, so that the permute copies whole rows.
        let transposed = term.labels != straight
            && (term.labels == flipped
                || (flipped.last() == term.labels.last() && straight.last() != term.labels.last()));
        let own_size = product(term.dims_of(mat));
        let pair = if transposed == own_first { [k_size, own_size] } else { [own_size, k_size] };
        let mut target = term.dims_of(&batch);
        target.extend(std::iter::repeat_n(1, ones_before));
        target.extend(term.dims_of(lead));
        target.extend(pair);
        let target = Shape::from(target);
        resolvable(&summed, k_size, &target, "merges the summed axes of", term.t.shape())?;
        resolvable(mat, own_size, &target, "merges the axes of", term.t.shape())?;
        let order = if transposed { flipped } else { straight };
        Ok::<_, String>((term.arranged(&order).reshape_to(&target), transposed))
    };
    let (x, ta) = side(&a, m_lead, m_last, 0, true)?;
    let (y, tb) = side(&b, &[], &n, m_lead.len(), false)?;
    let prod = x.matmul_t(&y, ta, tb);
    // Drop the M or N axis of 1 that a side without labels of its own got, and split N.
    let rank = prod.rank();
    let mut out_dims: Vec<usize> = prod.dims()[..rank - 2].to_vec();
    if !m_last.is_empty() {
        out_dims.push(prod.dims()[rank - 2]);
    }
    out_dims.extend(b.dims_of(&n));
    let out = Shape::from(out_dims);
    resolvable(&n, product(b.dims_of(&n)), &out, "splits the axes of", b.t.shape())?;
    let labels: Vec<Label> = [&batch[..], m_lead, m_last, &n].concat();
    Ok(Term { t: prod.reshape_to(&out), labels })
}

impl Tensor {
    /// Einstein summation over `operands` (`tf.einsum`, `np.einsum`):
    /// `Tensor::einsum("bij,bjk->bik", &[&a, &b])` is a batched matmul,
    /// `"ij->ji"` a transpose, `"ii->"` a trace, `"ii->i"` a diagonal,
    /// `"bi,ij,bj->b"` a bilinear form, `"...ij,...jk->...ik"` a matmul whose leading
    /// axes broadcast. Without `->` the output is `...` and then every letter used once,
    /// in alphabetical order. Letters summed over in two operands become one batched
    /// matmul; several operands are contracted left to right. All operands need one
    /// numeric dtype.
    #[track_caller]
    pub fn einsum(equation: &str, operands: &[&Tensor]) -> Tensor {
        let at = Location::caller();
        let fail = |msg: String| -> ! {
            OpError::new("einsum", format!("\"{equation}\": {msg}"))
                .with_operands(operands.iter().map(|t| (t.dtype(), t.shape())))
                .raise(at)
        };
        let Some(first) = operands.first() else { fail("needs at least one operand".into()) };
        if let Some(t) = operands.iter().find(|t| t.dtype() != first.dtype()) {
            fail(format!("operands of dtypes {} and {} (cast them to one dtype)", first.dtype(), t.dtype()))
        }
        if first.dtype() == DType::Bool {
            fail("needs numeric operands, got bool (cast them first)".into())
        }
        let ranks: Vec<usize> = operands.iter().map(|t| t.rank()).collect();
        let eq = parse(equation, &ranks).unwrap_or_else(|m| fail(m));
        check_sizes(&eq, operands).unwrap_or_else(|m| fail(m));
        let mut terms = Vec::with_capacity(operands.len());
        for (t, labels) in operands.iter().zip(&eq.inputs) {
            let term = Term { t: (*t).clone(), labels: labels.clone() }.diagonals().unwrap_or_else(|m| fail(m));
            terms.push(term);
        }
        // Labels still needed after contracting terms[..=i]: the output's and later ones'.
        let needed = |rest: &[Term]| -> Vec<Label> {
            eq.output.iter().chain(rest.iter().flat_map(|t| t.labels.iter())).copied().collect()
        };
        let mut rest = terms.split_off(1);
        let mut acc = terms.pop().unwrap_or_else(|| unreachable!("one operand at least"));
        acc = acc.sum_except(&needed(&rest));
        while !rest.is_empty() {
            let next = rest.remove(0);
            let keep = needed(&rest);
            let next = next.sum_except(&[&keep[..], &acc.labels].concat());
            acc = contract(acc, next, &keep).unwrap_or_else(|m| fail(m));
        }
        let order: Vec<Label> = eq.output.clone();
        acc.arranged(&order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(s: &str) -> Vec<Label> {
        s.chars().map(|c| c as Label).collect()
    }

    #[test]
    fn parses_explicit_implicit_and_broadcast_equations() {
        let eq = parse("ij,jk->ik", &[2, 2]).unwrap();
        assert_eq!(eq.inputs, [letters("ij"), letters("jk")]);
        assert_eq!(eq.output, letters("ik"));
        // Implicit: letters used once, sorted (uppercase before lowercase, as in NumPy).
        assert_eq!(parse("ba,cb", &[2, 2]).unwrap().output, letters("ac"));
        assert_eq!(parse("Ab,b", &[2, 1]).unwrap().output, letters("A"));
        // `...` lines up from the right: operand 1's single broadcast axis is axis 1.
        let eq = parse("...ij,...j->...i", &[4, 2]).unwrap();
        assert_eq!(eq.inputs[0], [ELLIPSIS, ELLIPSIS + 1, 'i' as Label, 'j' as Label]);
        assert_eq!(eq.inputs[1], [ELLIPSIS + 1, 'j' as Label]);
        assert_eq!(eq.output, [ELLIPSIS, ELLIPSIS + 1, 'i' as Label]);
        assert_eq!(parse(" i j -> j i ", &[2]).unwrap().output, letters("ji"));
    }

    #[test]
    fn rejects_malformed_equations() {
        let err = |e: &str, ranks: &[usize]| parse(e, ranks).unwrap_err();
        assert!(err("ij,jk", &[2]).contains("2 input subscripts for 1 operands"));
        assert!(err("ij->i->j", &[2]).contains("more than one '->'"));
        assert!(err("i1", &[2]).contains("unexpected character '1'"));
        assert!(err("ijk", &[2]).contains("names 3 axes, but operand 0 has rank 2"));
        assert!(err("...i...", &[3]).contains("'...' appears twice"));
        assert!(err("...i->i", &[3]).contains("needs a '...' too"));
        assert!(err("ij->ii", &[2]).contains("names 'i' twice"));
        assert!(err("ij->k", &[2]).contains("names 'k', which no input has"));
    }
}

//! Reading the PTX text of one entry into the interpreter's instructions.

use std::collections::HashMap;

use super::Program;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Kind {
    F,
    R,
    Rd,
    P,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Operand {
    Reg(Kind, usize),
    Imm(u64),
    Special(&'static str),
    Param(usize),
    Label(usize),
    Addr(Box<Operand>),
    Vec4([usize; 4]),
}

#[derive(Clone, Debug)]
pub(super) struct Ins {
    pub(super) guard: Option<(usize, bool)>,
    pub(super) op: String,
    pub(super) args: Vec<Operand>,
}

fn parse_operand(s: &str, params: &[String], labels: &HashMap<String, usize>) -> Result<Operand, String> {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        if let Some(i) = params.iter().position(|p| p == inner) {
            return Ok(Operand::Param(i));
        }
        return Ok(Operand::Addr(Box::new(parse_operand(inner, params, labels)?)));
    }
    if let Some(inner) = s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        let regs: Vec<usize> = inner
            .split(',')
            .map(|r| match parse_operand(r, params, labels) {
                Ok(Operand::Reg(Kind::F, i)) => Ok(i),
                other => Err(format!("a vector of f32 registers holds {other:?}")),
            })
            .collect::<Result<_, _>>()?;
        return regs.try_into().map(Operand::Vec4).map_err(|_| format!("not a 4-vector: {s}"));
    }
    for (prefix, kind) in [("%rd", Kind::Rd), ("%r", Kind::R), ("%f", Kind::F), ("%p", Kind::P)] {
        if let Some(n) = s.strip_prefix(prefix).and_then(|n| n.parse().ok()) {
            return Ok(Operand::Reg(kind, n));
        }
    }
    for sp in ["%tid.x", "%ntid.x", "%ctaid.x", "%nctaid.x"] {
        if s == sp {
            return Ok(Operand::Special(sp));
        }
    }
    if let Some(&l) = labels.get(s) {
        return Ok(Operand::Label(l));
    }
    if let Some(h) = s.strip_prefix("0d") {
        return u64::from_str_radix(h, 16).map(Operand::Imm).map_err(|e| format!("{s}: {e}"));
    }
    if let Some(h) = s.strip_prefix("0f") {
        return u32::from_str_radix(h, 16).map(|b| Operand::Imm(b as u64)).map_err(|e| format!("{s}: {e}"));
    }
    if let Some(h) = s.strip_prefix("0x") {
        return u64::from_str_radix(h, 16).map(Operand::Imm).map_err(|e| format!("{s}: {e}"));
    }
    if let Some(n) = s.strip_prefix('-') {
        return n.parse::<u64>().map(|v| Operand::Imm(v.wrapping_neg())).map_err(|e| format!("{s}: {e}"));
    }
    s.parse::<u64>().map(Operand::Imm).map_err(|_| format!("an operand this emulator does not know: {s}"))
}

/// `NAME[N] = {w0, w1, …};` (after `.const .align 8 .b64`): the name and its N words.
fn parse_const_array(decl: &str) -> Result<(String, Vec<u64>), String> {
    let (head, init) = decl.split_once('=').ok_or("a .const array without initialiser")?;
    let (name, len) = head.trim().trim_end_matches(']').split_once('[').ok_or("a .const array without a size")?;
    let len: usize = len.parse().map_err(|_| format!("a .const size: {len}"))?;
    let init = init.trim().trim_end_matches(';').trim();
    let inner =
        init.strip_prefix('{').and_then(|r| r.strip_suffix('}')).ok_or("a .const initialiser without braces")?;
    let words = inner
        .split(',')
        .map(|w| {
            let w = w.trim();
            let digits = w.strip_prefix("0x").ok_or_else(|| format!("a .const word that is not hex: {w}"))?;
            u64::from_str_radix(digits, 16).map_err(|e| format!("{w}: {e}"))
        })
        .collect::<Result<Vec<u64>, String>>()?;
    if words.len() != len {
        return Err(format!("a .const array of {len} words initialised with {}", words.len()));
    }
    Ok((name.trim().to_string(), words))
}

/// Splits `a, {b, c}, [d]` at top-level commas.
fn split_args(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, ch) in s.char_indices() {
        match ch {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            ',' if depth == 0 => {
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

impl Program {
    /// Parses the module's one entry.
    pub fn parse(ptx: &str) -> Result<Program, String> {
        let mut params = Vec::new();
        let mut lines = Vec::new();
        let mut in_body = false;
        let mut shared: Option<(String, usize)> = None;
        let mut constants: Option<(String, Vec<u64>)> = None;
        for line in ptx.lines() {
            let t = line.trim();
            if let Some(decl) = t.strip_prefix(".const .align 8 .b64 ") {
                if constants.is_some() {
                    return Err("more than one .const array".into());
                }
                constants = Some(parse_const_array(decl)?);
            } else if let Some(decl) = t.strip_prefix(".shared .align 4 .f32 ") {
                let (name, len) =
                    decl.trim_end_matches("];").split_once('[').ok_or("a .shared array without a size")?;
                if shared.is_some() {
                    return Err("more than one .shared array".into());
                }
                shared = Some((name.to_string(), len.parse().map_err(|_| format!("a .shared size: {len}"))?));
            } else if let Some(p) = t.strip_prefix(".param .u64 ") {
                params.push(p.trim_end_matches(',').trim().to_string());
            } else if t == "{" {
                in_body = true;
            } else if in_body && !t.is_empty() && !t.starts_with(".reg") && t != "}" {
                // The shared and the constant array's names are their addresses (each
                // in its own space): 0.
                let mut t = t.to_string();
                for name in [&shared.as_ref().map(|s| &s.0), &constants.as_ref().map(|c| &c.0)].into_iter().flatten() {
                    t = t.replace(name.as_str(), "0");
                }
                lines.push(t);
            }
        }
        let mut labels = HashMap::new();
        let mut n = 0;
        for l in &lines {
            match l.strip_suffix(':') {
                Some(name) => {
                    labels.insert(name.to_string(), n);
                }
                None => n += 1,
            }
        }
        let mut code = Vec::new();
        let mut regs = [0usize; 4];
        for l in lines.iter().filter(|l| !l.ends_with(':')) {
            let body = l.trim_end_matches(';').trim();
            let (guard, body) = match body.strip_prefix('@') {
                Some(rest) => {
                    let (g, rest) = rest.split_once(' ').ok_or_else(|| format!("a guard alone: {l}"))?;
                    let (neg, g) = g.strip_prefix('!').map_or((false, g), |g| (true, g));
                    match parse_operand(g, &params, &labels)? {
                        Operand::Reg(Kind::P, i) => (Some((i, !neg)), rest.trim()),
                        other => return Err(format!("a guard that is not a predicate: {other:?}")),
                    }
                }
                None => (None, body),
            };
            let (op, rest) = body.split_once(char::is_whitespace).unwrap_or((body, ""));
            let args = split_args(rest)
                .into_iter()
                .map(|a| parse_operand(a, &params, &labels))
                .collect::<Result<Vec<_>, _>>()?;
            for a in &args {
                let mut note = |k: Kind, i: usize| {
                    let slot = &mut regs[k as usize];
                    *slot = (*slot).max(i + 1);
                };
                match a {
                    Operand::Reg(k, i) => note(*k, *i),
                    Operand::Addr(b) => {
                        if let Operand::Reg(k, i) = **b {
                            note(k, i)
                        }
                    }
                    Operand::Vec4(v) => v.iter().for_each(|i| note(Kind::F, *i)),
                    _ => {}
                }
            }
            code.push(Ins { guard, op: op.to_string(), args });
        }
        let constants = constants.map_or_else(Vec::new, |(_, words)| words);
        Ok(Program { params, code, regs, shared: shared.map_or(0, |(_, n)| n), constants })
    }
}

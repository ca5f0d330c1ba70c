//! Rewrites of jumps that AutoGraph can express without them:
//!
//! * in the body of a loop converted to a `while_loop`, `break` and `continue` become
//!   assignments of the flags `__tj_break` / `__tj_continue` (scalar bool tensors), and
//!   every statement after one that may have jumped is guarded by
//!   `if proceed(&__tj_break, &__tj_continue) { … }` (the guard is itself an `if` on a
//!   tensor, converted like any other); the loop condition also tests `!__tj_break`;
//! * in the function's outermost block, `if c { …; return e; } rest` becomes
//!   `if c { …; e } else { rest }`, which means the same in Rust and is a plain `cond`
//!   when `c` is a tensor.

use syn::{parse_quote, Block, Expr, Stmt};

use super::scan::{jumps_of_expr, jumps_of_stmts};

enum Jump {
    Break,
    Continue,
}

fn jump(s: &Stmt) -> Option<Jump> {
    match s {
        Stmt::Expr(Expr::Break(b), _) if b.label.is_none() && b.expr.is_none() => Some(Jump::Break),
        Stmt::Expr(Expr::Continue(c), _) if c.label.is_none() => Some(Jump::Continue),
        _ => None,
    }
}

/// Whether every loop jump in `stmts` sits where `convert` can reach it: directly in the
/// statement list, or in (nested) `if` branches and blocks used as statements.
pub fn convertible(stmts: &[Stmt]) -> bool {
    stmts.iter().all(|s| {
        if jump(s).is_some() {
            return true;
        }
        match s {
            Stmt::Expr(e, _) if jumps_of_expr(e).loop_jumps => match e {
                Expr::If(i) => {
                    convertible(&i.then_branch.stmts)
                        && i.else_branch.as_ref().is_none_or(|(_, e)| convertible(&[Stmt::Expr((**e).clone(), None)]))
                }
                Expr::Block(b) => b.label.is_none() && convertible(&b.block.stmts),
                _ => false,
            },
            Stmt::Local(_) | Stmt::Macro(_) | Stmt::Item(_) => !jumps_of_stmts(std::slice::from_ref(s)).loop_jumps,
            _ => true,
        }
    })
}

/// The statements with their loop jumps turned into flag assignments, and whether they
/// may have jumped.
pub fn convert(stmts: Vec<Stmt>) -> (Vec<Stmt>, bool) {
    let mut out = Vec::new();
    let mut it = stmts.into_iter();
    while let Some(s) = it.next() {
        match jump(&s) {
            Some(Jump::Break) => {
                out.push(parse_quote!(__tj_break = ::tensorjit::autograph::flag(true);));
                return (out, true);
            }
            Some(Jump::Continue) => {
                out.push(parse_quote!(__tj_continue = ::tensorjit::autograph::flag(true);));
                return (out, true);
            }
            None => {}
        }
        let jumps = matches!(&s, Stmt::Expr(e, _) if jumps_of_expr(e).loop_jumps);
        if !jumps {
            out.push(s);
            continue;
        }
        out.push(convert_stmt(s));
        let (rest, _) = convert(it.collect());
        if !rest.is_empty() {
            out.push(parse_quote! {
                if ::tensorjit::autograph::proceed(&__tj_break, &__tj_continue) {
                    #(#rest)*
                }
            });
        }
        return (out, true);
    }
    (out, false)
}

fn convert_block(b: Block) -> Block {
    Block { brace_token: b.brace_token, stmts: convert(b.stmts).0 }
}

fn convert_stmt(s: Stmt) -> Stmt {
    match s {
        Stmt::Expr(Expr::If(mut i), _) => {
            i.then_branch = convert_block(i.then_branch);
            if let Some((t, e)) = i.else_branch.take() {
                let e = match *e {
                    Expr::Block(mut b) => {
                        b.block = convert_block(b.block);
                        Expr::Block(b)
                    }
                    other => match convert_stmt(Stmt::Expr(other, None)) {
                        Stmt::Expr(e, _) => e,
                        _ => unreachable!("convert_stmt keeps expression statements"),
                    },
                };
                i.else_branch = Some((t, Box::new(e)));
            }
            // As a statement (`if` branches are `()` once their jumps are flags).
            Stmt::Expr(Expr::If(i), Some(Default::default()))
        }
        Stmt::Expr(Expr::Block(mut b), _) => {
            b.block = convert_block(b.block);
            Stmt::Expr(Expr::Block(b), Some(Default::default()))
        }
        other => other,
    }
}

/// `return e` (or `return`) as the last statement: its value.
fn trailing_return(stmts: &[Stmt]) -> Option<Expr> {
    match stmts.last()? {
        Stmt::Expr(Expr::Return(r), _) => Some(r.expr.as_deref().cloned().unwrap_or_else(|| parse_quote!(()))),
        _ => None,
    }
}

/// A block ending in `return e` with no other `return`/`?`: the block with `e` as tail.
fn returning_block(b: &Block) -> Option<Block> {
    let e = trailing_return(&b.stmts)?;
    let head = &b.stmts[..b.stmts.len() - 1];
    if jumps_of_stmts(head).returns || jumps_of_expr(&e).returns {
        return None;
    }
    let mut stmts = head.to_vec();
    stmts.push(Stmt::Expr(e, None));
    Some(Block { brace_token: b.brace_token, stmts })
}

/// Rewrites early returns in the function's outermost block (see the module docs).
pub fn early_returns(stmts: Vec<Stmt>) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = Vec::new();
    let mut it = stmts.into_iter().peekable();
    while let Some(s) = it.next() {
        let Stmt::Expr(Expr::If(i), _) = &s else {
            if it.peek().is_none() {
                if let Some(e) = trailing_return(std::slice::from_ref(&s)) {
                    if !jumps_of_expr(&e).returns {
                        out.push(Stmt::Expr(e, None));
                        return out;
                    }
                }
            }
            out.push(s);
            continue;
        };
        let Some(then_b) = returning_block(&i.then_branch) else {
            out.push(s);
            continue;
        };
        let rest: Vec<Stmt> = it.collect();
        let else_b: Block = match &i.else_branch {
            Some((_, e)) => match &**e {
                Expr::Block(b) => match returning_block(&b.block) {
                    Some(rb) => rb,
                    None if jumps_of_stmts(&b.block.stmts).returns => {
                        // A return elsewhere in the else branch: leave the `if` as written.
                        out.push(s.clone());
                        out.extend(rest);
                        return out;
                    }
                    None => {
                        let inner = &b.block;
                        let mut stmts: Vec<Stmt> = vec![parse_quote!(#inner;)];
                        stmts.extend(rest);
                        Block { brace_token: b.block.brace_token, stmts: early_returns(stmts) }
                    }
                },
                other => {
                    let mut stmts: Vec<Stmt> = vec![Stmt::Expr(other.clone(), Some(Default::default()))];
                    stmts.extend(rest);
                    Block { brace_token: Default::default(), stmts: early_returns(stmts) }
                }
            },
            None => Block { brace_token: Default::default(), stmts: early_returns(rest) },
        };
        let mut new_if = i.clone();
        new_if.then_branch = then_b;
        new_if.else_branch = Some((
            Default::default(),
            Box::new(Expr::Block(syn::ExprBlock { attrs: vec![], label: None, block: else_b })),
        ));
        out.push(Stmt::Expr(Expr::If(new_if), None));
        return out;
    }
    out
}

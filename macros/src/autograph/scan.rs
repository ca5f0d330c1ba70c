//! Syntactic facts AutoGraph needs about a block: which outer variables it assigns and
//! which jumps (`break`, `continue`, `return`, `?`) leave it. Closures, nested items and
//! async blocks are opaque: their jumps and assignments belong to them.

use std::collections::HashSet;

use syn::visit::{self, Visit};
use syn::{BinOp, Expr, Ident, Pat};

/// Variables assigned (`x = …`, `x += …`, `x.f = …`, `(a, b) = …`) inside and not
/// declared by a `let` inside, in order of first assignment.
pub fn assigned<'a>(blocks: impl IntoIterator<Item = &'a syn::Block>) -> Vec<Ident> {
    let mut v = Assigned::default();
    for b in blocks {
        v.visit_block(b);
    }
    v.found.into_iter().filter(|i| !v.declared.contains(&i.to_string())).collect()
}

#[derive(Default)]
struct Assigned {
    found: Vec<Ident>,
    declared: HashSet<String>,
}

impl Assigned {
    fn target(&mut self, e: &Expr) {
        match e {
            Expr::Path(p) if p.qself.is_none() && p.path.segments.len() == 1 => {
                let id = &p.path.segments[0].ident;
                if !self.found.iter().any(|f| f == id) {
                    self.found.push(id.clone());
                }
            }
            Expr::Field(f) => self.target(&f.base),
            Expr::Index(i) => self.target(&i.expr),
            Expr::Paren(p) => self.target(&p.expr),
            Expr::Tuple(t) => t.elems.iter().for_each(|e| self.target(e)),
            _ => {}
        }
    }
}

fn pat_idents(p: &Pat, out: &mut HashSet<String>) {
    struct Idents<'a>(&'a mut HashSet<String>);
    impl Visit<'_> for Idents<'_> {
        fn visit_pat_ident(&mut self, p: &syn::PatIdent) {
            self.0.insert(p.ident.to_string());
            visit::visit_pat_ident(self, p);
        }
    }
    Idents(out).visit_pat(p);
}

impl Visit<'_> for Assigned {
    fn visit_expr_assign(&mut self, e: &syn::ExprAssign) {
        self.target(&e.left);
        visit::visit_expr_assign(self, e);
    }
    fn visit_expr_binary(&mut self, e: &syn::ExprBinary) {
        use BinOp::*;
        if matches!(
            e.op,
            AddAssign(_)
                | SubAssign(_)
                | MulAssign(_)
                | DivAssign(_)
                | RemAssign(_)
                | BitXorAssign(_)
                | BitAndAssign(_)
                | BitOrAssign(_)
                | ShlAssign(_)
                | ShrAssign(_)
        ) {
            self.target(&e.left);
        }
        visit::visit_expr_binary(self, e);
    }
    fn visit_local(&mut self, l: &syn::Local) {
        pat_idents(&l.pat, &mut self.declared);
        visit::visit_local(self, l);
    }
    fn visit_expr_for_loop(&mut self, f: &syn::ExprForLoop) {
        pat_idents(&f.pat, &mut self.declared);
        visit::visit_expr_for_loop(self, f);
    }
    fn visit_expr_closure(&mut self, _: &syn::ExprClosure) {}
    fn visit_item(&mut self, _: &syn::Item) {}
    fn visit_expr_async(&mut self, _: &syn::ExprAsync) {}
    fn visit_macro(&mut self, _: &syn::Macro) {}
}

/// The jumps that leave a block.
#[derive(Default, Clone, Copy, Debug, PartialEq)]
pub struct Jumps {
    /// An unlabelled `break` / `continue` for the loop around the block.
    pub loop_jumps: bool,
    /// `return` or `?`.
    pub returns: bool,
    /// A labelled `break` / `continue`, or `break` with a value.
    pub labelled: bool,
}

struct JumpScan {
    jumps: Jumps,
    /// Nesting depth of loops inside the scanned block.
    depth: usize,
}

/// The jumps out of `stmts`.
pub fn jumps_of_stmts(stmts: &[syn::Stmt]) -> Jumps {
    let mut s = JumpScan { jumps: Jumps::default(), depth: 0 };
    stmts.iter().for_each(|st| s.visit_stmt(st));
    s.jumps
}

/// The jumps out of an expression.
pub fn jumps_of_expr(e: &Expr) -> Jumps {
    let mut s = JumpScan { jumps: Jumps::default(), depth: 0 };
    s.visit_expr(e);
    s.jumps
}

impl Visit<'_> for JumpScan {
    fn visit_expr_break(&mut self, b: &syn::ExprBreak) {
        if b.label.is_some() || b.expr.is_some() {
            self.jumps.labelled = true;
        } else if self.depth == 0 {
            self.jumps.loop_jumps = true;
        }
        visit::visit_expr_break(self, b);
    }
    fn visit_expr_continue(&mut self, c: &syn::ExprContinue) {
        if c.label.is_some() {
            self.jumps.labelled = true;
        } else if self.depth == 0 {
            self.jumps.loop_jumps = true;
        }
    }
    fn visit_expr_return(&mut self, r: &syn::ExprReturn) {
        self.jumps.returns = true;
        visit::visit_expr_return(self, r);
    }
    fn visit_expr_try(&mut self, t: &syn::ExprTry) {
        self.jumps.returns = true;
        visit::visit_expr_try(self, t);
    }
    fn visit_expr_while(&mut self, w: &syn::ExprWhile) {
        self.visit_expr(&w.cond);
        self.depth += 1;
        self.visit_block(&w.body);
        self.depth -= 1;
    }
    fn visit_expr_for_loop(&mut self, f: &syn::ExprForLoop) {
        self.visit_expr(&f.expr);
        self.depth += 1;
        self.visit_block(&f.body);
        self.depth -= 1;
    }
    fn visit_expr_loop(&mut self, l: &syn::ExprLoop) {
        self.depth += 1;
        self.visit_block(&l.body);
        self.depth -= 1;
    }
    fn visit_expr_closure(&mut self, _: &syn::ExprClosure) {}
    fn visit_item(&mut self, _: &syn::Item) {}
    fn visit_expr_async(&mut self, _: &syn::ExprAsync) {}
    fn visit_expr_try_block(&mut self, _: &syn::ExprTryBlock) {}
}

/// Whether a condition is an `if let` / `let` chain (left to Rust).
pub fn is_let_condition(e: &Expr) -> bool {
    match e {
        Expr::Let(_) => true,
        Expr::Binary(b) => is_let_condition(&b.left) || is_let_condition(&b.right),
        Expr::Paren(p) => is_let_condition(&p.expr),
        _ => false,
    }
}

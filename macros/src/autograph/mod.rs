//! AutoGraph: rewriting `if`, `while` and `for … in tf_range(..)` in a `#[tf_function]`
//! body so that they work on tensor conditions (the run-time half is
//! `tensorjit::autograph`).
//!
//! Every converted construct evaluates its condition once and matches on its type at
//! run time: a `bool` runs the user's own Rust code (exact Rust semantics), a `Tensor`
//! runs the converted form, which records a `cond` / `while` node when traced. The
//! variables a branch or loop body assigns (found syntactically, `scan.rs`) travel
//! through it as a tuple. Jumps the converted form cannot express become trait-bound
//! errors on the condition's type, so they fail to compile exactly when the condition is
//! a `Tensor`, at the user's span, saying why and what to write instead.

mod jumps;
mod scan;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::visit_mut::{self, VisitMut};
use syn::{Block, Expr, Ident, Index, Stmt};

use scan::{assigned, is_let_condition, jumps_of_stmts};

/// The most variables one converted block may assign (the run time's tuple impls).
const MAX_STATE: usize = 15;

/// Rewrites the function body in place.
pub fn convert(body: &mut Block) {
    body.stmts = jumps::early_returns(std::mem::take(&mut body.stmts));
    Rewriter.visit_block_mut(body);
}

struct Rewriter;

fn verbatim(ts: TokenStream) -> Expr {
    Expr::Verbatim(ts)
}

fn names(vars: &[Ident], extra: &[&str]) -> TokenStream {
    let n: Vec<String> = vars.iter().map(|v| v.to_string()).chain(extra.iter().map(|s| s.to_string())).collect();
    quote!(&[#(#n),*])
}

/// `v1 = __tj_r.0; …` (after a converted block), with lints about unread values off:
/// the user's own code reads them where Rust would.
fn assign_back(vars: &[Ident], offset: usize) -> TokenStream {
    let idx: Vec<Index> = (0..vars.len()).map(|k| Index::from(k + offset)).collect();
    quote! {
        #[allow(unused_assignments)]
        let () = { #(#vars = __tj_r.#idx.into_inner();)* };
    }
}

/// The state tuple of `vars` (each wrapped by `autograph::Probe`, see `Carried`).
fn carry(vars: &[Ident]) -> TokenStream {
    quote!((#((&::tensorjit::autograph::Probe::new(#vars)).carry(),)*))
}

/// `let (mut v1, …) = (s.0.into_inner(), …);` from the state tuple `s`.
fn unpack(vars: &[Ident], s: &Ident, offset: usize, mutable: bool) -> TokenStream {
    let idx: Vec<Index> = (0..vars.len()).map(|k| Index::from(k + offset)).collect();
    let m = mutable.then(|| quote!(mut));
    quote! {
        #[allow(unused_mut, unused_variables)]
        let (#(#m #vars,)*) = (#(#s.#idx.into_inner(),)*);
    }
}

fn carry_traits() -> TokenStream {
    quote!(
        #[allow(unused_imports)]
        use ::tensorjit::autograph::{ViaAutoState as _, ViaOpaque as _};
    )
}

fn too_many(vars: &[Ident], span: Span) -> Option<Expr> {
    (vars.len() > MAX_STATE).then(|| {
        let msg = format!(
            "AutoGraph: this block assigns {} variables declared outside it (at most {MAX_STATE} are supported); group \
             some into a tuple or a Vec",
            vars.len()
        );
        verbatim(quote_spanned!(span=> { ::std::compile_error!(#msg); }))
    })
}

fn else_block(e: Option<(syn::token::Else, Box<Expr>)>) -> Option<Block> {
    e.map(|(_, e)| match *e {
        Expr::Block(b) => b.block,
        other => Block { brace_token: Default::default(), stmts: vec![Stmt::Expr(other, None)] },
    })
}

impl Rewriter {
    fn rewritten(&mut self, mut b: Block) -> Block {
        self.visit_block_mut(&mut b);
        b
    }

    fn rewrite_if(&mut self, i: syn::ExprIf) -> Expr {
        let span = i.if_token.span;
        let mut cond = *i.cond;
        self.visit_expr_mut(&mut cond);
        let else_b = else_block(i.else_branch);
        let mut jumps = jumps_of_stmts(&i.then_branch.stmts);
        if let Some(e) = &else_b {
            let j = jumps_of_stmts(&e.stmts);
            jumps = scan::Jumps {
                loop_jumps: jumps.loop_jumps || j.loop_jumps,
                returns: jumps.returns || j.returns,
                labelled: jumps.labelled || j.labelled,
            };
        }
        let vars = assigned(std::iter::once(&i.then_branch).chain(else_b.as_ref()));
        let then_r = self.rewritten(i.then_branch);
        let else_r = else_b.map(|b| self.rewritten(b));
        let else_tokens = else_r.as_ref().map(|b| quote!(else #b));
        if jumps.returns || jumps.labelled {
            return verbatim(quote_spanned! {span=>
                if ::tensorjit::autograph::static_only_return(#cond) #then_r #else_tokens
            });
        }
        if jumps.loop_jumps {
            return verbatim(quote_spanned! {span=>
                if ::tensorjit::autograph::static_only_jump(__tj_m, #cond) #then_r #else_tokens
            });
        }
        if let Some(e) = too_many(&vars, span) {
            return e;
        }
        let names = names(&vars, &["__tj_out"]);
        let out = Index::from(vars.len());
        let back = assign_back(&vars, 0);
        let else_value = else_r.map(|b| b.into_token_stream()).unwrap_or_else(|| quote!(()));
        let state = carry(&vars);
        let new = quote_spanned!(span=> ::tensorjit::autograph::If::new(__tj_t, #state, #names));
        let s = Ident::new("__tj_s", Span::call_site());
        let unpacked = unpack(&vars, &s, 0, true);
        let mut with_out = vars.clone();
        with_out.push(Ident::new("__tj_out", Span::call_site()));
        let result = carry(&with_out);
        let traits = carry_traits();
        let test = quote_spanned!(cond.span()=> ::tensorjit::autograph::test(__tj_c));
        verbatim(quote! {{
            let __tj_c = #cond;
            match #test {
                ::tensorjit::autograph::Test::Static(__tj_b) => if __tj_b #then_r #else_tokens,
                ::tensorjit::autograph::Test::Tensor(__tj_t) => {
                    #traits
                    let mut __tj_if = #new;
                    if let ::std::option::Option::Some(__tj_s) = __tj_if.run_then() {
                        #unpacked
                        let __tj_out = #then_r;
                        __tj_if.end_then(#result);
                    }
                    if let ::std::option::Option::Some(__tj_s) = __tj_if.run_else() {
                        #unpacked
                        let __tj_out = #else_value;
                        __tj_if.end_else(#result);
                    }
                    let __tj_r = __tj_if.finish();
                    #back
                    __tj_r.#out.into_inner()
                }
            }
        }})
    }

    /// A loop that stays a Rust loop: its body gets the marker that `break`s under
    /// tensor conditions are checked against.
    fn mark(&mut self, body: Block) -> Block {
        let mut b = self.rewritten(body);
        b.stmts.insert(0, syn::parse_quote!(let __tj_m = ::tensorjit::autograph::marker(&true);));
        b
    }

    /// The converted body of a tensor loop: jumps → flags, then rewritten.
    fn tensor_body(&mut self, body: &Block) -> (Vec<Stmt>, bool) {
        let has_jumps = jumps_of_stmts(&body.stmts).loop_jumps;
        let (mut stmts, _) = jumps::convert(body.stmts.clone());
        if has_jumps {
            stmts.insert(0, syn::parse_quote!(let mut __tj_continue = ::tensorjit::autograph::flag(false);));
        }
        let b = self.rewritten(Block { brace_token: body.brace_token, stmts });
        (b.stmts, has_jumps)
    }

    fn rewrite_while(&mut self, w: syn::ExprWhile) -> Expr {
        let span = w.while_token.span;
        let mut cond = *w.cond;
        self.visit_expr_mut(&mut cond);
        let j = jumps_of_stmts(&w.body.stmts);
        if w.label.is_some() || j.returns || j.labelled || !jumps::convertible(&w.body.stmts) {
            let label = &w.label;
            let body = self.mark(w.body);
            return verbatim(quote_spanned! {span=>
                #label while ::tensorjit::autograph::static_loop(#cond) #body
            });
        }
        // The Rust arm's jumps are checked against this loop's condition type (`__tj_m`).
        let static_body = self.rewritten(w.body.clone());
        let (tensor_stmts, has_jumps) = self.tensor_body(&w.body);
        let mut vars = assigned([&w.body]);
        if has_jumps {
            vars.push(Ident::new("__tj_break", Span::call_site()));
        }
        if let Some(e) = too_many(&vars, span) {
            return e;
        }
        let names = names(&vars, &[]);
        let back = assign_back(&vars, 0);
        let flag = has_jumps.then(|| quote!(let mut __tj_break = ::tensorjit::autograph::flag(false);));
        let test = if has_jumps {
            quote!(::tensorjit::autograph::unbroken(&__tj_break, ::tensorjit::autograph::to_tensor(#cond)))
        } else {
            quote!(::tensorjit::autograph::to_tensor(#cond))
        };
        let state = carry(&vars);
        let new = quote_spanned!(span=> ::tensorjit::autograph::While::with_first(__tj_first, #state, #names));
        let s = Ident::new("__tj_s", Span::call_site());
        let (plain, unpacked) = (unpack(&vars, &s, 0, false), unpack(&vars, &s, 0, true));
        let traits = carry_traits();
        let classify = quote_spanned!(cond.span()=> ::tensorjit::autograph::test(__tj_c));
        verbatim(quote! {{
            let __tj_c = #cond;
            let __tj_m = ::tensorjit::autograph::marker(&__tj_c);
            match #classify {
                ::tensorjit::autograph::Test::Static(__tj_first) => {
                    let mut __tj_first = ::std::option::Option::Some(__tj_first);
                    while match __tj_first.take() {
                        ::std::option::Option::Some(__tj_b) => __tj_b,
                        ::std::option::Option::None => ::tensorjit::autograph::static_value(#cond),
                    } #static_body
                }
                ::tensorjit::autograph::Test::Tensor(__tj_first) => {
                    #traits
                    #flag
                    let mut __tj_w = #new;
                    while let ::std::option::Option::Some(__tj_s) = __tj_w.cond_state() {
                        #plain
                        let __tj_cond = match __tj_w.take_first() {
                            ::std::option::Option::Some(__tj_t) => __tj_t,
                            ::std::option::Option::None => #test,
                        };
                        let ::std::option::Option::Some(__tj_s) = __tj_w.body_state(__tj_cond, #state) else { break };
                        #unpacked
                        #(#tensor_stmts)*
                        __tj_w.end_body(#state);
                    }
                    let __tj_r = __tj_w.finish();
                    #back
                }
            }
        }})
    }

    fn is_tf_range(e: &Expr) -> bool {
        match e {
            Expr::Call(c) => {
                matches!(&*c.func, Expr::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "tf_range"))
            }
            Expr::Paren(p) => Rewriter::is_tf_range(&p.expr),
            _ => false,
        }
    }

    fn rewrite_for(&mut self, mut f: syn::ExprForLoop) -> Expr {
        self.visit_expr_mut(&mut f.expr);
        if !Rewriter::is_tf_range(&f.expr) || f.label.is_some() {
            f.body = self.mark(f.body);
            return Expr::ForLoop(f);
        }
        let span = f.for_token.span;
        let j = jumps_of_stmts(&f.body.stmts);
        if j.returns || j.labelled || !jumps::convertible(&f.body.stmts) {
            return verbatim(quote_spanned! {span=> { ::std::compile_error!(
                "AutoGraph cannot convert this `for … in tf_range(..)`: its body has a `return`, `?`, a labelled \
                 `break`/`continue` or a `break`/`continue` inside a `match`; a loop over `tf_range` is always a \
                 tensor loop — compute a flag instead, or iterate a Rust range"
            ); }});
        }
        let (tensor_stmts, has_jumps) = self.tensor_body(&f.body);
        let mut vars = assigned([&f.body]);
        if has_jumps {
            vars.push(Ident::new("__tj_break", Span::call_site()));
        }
        if let Some(e) = too_many(&vars, span) {
            return e;
        }
        let names = names(&vars, &[]);
        let (pat, range) = (&f.pat, &f.expr);
        let back = assign_back(&vars, 1);
        let flag = has_jumps.then(|| quote!(let mut __tj_break = ::tensorjit::autograph::flag(false);));
        let test = if has_jumps {
            quote!(::tensorjit::autograph::unbroken(&__tj_break, __tj_range.in_range(&__tj_i)))
        } else {
            quote!(__tj_range.in_range(&__tj_i))
        };
        let mut all = vec![Ident::new("__tj_i", Span::call_site())];
        all.extend(vars.iter().cloned());
        let state = carry(&all);
        let start = quote!(::std::clone::Clone::clone(&__tj_range.start));
        let first = quote!((&::tensorjit::autograph::Probe::new(#start)).carry());
        let new = quote_spanned!(span=> ::tensorjit::autograph::While::new(
            (#first, #((&::tensorjit::autograph::Probe::new(#vars)).carry(),)*), #names));
        let s = Ident::new("__tj_s", Span::call_site());
        let (plain, unpacked) = (unpack(&all, &s, 0, false), unpack(&all, &s, 0, true));
        let traits = carry_traits();
        verbatim(quote! {{
            #traits
            let __tj_range: ::tensorjit::TfRange = #range;
            #flag
            let mut __tj_w = #new;
            while let ::std::option::Option::Some(__tj_s) = __tj_w.cond_state() {
                #plain
                let __tj_cond = #test;
                let ::std::option::Option::Some(__tj_s) = __tj_w.body_state(__tj_cond, #state) else { break };
                #unpacked
                let #pat = ::std::clone::Clone::clone(&__tj_i);
                #(#tensor_stmts)*
                __tj_i = &__tj_i + &__tj_range.step;
                __tj_w.end_body(#state);
            }
            let __tj_r = __tj_w.finish();
            #back
        }})
    }
}

impl VisitMut for Rewriter {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::If(i) if !is_let_condition(&i.cond) => {
                let i = i.clone();
                *e = self.rewrite_if(i);
            }
            Expr::While(w) if !is_let_condition(&w.cond) => {
                let w = w.clone();
                *e = self.rewrite_while(w);
            }
            Expr::While(w) => {
                let body = std::mem::replace(&mut w.body, Block { brace_token: Default::default(), stmts: vec![] });
                w.body = self.mark(body);
                self.visit_expr_mut(&mut w.cond);
            }
            Expr::ForLoop(f) => {
                let f = f.clone();
                *e = self.rewrite_for(f);
            }
            Expr::Loop(l) => {
                let body = std::mem::replace(&mut l.body, Block { brace_token: Default::default(), stmts: vec![] });
                l.body = self.mark(body);
            }
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }

    // Items nested in the body are separate functions.
    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

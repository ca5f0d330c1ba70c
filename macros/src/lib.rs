//! Procedural macros of tensorjit: `#[tf_function]`.
//!
//! Structured as parse (`parse.rs`: the attribute's options) → analyse (`analyse.rs`:
//! validate the function and classify its arguments, collecting every error with the
//! user's span) → expand (`expand.rs`). Diagnostics are pinned by trybuild tests in
//! `tests/ui/`.

mod analyse;
mod autograph;
mod derive;
mod expand;
mod parse;

use proc_macro::TokenStream;

/// Traces the function into a graph per input signature and runs the graph afterwards
/// (TensorFlow's `@tf.function`).
///
/// Arguments may be `&Tensor` / `Tensor` (part of the signature by dtype and shape),
/// `&Variable` / `Variable` (bound per call: one trace serves every variable of a
/// dtype and shape), `&[Tensor]` / `Vec<Tensor>`, and any other
/// `Hash + Eq + Clone + Debug` value (static: part of the key by value; a new value
/// retraces). Results: `()`, `Tensor`, tuples and `Vec`s of those.
///
/// AutoGraph (on unless `autograph = false`): `if` / `while` / `for … in tf_range(..)` on
/// tensor conditions become `cond` / `while` nodes; on `bool` conditions they are left as
/// Rust (see `tensorjit::autograph`).
///
/// Options: `name = "…"`, `run_eagerly = true` (always run the body eagerly),
/// `cache_size = N` (bound on the number of cached traces),
/// `input_signature = [TensorSpec::new(DType::F32, &[None, Some(784)]), …]` (one trace
/// for every tensor that fits; others are rejected) and `reduce_retracing = true`
/// (generalise the dims that change between traces).
///
/// Introspection goes through a module of the same name:
/// `train_step::tracing_count()`, `train_step::concrete_functions()`,
/// `train_step::function()`.
///
/// On a method taking `&self` (in an `impl` of a type with `#[derive(Clone, FunctionArgs)]`)
/// the instance's fields are keyed by identity, so each instance traces its own concrete
/// functions and captures its variables; introspection is `Type::method_function()`.
#[proc_macro_attribute]
pub fn tf_function(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = match parse::options(attr.into()) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let func = match syn::parse::<syn::ItemFn>(item) {
        Ok(f) => f,
        Err(e) => {
            let mut err =
                syn::Error::new(e.span(), "#[tf_function] applies to a function (`fn name(args) -> Tensor { … }`)");
            err.combine(e);
            return err.to_compile_error().into();
        }
    };
    match analyse::analyse(&func) {
        Ok(sig) => expand::expand(&func, &sig, &options).into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Makes a struct usable as the `&self` of `#[tf_function]` methods: every field enters
/// the cache key by identity (variables and tensors by id — so each instance traces its
/// own concrete functions —, other fields by value) and the trace captures them. The
/// struct must be `Clone` (cheap for variables and tensors).
#[proc_macro_derive(FunctionArgs)]
pub fn derive_function_args(item: TokenStream) -> TokenStream {
    match syn::parse::<syn::DeriveInput>(item).and_then(derive::derive) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

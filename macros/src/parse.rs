//! The attribute's options: `#[tf_function(name = "...", run_eagerly = true, cache_size = 8)]`.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::{LitBool, LitInt, LitStr};

#[derive(Default)]
pub struct Options {
    pub name: Option<String>,
    pub run_eagerly: Option<bool>,
    pub cache_size: Option<usize>,
    /// An expression evaluating to the specs (e.g. `[TensorSpec::new(DType::F32, &[None, Some(784)])]`).
    pub input_signature: Option<syn::Expr>,
    pub reduce_retracing: Option<bool>,
    /// `autograph = false` leaves `if` / `while` / `for` as written.
    pub autograph: Option<bool>,
}

pub fn options(attr: TokenStream) -> syn::Result<Options> {
    let mut o = Options::default();
    let mut errors: Option<syn::Error> = None;
    let parser = syn::meta::parser(|meta| {
        let key = meta.path.get_ident().map(|i| i.to_string()).unwrap_or_default();
        let result = match key.as_str() {
            "name" => meta.value()?.parse::<LitStr>().map(|s| o.name = Some(s.value())),
            "run_eagerly" => meta.value()?.parse::<LitBool>().map(|b| o.run_eagerly = Some(b.value)),
            "cache_size" => {
                meta.value()?.parse::<LitInt>().and_then(|n| n.base10_parse().map(|n| o.cache_size = Some(n)))
            }
            "input_signature" => meta.value()?.parse::<syn::Expr>().map(|e| o.input_signature = Some(e)),
            "reduce_retracing" => meta.value()?.parse::<LitBool>().map(|b| o.reduce_retracing = Some(b.value)),
            "autograph" => meta.value()?.parse::<LitBool>().map(|b| o.autograph = Some(b.value)),
            _ => Err(meta.error(format!(
                "unknown #[tf_function] option `{key}`; expected `name = \"…\"`, `run_eagerly = true|false`, \
                 `cache_size = N`, `input_signature = [TensorSpec, …]`, `reduce_retracing = true` or \
                 `autograph = true|false`"
            ))),
        };
        if let Err(e) = result {
            // Collect every bad option, not just the first.
            match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            }
            // Skip the rest of this option's tokens.
            if meta.input.peek(syn::Token![=]) {
                let _: syn::Token![=] = meta.input.parse()?;
                let _: syn::Expr = meta.input.parse()?;
            }
        }
        Ok(())
    });
    parser.parse2(attr)?;
    match errors {
        Some(e) => Err(e),
        None => Ok(o),
    }
}

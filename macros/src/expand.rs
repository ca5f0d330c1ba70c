//! Expansion of `#[tf_function]` on `fn name(args) -> R { body }`:
//!
//! * a hidden `static` holding the `tensorjit::Function` (created on first use),
//! * `fn name` with the user's signature, which calls it,
//! * `mod name` with `tracing_count()`, `concrete_functions()` and `function()`.

use proc_macro2::{Group, Ident, TokenStream, TokenTree};
use quote::{format_ident, quote, ToTokens};
use syn::{ItemFn, ReturnType};

use crate::analyse::{Analysed, ArgKind};
use crate::parse::Options;

pub fn expand(f: &ItemFn, a: &Analysed, o: &Options) -> TokenStream {
    let vis = &f.vis;
    let attrs = &f.attrs;
    let sig = &f.sig;
    let name = &sig.ident;
    let mut block = (*f.block).clone();
    if o.autograph != Some(false) {
        crate::autograph::convert(&mut block);
    }
    let body = &block;
    let display = o.name.clone().unwrap_or_else(|| name.to_string());
    let ret = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, t) => quote!(#t),
    };
    let static_name = format_ident!("__TJ_FUNCTION_{}", name.to_string().to_uppercase());
    let getter = format_ident!("__tj_function_{}", name);

    let mut owned = Vec::new();
    let mut pats = Vec::new();
    let mut calls = Vec::new();
    let mut rebinds = Vec::new();
    for arg in &a.args {
        let id = &arg.ident;
        let ty = &arg.ty;
        let m = if arg.mutable { quote!(mut) } else { quote!() };
        pats.push(quote!(#m #id));
        match &arg.kind {
            ArgKind::TensorRef => {
                owned.push(quote!(::tensorjit::Tensor));
                calls.push(quote!(::std::clone::Clone::clone(#id)));
                rebinds.push(quote!(let #id: #ty = &#id;));
            }
            ArgKind::VariableRef => {
                owned.push(quote!(::tensorjit::Variable));
                calls.push(quote!(::std::clone::Clone::clone(#id)));
                rebinds.push(quote!(let #id: #ty = &#id;));
            }
            ArgKind::Owned => {
                owned.push(quote!(#ty));
                calls.push(quote!(#id));
            }
            ArgKind::TensorSlice => {
                owned.push(quote!(::std::vec::Vec<::tensorjit::Tensor>));
                calls.push(quote!(#id.to_vec()));
                rebinds.push(quote!(let #id: #ty = &#id[..];));
            }
            ArgKind::Str => {
                owned.push(quote!(::std::string::String));
                calls.push(quote!(::std::string::ToString::to_string(#id)));
                rebinds.push(quote!(let #id: #ty = #id.as_str();));
            }
            ArgKind::Static(t) => {
                owned.push(quote!(::tensorjit::Static<#t>));
                calls.push(quote!(::tensorjit::Static(#id)));
                rebinds.push(quote!(let #m #id: #t = #id.0;));
            }
            ArgKind::StaticRef(t) => {
                owned.push(quote!(::tensorjit::Static<#t>));
                calls.push(quote!(::tensorjit::Static(::std::clone::Clone::clone(#id))));
                rebinds.push(quote!(let #id: #ty = &#id.0;));
            }
        }
    }
    let names: Vec<String> = a.args.iter().map(|a| a.ident.to_string()).collect();
    let mut options = quote!(.with_arg_names(&[#(#names),*]));
    if let Some(b) = o.run_eagerly {
        options.extend(quote!(.with_run_eagerly(#b)));
    }
    if let Some(n) = o.cache_size {
        options.extend(quote!(.with_cache_size(#n)));
    }
    if let Some(sig) = &o.input_signature {
        options.extend(quote!(.with_input_signature(::std::iter::IntoIterator::into_iter(#sig).collect())));
    }
    if let Some(b) = o.reduce_retracing {
        options.extend(quote!(.with_reduce_retracing(#b)));
    }
    let fn_ty = quote!(::tensorjit::Function<(#(#owned,)*), #ret>);
    // `Result` results get call-time errors (signature mismatches, …) as `Err`.
    let call = if crate::analyse::returns_result(f) {
        quote!(match #getter().try_call((#(#calls,)*)) {
            ::std::result::Result::Ok(r) => r,
            ::std::result::Result::Err(e) => ::std::result::Result::Err(::std::convert::From::from(e)),
        })
    } else {
        quote!(#getter().call((#(#calls,)*)))
    };

    if a.method {
        return expand_method(
            f,
            MethodParts {
                body: &block,
                owned: &owned,
                pats: &pats,
                calls: &calls,
                rebinds: &rebinds,
                options: &options,
                ret: &ret,
                display: &display,
            },
        );
    }

    quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        static #static_name: ::std::sync::OnceLock<#fn_ty> = ::std::sync::OnceLock::new();

        #[doc(hidden)]
        #[allow(non_snake_case)]
        #vis fn #getter() -> &'static #fn_ty {
            #static_name.get_or_init(|| {
                ::tensorjit::function(#display, |(#(#pats,)*): (#(#owned,)*)| -> #ret {
                    #(#rebinds)*
                    #body
                })
                #options
            })
        }

        #(#attrs)*
        #[track_caller]
        #sig {
            #call
        }

        /// Introspection of the traced function of the same name.
        #[allow(non_snake_case, dead_code)]
        #vis mod #name {
            #[allow(unused_imports)]
            use super::*;
            /// How many times the body has been traced.
            pub fn tracing_count() -> usize {
                super::#getter().tracing_count()
            }
            /// The traces made so far (signature and IR text of each).
            pub fn concrete_functions() -> ::std::vec::Vec<::std::sync::Arc<::tensorjit::ConcreteFunction>> {
                super::#getter().concrete_functions()
            }
            /// The underlying `tensorjit::Function`.
            pub fn function() -> &'static #fn_ty {
                super::#getter()
            }
        }
    }
}

struct MethodParts<'a> {
    body: &'a syn::Block,
    owned: &'a [TokenStream],
    pats: &'a [TokenStream],
    calls: &'a [TokenStream],
    rebinds: &'a [TokenStream],
    options: &'a TokenStream,
    ret: &'a TokenStream,
    display: &'a str,
}

/// Replaces the `self` keyword in the body by `__tj_self` (the closure's copy of the
/// instance), including inside macro invocations.
fn rename_self(ts: TokenStream) -> TokenStream {
    ts.into_iter()
        .map(|tt| match tt {
            TokenTree::Ident(i) if i == "self" => TokenTree::Ident(Ident::new("__tj_self", i.span())),
            TokenTree::Group(g) => {
                let mut n = Group::new(g.delimiter(), rename_self(g.stream()));
                n.set_span(g.span());
                TokenTree::Group(n)
            }
            other => other,
        })
        .collect()
}

/// `#[tf_function]` on `fn name(&self, args) -> R` inside an `impl`: the instance is the
/// first argument of the `Function` (its fields keyed by identity through
/// `#[derive(FunctionArgs)]`), and `Self::name_function()` gives the introspection.
fn expand_method(f: &ItemFn, p: MethodParts<'_>) -> TokenStream {
    let vis = &f.vis;
    let attrs = &f.attrs;
    let sig = &f.sig;
    let accessor = format_ident!("{}_function", sig.ident);
    let body = rename_self(p.body.to_token_stream());
    let MethodParts { owned, pats, calls, rebinds, options, ret, display, .. } = p;
    let fn_ty = quote!(::tensorjit::Function<(Self, #(#owned,)*), #ret>);
    let call = if crate::analyse::returns_result(f) {
        quote!(match Self::#accessor().try_call((::std::clone::Clone::clone(self), #(#calls,)*)) {
            ::std::result::Result::Ok(r) => r,
            ::std::result::Result::Err(e) => ::std::result::Result::Err(::std::convert::From::from(e)),
        })
    } else {
        quote!(Self::#accessor().call((::std::clone::Clone::clone(self), #(#calls,)*)))
    };
    quote! {
        /// The traced `Function` behind the method of the same name (introspection:
        /// `tracing_count()`, `concrete_functions()`).
        #[allow(dead_code)]
        #vis fn #accessor() -> &'static #fn_ty {
            static FUNCTION: ::std::sync::OnceLock<::std::boxed::Box<dyn ::std::any::Any + Send + Sync>> =
                ::std::sync::OnceLock::new();
            let any = FUNCTION.get_or_init(|| {
                ::std::boxed::Box::new(
                    ::tensorjit::function(#display, |(__tj_self, #(#pats,)*): (Self, #(#owned,)*)| -> #ret {
                        let __tj_self: &Self = &__tj_self;
                        #(#rebinds)*
                        #body
                    })
                    #options
                )
            });
            match any.downcast_ref::<#fn_ty>() {
                ::std::option::Option::Some(f) => f,
                ::std::option::Option::None => ::std::panic!(
                    "#[tf_function] method `{}` is in a generic impl; its cache cannot be shared between instantiations \
                     — implement it for each concrete type",
                    #display
                ),
            }
        }

        #(#attrs)*
        #[track_caller]
        #sig {
            #call
        }
    }
}

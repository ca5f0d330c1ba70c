//! `#[derive(FunctionArgs)]`: a struct usable as `&self` of a `#[tf_function]` method
//! (its fields are keyed by identity — variables and tensors by id, other values by
//! value — and captured by the trace).

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Index};

pub fn derive(input: DeriveInput) -> syn::Result<TokenStream> {
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(FunctionArgs)] needs a struct without generic parameters (each traced method keeps one cache \
             per concrete type)",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(input.ident.span(), "#[derive(FunctionArgs)] applies to structs"));
    };
    let accesses: Vec<TokenStream> = match &data.fields {
        Fields::Named(f) => {
            f.named.iter().map(|f| f.ident.as_ref().map(|i| quote!(#i))).collect::<Option<_>>().unwrap_or_default()
        }
        Fields::Unnamed(f) => (0..f.unnamed.len())
            .map(|i| {
                let i = Index::from(i);
                quote!(#i)
            })
            .collect(),
        Fields::Unit => Vec::new(),
    };
    let name = &input.ident;
    Ok(quote! {
        impl ::tensorjit::InstanceField for #name {
            fn key(&self, out: &mut ::tensorjit::ArgVec<::tensorjit::ArgSpec>) {
                #(::tensorjit::InstanceField::key(&self.#accesses, out);)*
            }
        }

        impl ::tensorjit::FunctionArgs for #name {
            fn spec(&self, out: &mut ::tensorjit::ArgVec<::tensorjit::ArgSpec>) {
                ::tensorjit::InstanceField::key(self, out);
            }
            fn inputs<'a>(
                &'a self,
                _: &mut ::tensorjit::ArgVec<&'a ::tensorjit::Tensor>,
                _: &mut ::tensorjit::ArgVec<&'a ::tensorjit::Variable>,
            ) {
            }
            fn symbolize(&self, specs: &mut ::std::slice::Iter<'_, ::tensorjit::ArgSpec>) -> Self {
                ::tensorjit::trace::instance::skip_keys(self, specs);
                ::std::clone::Clone::clone(self)
            }
        }
    })
}

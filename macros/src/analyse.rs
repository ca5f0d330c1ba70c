//! Validates the function and classifies each argument by how it crosses the
//! `Function` boundary. Every problem is reported, each at the user's span.

use syn::spanned::Spanned;
use syn::{FnArg, GenericParam, Ident, ItemFn, Pat, ReturnType, Type};

/// Whether the function returns `Result<_, _>` (call-time errors then come back as
/// `Err` through `E: From<tensorjit::Error>`).
pub fn returns_result(f: &ItemFn) -> bool {
    matches!(&f.sig.output, ReturnType::Type(_, ty) if last_ident(ty).as_deref() == Some("Result"))
}

/// How an argument is passed to the traced `Function` (whose arguments are owned).
pub enum ArgKind {
    /// `&Tensor`: cloned in, borrowed back inside.
    TensorRef,
    /// `Tensor`, `Variable`, `Vec<Tensor>`, …: passed as they are.
    Owned,
    /// `&Variable`: cloned (shares the variable), borrowed back inside.
    VariableRef,
    /// `&[Tensor]`: collected into a `Vec<Tensor>`, borrowed back as a slice.
    TensorSlice,
    /// `&str`: a static `String`.
    Str,
    /// Any other value: `Static<T>`, keyed by value.
    Static(Type),
    /// `&T` of another type: `Static<T>` of a clone, borrowed back inside.
    StaticRef(Type),
}

pub struct Arg {
    pub ident: Ident,
    pub mutable: bool,
    pub ty: Type,
    pub kind: ArgKind,
}

pub struct Analysed {
    pub args: Vec<Arg>,
    /// A method taking `&self`.
    pub method: bool,
}

fn last_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// Types that implement `FunctionArgs` themselves.
fn is_traced_owned(ty: &Type) -> bool {
    match ty {
        Type::Tuple(t) => t.elems.iter().all(is_traced_owned),
        Type::Array(a) => is_traced_owned(&a.elem),
        Type::Path(p) => {
            let Some(seg) = p.path.segments.last() else { return false };
            match seg.ident.to_string().as_str() {
                "Tensor" | "Variable" | "bool" | "char" | "i8" | "i16" | "i32" | "i64" | "u8" | "u16" | "u32"
                | "u64" | "usize" | "isize" | "f32" | "f64" | "String" => true,
                "Vec" | "Option" => match &seg.arguments {
                    syn::PathArguments::AngleBracketed(a) => a.args.iter().all(|g| match g {
                        syn::GenericArgument::Type(t) => is_traced_owned(t),
                        _ => false,
                    }),
                    _ => false,
                },
                _ => false,
            }
        }
        _ => false,
    }
}

fn classify(ty: &Type) -> Result<ArgKind, String> {
    match ty {
        Type::Reference(r) => {
            if r.mutability.is_some() {
                return Err("tensors are immutable and variables are shared: take `&Tensor` or `&Variable` (assign \
                            through `Variable::assign`), not a `&mut` reference"
                    .into());
            }
            let inner = &*r.elem;
            match (inner, last_ident(inner).as_deref()) {
                (_, Some("Tensor")) => Ok(ArgKind::TensorRef),
                (_, Some("Variable")) => Ok(ArgKind::VariableRef),
                (_, Some("str")) => Ok(ArgKind::Str),
                (Type::Slice(s), _) if last_ident(&s.elem).as_deref() == Some("Tensor") => Ok(ArgKind::TensorSlice),
                (Type::Slice(_), _) => Err("slices of non-tensors cannot be keyed; pass a `Vec<T>` by value".into()),
                _ => Ok(ArgKind::StaticRef(inner.clone())),
            }
        }
        Type::ImplTrait(_) => Err(
            "`impl Trait` arguments cannot be traced: each concrete type would need its own cache; use a concrete type"
                .into(),
        ),
        t if is_traced_owned(t) => Ok(ArgKind::Owned),
        t => Ok(ArgKind::Static(t.clone())),
    }
}

pub fn analyse(f: &ItemFn) -> syn::Result<Analysed> {
    let mut errors: Vec<syn::Error> = Vec::new();
    let sig = &f.sig;
    if let Some(c) = &sig.constness {
        errors.push(syn::Error::new(
            c.span(),
            "#[tf_function] cannot be a `const fn`: a traced function runs tensor ops when it is called; remove `const`",
        ));
    }
    if let Some(a) = &sig.asyncness {
        errors.push(syn::Error::new(a.span(), "#[tf_function] cannot be `async`: tracing runs the body synchronously"));
    }
    if let Some(v) = &sig.variadic {
        errors.push(syn::Error::new(v.span(), "#[tf_function] cannot be variadic"));
    }
    for g in &sig.generics.params {
        if !matches!(g, GenericParam::Lifetime(_)) {
            errors.push(syn::Error::new(
                g.span(),
                "#[tf_function] cannot be generic over types or consts: each instantiation would need its own trace \
                 cache; write one non-generic function per type (they can share a generic helper)",
            ));
        }
    }
    let mut args = Vec::new();
    let mut method = false;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                if r.reference.is_none() || r.mutability.is_some() || r.colon_token.is_some() {
                    errors.push(syn::Error::new(
                        r.span(),
                        "#[tf_function] methods take `&self` (the instance's variables are shared state; assign them \
                         through `Variable::assign`), not `self`, `&mut self` or a typed receiver",
                    ));
                } else {
                    method = true;
                }
            }
            FnArg::Typed(pt) => {
                let (ident, mutable) = match &*pt.pat {
                    Pat::Ident(p) if p.subpat.is_none() && p.by_ref.is_none() => {
                        (p.ident.clone(), p.mutability.is_some())
                    }
                    other => {
                        errors.push(syn::Error::new(
                            other.span(),
                            "#[tf_function] arguments need a plain name (`x: &Tensor`); destructure inside the body",
                        ));
                        continue;
                    }
                };
                match classify(&pt.ty) {
                    Ok(kind) => args.push(Arg { ident, mutable, ty: (*pt.ty).clone(), kind }),
                    Err(msg) => errors.push(syn::Error::new(pt.ty.span(), msg)),
                }
            }
        }
    }
    let mut it = errors.into_iter();
    match it.next() {
        None => Ok(Analysed { args, method }),
        Some(mut first) => {
            for e in it {
                first.combine(e);
            }
            Err(first)
        }
    }
}

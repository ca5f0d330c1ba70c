//! Procedural macros of tensorjit.
//!
//! This crate is intentionally empty until the tracing issue lands `#[tf_function]`
//! (parse → validate → expand, diagnostics pinned by trybuild). It exists now so the
//! workspace has its final shape and the dependency direction (macros → nothing) is fixed.

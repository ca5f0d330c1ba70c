//! Golden tests of #[tf_function]'s compile errors (trybuild). Each case in `tests/ui/`
//! must fail with exactly the message in its `.stderr` file, at the user's span.
//! Regenerate with `TRYBUILD=overwrite cargo test --test macro_diagnostics`.

#[test]
fn unsupported_constructs_are_clear_compile_errors() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

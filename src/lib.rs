pub use tensorjit_runtime::*;

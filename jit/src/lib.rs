//! Graph passes and code generation for tensorjit (Cranelift on the CPU, PTX on NVIDIA
//! GPUs).
//!
//! Empty until the tracing IR exists: the JIT compiles concrete functions traced into
//! that IR, behind the `Backend` trait the runtime will define. It depends on the
//! runtime only, never the other way round.

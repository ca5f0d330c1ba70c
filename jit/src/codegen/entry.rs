//! A concrete function's compiled entry point (for plans run over one arena).
//!
//! `entry(ctx, arena, outer, fresh) -> status`: for each step it computes the step's
//! pointers — arena base + a planned offset, an outer tensor's data, a fresh result
//! buffer — into a stack table and calls the step's runtime hook (launch a kernel, run
//! the GEMM, run an eager op) with it; a non-zero status from a hook returns at once.
//! The hooks are Rust functions called through their addresses, so the runtime keeps
//! its threading, staging and error handling.
//!
//! ```text
//! entry:  t = [arena+0, outer[1], arena+65536]; s = hook0(ctx, 0, 128, 512, t); brif s …
//!         t = [outer[0], outer[1], arena+0];    s = hook1(ctx, 1, 0, 0, t);     brif s …
//!         return 0
//! ```

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::I64;
use cranelift_codegen::ir::{AbiParam, InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, UserFuncName};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

use super::{isa, CompiledModule};

/// A step's runtime hook: `(ctx, a, b, c, table) -> status` (0: done).
pub(crate) type Hook = unsafe extern "C" fn(ctx: *mut u8, a: i64, b: i64, c: i64, table: *const *mut f32) -> i64;

/// The entry point: `(ctx, arena, outer pointers, fresh pointers) -> status`.
pub(crate) type EntryFn =
    unsafe extern "C" fn(ctx: *mut u8, arena: *mut f32, outer: *const *mut f32, fresh: *const *mut f32) -> i64;

/// Where one pointer of a step's table comes from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum PtrSrc {
    /// `arena + offset` (in f32s).
    Arena(usize),
    /// `outer[k]`.
    Outer(usize),
    /// `fresh[j]`.
    Fresh(usize),
}

/// One step of the entry: `hook(ctx, args…, table of ptrs)`.
pub(crate) struct HookCall {
    pub hook: Hook,
    pub args: [i64; 3],
    pub ptrs: Vec<PtrSrc>,
}

/// Compiles the entry point making `calls` in order.
pub(crate) fn compile_entry(calls: &[HookCall]) -> Result<(CompiledModule, EntryFn), String> {
    let mut module = JITModule::new(JITBuilder::with_isa(isa()?, default_libcall_names()));
    let ptr = module.target_config().pointer_type();
    let mut sig = module.make_signature();
    sig.params.extend([AbiParam::new(ptr); 4]);
    sig.returns.push(AbiParam::new(I64));
    let id = module.declare_function("entry", Linkage::Local, &sig).map_err(|e| format!("declare entry: {e}"))?;
    let mut hook_sig = module.make_signature();
    hook_sig.params.extend([AbiParam::new(ptr), AbiParam::new(I64), AbiParam::new(I64), AbiParam::new(I64)]);
    hook_sig.params.push(AbiParam::new(ptr));
    hook_sig.returns.push(AbiParam::new(I64));

    let mut ctx = module.make_context();
    ctx.func.signature = sig;
    ctx.func.name = UserFuncName::user(0, id.as_u32());
    let mut fctx = FunctionBuilderContext::new();
    {
        let mut b = FunctionBuilder::new(&mut ctx.func, &mut fctx);
        let start = b.create_block();
        b.append_block_params_for_function_params(start);
        b.switch_to_block(start);
        let (run, arena, outer, fresh) = {
            let p = b.block_params(start);
            (p[0], p[1], p[2], p[3])
        };
        let sig_ref = b.import_signature(hook_sig);
        let width = calls.iter().map(|c| c.ptrs.len()).max().unwrap_or(0).max(1);
        let slot = b.create_sized_stack_slot(StackSlotData::new(
            StackSlotKind::ExplicitSlot,
            (width * ptr.bytes() as usize) as u32,
            3,
        ));
        let flags = MemFlagsData::new().with_notrap();
        let bytes = ptr.bytes() as i64;
        let failed = b.create_block();
        b.append_block_param(failed, I64);
        for call in calls {
            for (i, src) in call.ptrs.iter().enumerate() {
                let p = match *src {
                    PtrSrc::Arena(off) => b.ins().iadd_imm_s(arena, off as i64 * 4),
                    PtrSrc::Outer(k) => b.ins().load(ptr, flags.with_readonly(), outer, (k as i64 * bytes) as i32),
                    PtrSrc::Fresh(j) => b.ins().load(ptr, flags.with_readonly(), fresh, (j as i64 * bytes) as i32),
                };
                b.ins().stack_store(ptr, p, slot, (i as i64 * bytes) as i32);
            }
            let table = b.ins().stack_addr(ptr, slot, 0);
            let callee = b.ins().iconst(ptr, call.hook as usize as i64);
            let [x, y, z] = call.args.map(|a| b.ins().iconst(I64, a));
            let inst = b.ins().call_indirect(sig_ref, callee, &[run, x, y, z, table]);
            let status = b.inst_results(inst)[0];
            let next = b.create_block();
            let bad = b.ins().icmp_imm_s(IntCC::NotEqual, status, 0);
            b.ins().brif(bad, failed, &[status.into()], next, &[]);
            b.switch_to_block(next);
        }
        let ok = b.ins().iconst(I64, 0);
        b.ins().return_(&[ok]);
        b.switch_to_block(failed);
        let status = b.block_params(failed)[0];
        b.ins().return_(&[status]);
        b.seal_all_blocks();
        b.finalize(module.target_config());
    }
    module.define_function(id, &mut ctx).map_err(|e| format!("compile entry: {e:?}"))?;
    module.clear_context(&mut ctx);
    module.finalize_definitions().map_err(|e| format!("link entry: {e}"))?;
    let code = module.get_finalized_function(id);
    // SAFETY: `code` was compiled from a function with exactly EntryFn's signature
    // (four pointers, returning i64) in the host's default calling convention.
    let f = unsafe { std::mem::transmute::<*const u8, EntryFn>(code) };
    Ok((CompiledModule::new(module), f))
}

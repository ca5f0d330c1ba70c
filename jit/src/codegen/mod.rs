//! Cranelift code generation for fused kernels.
//!
//! A kernel becomes `fn(ptrs: *const *mut f32, rows: i64, cols: i64)`: `ptrs` holds the
//! kernel's input pointers then its output pointers. For each row it runs an `f32x4`
//! main loop (two vectors per trip) and a scalar tail; inputs read as `Scalar` are
//! loaded and splatted once, `Col` inputs once per row. Comparisons and selections are
//! vector compares + `bitselect` (a scalar `select` on floats would branch), and every
//! op uses the runtime's exact f32 algorithm (`math.rs` here), so results are the eager
//! kernels' bits.
//!
//! Each compiled concrete function owns one `JITModule`; dropping it frees the code.

use std::sync::OnceLock;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::types::{F32, F32X4, I32, I32X4, I64};
use cranelift_codegen::ir::{
    AbiParam, Block, ConstantData, Endianness, InstBuilder, MemFlagsData, Type, UserFuncName, Value,
};
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{default_libcall_names, Linkage, Module};

use crate::kernel::{Access, Kernel};
use crate::lower::{self, Cc, Lower};

mod entry;
mod reduce;

pub(crate) use entry::{compile_entry, EntryFn, HookCall, PtrSrc};

/// A compiled kernel: `ptrs` = inputs then outputs.
pub type KernelFn = unsafe extern "C" fn(ptrs: *const *mut f32, rows: i64, cols: i64);

/// The host ISA with the flags kernels rely on (SSE4.1 for vector rounding, FMA when
/// present — the transcendentals' `fma`s are one instruction then, a libm call per lane
/// otherwise; the bits do not depend on it).
fn isa() -> Result<OwnedTargetIsa, String> {
    static ISA: OnceLock<Result<OwnedTargetIsa, String>> = OnceLock::new();
    ISA.get_or_init(|| host_isa(&[])).clone()
}

/// The host's ISA as `cranelift_native` detects it, with `overrides` of its ISA flags
/// (tests turn `has_fma` off to run what a CPU without FMA runs).
fn host_isa(overrides: &[(&str, &str)]) -> Result<OwnedTargetIsa, String> {
    let mut flags = settings::builder();
    for (k, v) in [("opt_level", "speed"), ("is_pic", "false"), ("use_colocated_libcalls", "false")] {
        flags.set(k, v).map_err(|e| format!("cranelift flag {k}: {e}"))?;
    }
    let mut builder = cranelift_native::builder().map_err(|e| format!("unsupported host: {e}"))?;
    for (k, v) in overrides {
        builder.set(k, v).map_err(|e| format!("cranelift ISA flag {k}: {e}"))?;
    }
    builder.finish(settings::Flags::new(flags)).map_err(|e| format!("cranelift ISA: {e}"))
}

/// Machine code of one concrete function's kernels; freed on drop.
pub struct CompiledModule {
    module: Option<JITModule>,
}

/// Modules compiled and not yet freed (observed by tests: compiled code must go when
/// its concrete function leaves the cache).
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// How many compiled modules (kernels and entry points) exist in this process.
pub fn live_modules() -> usize {
    LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

impl CompiledModule {
    fn new(module: JITModule) -> CompiledModule {
        LIVE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        CompiledModule { module: Some(module) }
    }
}

// SAFETY: the module is only read (its code executed) after `finalize_definitions`, and
// freed once, on drop, when no call can be running (the owner is being dropped).
unsafe impl Send for CompiledModule {}
unsafe impl Sync for CompiledModule {}

impl Drop for CompiledModule {
    fn drop(&mut self) {
        if let Some(m) = self.module.take() {
            // SAFETY: the kernels' function pointers live in the executable that owns
            // this module and are dropped with it; nothing calls them afterwards.
            unsafe { m.free_memory() };
            LIVE.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Compiles `kernels` into one module; returns it with one entry point per kernel.
pub fn compile(kernels: &[Kernel]) -> Result<(CompiledModule, Vec<KernelFn>), String> {
    compile_for(isa()?, kernels)
}

fn compile_for(isa: OwnedTargetIsa, kernels: &[Kernel]) -> Result<(CompiledModule, Vec<KernelFn>), String> {
    let mut module = JITModule::new(JITBuilder::with_isa(isa, default_libcall_names()));
    let mut ctx = module.make_context();
    let mut fctx = FunctionBuilderContext::new();
    let ptr = module.target_config().pointer_type();
    let mut ids = Vec::new();
    for (k, kernel) in kernels.iter().enumerate() {
        let mut sig = module.make_signature();
        sig.params.extend([AbiParam::new(ptr), AbiParam::new(I64), AbiParam::new(I64)]);
        let id = module
            .declare_function(&format!("kernel{k}"), Linkage::Local, &sig)
            .map_err(|e| format!("declare kernel {k}: {e}"))?;
        ctx.func.signature = sig;
        ctx.func.name = UserFuncName::user(0, id.as_u32());
        if kernel.reduce.is_some() {
            reduce::build(&mut ctx, &mut fctx, kernel, ptr, &module)?;
        } else {
            build(&mut ctx, &mut fctx, kernel, ptr, &module)?;
        }
        let dump = std::env::var_os("TENSORJIT_JIT_DUMP").is_some();
        ctx.set_disasm(dump);
        module.define_function(id, &mut ctx).map_err(|e| format!("compile kernel {k}: {e:?}\n{kernel}"))?;
        if dump {
            let code = ctx.compiled_code().and_then(|c| c.vcode.clone()).unwrap_or_default();
            eprintln!("{kernel}\n{code}");
        }
        module.clear_context(&mut ctx);
        ids.push(id);
    }
    module.finalize_definitions().map_err(|e| format!("link kernels: {e}"))?;
    let fns = ids
        .into_iter()
        .map(|id| {
            let code = module.get_finalized_function(id);
            // SAFETY: `code` was compiled from a function with exactly KernelFn's
            // signature (pointer, i64, i64) in the host's default calling convention.
            unsafe { std::mem::transmute::<*const u8, KernelFn>(code) }
        })
        .collect();
    Ok((CompiledModule::new(module), fns))
}

/// Compiles `k` alone and runs it on host data (inputs in the kernel's order, each of
/// the length its access pattern reads over `rows × cols`); returns its outputs (the
/// row sums last, when it reduces). The
/// reference the GPU's kernels are compared with.
pub fn run_on_host(k: &Kernel, inputs: &[&[f32]], rows: usize, cols: usize) -> Result<Vec<Vec<f32>>, String> {
    run_for(isa()?, k, inputs, rows, cols)
}

fn run_for(
    isa: OwnedTargetIsa,
    k: &Kernel,
    inputs: &[&[f32]],
    rows: usize,
    cols: usize,
) -> Result<Vec<Vec<f32>>, String> {
    let n = rows * cols;
    let lens: Vec<usize> = inputs.iter().map(|d| d.len()).collect();
    k.check_input_lens(&lens, rows, cols)?;
    let (_module, fns) = compile_for(isa, std::slice::from_ref(k))?;
    let mut outs: Vec<Vec<f32>> = vec![vec![0.0; n]; k.outputs.len()];
    if k.reduce.is_some() {
        outs.push(vec![0.0; rows]);
    }
    let mut ptrs: Vec<*mut f32> = inputs.iter().map(|d| d.as_ptr() as *mut f32).collect();
    ptrs.extend(outs.iter_mut().map(|o| o.as_mut_ptr()));
    // SAFETY: `fns[0]` is `k` compiled with KernelFn's signature; every input holds the
    // values its access pattern reads (checked above) and is only read; every output
    // holds rows × cols values; `_module` keeps the code alive during the call.
    unsafe { fns[0](ptrs.as_ptr(), rows as i64, cols as i64) };
    Ok(outs)
}

/// Emits scalar (`f32`) or vector (`f32x4`) code for the same operations.
pub(crate) struct Em<'a, 'b> {
    b: &'a mut FunctionBuilder<'b>,
    vector: bool,
}

fn vec_flags() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

impl Em<'_, '_> {
    fn fty(&self) -> Type {
        if self.vector {
            F32X4
        } else {
            F32
        }
    }
    fn ity(&self) -> Type {
        if self.vector {
            I32X4
        } else {
            I32
        }
    }
    /// A 16-byte constant-pool vector (one load, foldable into the instruction using it).
    fn vconst(&mut self, ty: Type, lane: [u8; 4]) -> Value {
        let bytes: Vec<u8> = lane.iter().copied().cycle().take(16).collect();
        let c = self.b.func.dfg.constants.insert(ConstantData::from(bytes));
        self.b.ins().vconst(ty, c)
    }
}

fn float_cc(cc: Cc) -> FloatCC {
    match cc {
        Cc::Eq => FloatCC::Equal,
        // Unordered or not equal: Rust's `!=` (true when either is NaN).
        Cc::Ne => FloatCC::NotEqual,
        Cc::Lt => FloatCC::LessThan,
        Cc::Le => FloatCC::LessThanOrEqual,
        Cc::Gt => FloatCC::GreaterThan,
        Cc::Ge => FloatCC::GreaterThanOrEqual,
        Cc::Unordered => FloatCC::Unordered,
    }
}

impl Lower for Em<'_, '_> {
    type V = Value;
    fn fconst(&mut self, v: f32) -> Value {
        if self.vector {
            self.vconst(F32X4, v.to_le_bytes())
        } else {
            self.b.ins().f32const(v)
        }
    }
    fn iconst(&mut self, v: i32) -> Value {
        if self.vector {
            self.vconst(I32X4, v.to_le_bytes())
        } else {
            self.b.ins().iconst(I32, v as i64)
        }
    }
    fn fadd(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fadd(a, b)
    }
    fn fsub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fsub(a, b)
    }
    fn fmul(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fmul(a, b)
    }
    fn fma(&mut self, a: Value, b: Value, c: Value) -> Value {
        // One vfmadd where the host has FMA (`cranelift_native` enables it), else a call
        // of libm's fmaf per lane: the same bits either way.
        self.b.ins().fma(a, b, c)
    }
    fn fdiv(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().fdiv(a, b)
    }
    fn fsqrt(&mut self, a: Value) -> Value {
        self.b.ins().sqrt(a)
    }
    fn fneg(&mut self, a: Value) -> Value {
        self.b.ins().fneg(a)
    }
    fn fabs(&mut self, a: Value) -> Value {
        self.b.ins().fabs(a)
    }
    fn iadd(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().iadd(a, b)
    }
    fn isub(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().isub(a, b)
    }
    fn band(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().band(a, b)
    }
    fn bor(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }
    fn sshr(&mut self, a: Value, n: u8) -> Value {
        self.b.ins().sshr_imm_s(a, n as i64)
    }
    fn shl(&mut self, a: Value, n: u8) -> Value {
        self.b.ins().ishl_imm_s(a, n as i64)
    }
    fn bits_of(&mut self, x: Value) -> Value {
        let (ty, flags) = (self.ity(), if self.vector { vec_flags() } else { MemFlagsData::new() });
        self.b.ins().bitcast(ty, flags, x)
    }
    fn float_of(&mut self, x: Value) -> Value {
        let (ty, flags) = (self.fty(), if self.vector { vec_flags() } else { MemFlagsData::new() });
        self.b.ins().bitcast(ty, flags, x)
    }
    fn int_to_float(&mut self, x: Value) -> Value {
        let ty = self.fty();
        self.b.ins().fcvt_from_sint(ty, x)
    }
    /// All-ones lanes (`i32x4`) or a boolean (`i8`).
    fn fcmp(&mut self, cc: Cc, a: Value, b: Value) -> Value {
        self.b.ins().fcmp(float_cc(cc), a, b)
    }
    fn mask_or(&mut self, a: Value, b: Value) -> Value {
        self.b.ins().bor(a, b)
    }
    fn sel(&mut self, mask: Value, a: Value, b: Value) -> Value {
        if self.vector {
            let m = self.b.ins().bitcast(F32X4, vec_flags(), mask);
            self.b.ins().bitselect(m, a, b)
        } else {
            self.b.ins().select(mask, a, b)
        }
    }
    fn sel_int(&mut self, mask: Value, a: Value, b: Value) -> Value {
        if self.vector {
            self.b.ins().bitselect(mask, a, b)
        } else {
            self.b.ins().select(mask, a, b)
        }
    }
}

/// Per-input values that do not depend on the column: splatted scalars (hoisted out of
/// all loops) and per-row values.
#[derive(Clone, Copy)]
enum Fixed {
    None,
    Value { scalar: Value, vector: Value },
}

/// A kernel function's entry: its parameters, the pointer table loaded, scalar inputs
/// loaded and splatted once.
struct Entry {
    rows: Value,
    cols: Value,
    /// Every pointer of the table (inputs, outputs, then the row sums if any).
    base: Vec<Value>,
    fixed: Vec<Fixed>,
}

/// Emits the entry block of `kernel`'s function (left as the current block).
fn entry(b: &mut FunctionBuilder<'_>, kernel: &Kernel, ptr: Type, flags: MemFlagsData) -> Entry {
    let block = b.create_block();
    b.append_block_params_for_function_params(block);
    b.switch_to_block(block);
    let (table, rows, cols) = {
        let p = b.block_params(block);
        (p[0], p[1], p[2])
    };
    let n_ptrs = kernel.inputs.len() + kernel.outputs.len() + usize::from(kernel.reduce.is_some());
    let base: Vec<Value> = (0..n_ptrs)
        .map(|i| b.ins().load(ptr, flags.with_readonly(), table, (i * ptr.bytes() as usize) as i32))
        .collect();
    let mut fixed = vec![Fixed::None; kernel.inputs.len()];
    for (i, a) in kernel.inputs.iter().enumerate() {
        if *a == Access::Scalar {
            let s = b.ins().load(F32, flags.with_readonly(), base[i], 0);
            let v = b.ins().splat(F32X4, s);
            fixed[i] = Fixed::Value { scalar: s, vector: v };
        }
    }
    Entry { rows, cols, base, fixed }
}

/// Row `rv`'s pointers (inputs and full outputs) and per-row input values.
fn row_setup(
    b: &mut FunctionBuilder<'_>,
    kernel: &Kernel,
    e: &Entry,
    rv: Value,
    flags: MemFlagsData,
) -> (Vec<Value>, Vec<Fixed>) {
    let row_off = b.ins().imul(rv, e.cols);
    let row_off = b.ins().ishl_imm_s(row_off, 2);
    let n = kernel.inputs.len() + kernel.outputs.len();
    let mut row_ptr: Vec<Value> = Vec::with_capacity(n);
    for (i, p) in e.base[..n].iter().enumerate() {
        let a = kernel.inputs.get(i).copied().unwrap_or(Access::Full);
        row_ptr.push(match a {
            Access::Full => b.ins().iadd(*p, row_off),
            _ => *p,
        });
    }
    let mut row_fixed = e.fixed.clone();
    for (i, a) in kernel.inputs.iter().enumerate() {
        if *a == Access::Col {
            let off = b.ins().ishl_imm_s(rv, 2);
            let addr = b.ins().iadd(e.base[i], off);
            let s = b.ins().load(F32, flags.with_readonly(), addr, 0);
            let v = b.ins().splat(F32X4, s);
            row_fixed[i] = Fixed::Value { scalar: s, vector: v };
        }
    }
    (row_ptr, row_fixed)
}

/// The loop over rows, as [`row_loop`] leaves it.
struct RowLoop {
    /// Row and column counters.
    r: Variable,
    c: Variable,
    /// The loop's head (jump back here after `r += 1`) and the block after it.
    head: Block,
    exit: Block,
    row_ptr: Vec<Value>,
    row_fixed: Vec<Fixed>,
}

/// Emits `r = 0`, the row loop's head (on to `exit` when `r == rows`) and the start of
/// its body, where it leaves the builder with `c = 0` and the row's pointers ready.
/// Each of a row's pointers advanced to its element `c` (f32 elements).
fn element_addrs(b: &mut FunctionBuilder<'_>, row_ptr: &[Value], c: Value) -> Vec<Value> {
    let off = b.ins().ishl_imm_s(c, 2);
    row_ptr.iter().map(|p| b.ins().iadd(*p, off)).collect()
}

fn row_loop(b: &mut FunctionBuilder<'_>, kernel: &Kernel, e: &Entry, flags: MemFlagsData) -> RowLoop {
    let (r, c) = (b.declare_var(I64), b.declare_var(I64));
    let zero = b.ins().iconst(I64, 0);
    b.def_var(r, zero);
    let [head, body, exit] = [(); 3].map(|_| b.create_block());
    b.ins().jump(head, &[]);

    b.switch_to_block(head);
    let rv = b.use_var(r);
    let more = b.ins().icmp(IntCC::SignedLessThan, rv, e.rows);
    b.ins().brif(more, body, &[], exit, &[]);

    b.switch_to_block(body);
    let rv = b.use_var(r);
    let (row_ptr, row_fixed) = row_setup(b, kernel, e, rv, flags);
    b.def_var(c, zero);
    RowLoop { r, c, head, exit, row_ptr, row_fixed }
}

/// Builds the loop nest of `kernel` into `ctx.func`.
fn build(
    ctx: &mut Context,
    fctx: &mut FunctionBuilderContext,
    kernel: &Kernel,
    ptr: Type,
    module: &JITModule,
) -> Result<(), String> {
    let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
    let flags = MemFlagsData::new().with_notrap();
    let e = entry(&mut b, kernel, ptr, flags);
    let cols = e.cols;
    let RowLoop { r, c, head: row_head, exit, row_ptr, row_fixed } = row_loop(&mut b, kernel, &e, flags);
    let [vec_head, vec_body, tail_head, tail_body, row_next] = [(); 5].map(|_| b.create_block());
    b.ins().jump(vec_head, &[]);

    // Vector loop: `unroll` f32x4 per trip while they fit in the row.
    b.switch_to_block(vec_head);
    let cv = b.use_var(c);
    let unroll = kernel.unroll();
    let end = b.ins().iadd_imm_s(cv, 4 * unroll as i64);
    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, end, cols);
    b.ins().brif(fits, vec_body, &[], tail_head, &[]);

    b.switch_to_block(vec_body);
    let cv = b.use_var(c);
    let addrs = element_addrs(&mut b, &row_ptr, cv);
    for half in 0..unroll as i32 {
        let mut em = Em { b: &mut b, vector: true };
        body(&mut em, kernel, &addrs, &row_fixed, half * 16, flags);
    }
    let next = b.ins().iadd_imm_s(cv, 4 * unroll as i64);
    b.def_var(c, next);
    b.ins().jump(vec_head, &[]);

    // Scalar tail.
    b.switch_to_block(tail_head);
    let cv = b.use_var(c);
    let left = b.ins().icmp(IntCC::SignedLessThan, cv, cols);
    b.ins().brif(left, tail_body, &[], row_next, &[]);

    b.switch_to_block(tail_body);
    let cv = b.use_var(c);
    let addrs = element_addrs(&mut b, &row_ptr, cv);
    {
        let mut em = Em { b: &mut b, vector: false };
        body(&mut em, kernel, &addrs, &row_fixed, 0, flags);
    }
    let next = b.ins().iadd_imm_s(cv, 1);
    b.def_var(c, next);
    b.ins().jump(tail_head, &[]);

    b.switch_to_block(row_next);
    let rv = b.use_var(r);
    let next = b.ins().iadd_imm_s(rv, 1);
    b.def_var(r, next);
    b.ins().jump(row_head, &[]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(module.target_config());
    Ok(())
}

/// One element (or one vector of 4) of the kernel at `addrs` (+`offset` bytes).
/// Stores the full outputs and returns every expression's value.
fn body(
    em: &mut Em<'_, '_>,
    k: &Kernel,
    addrs: &[Value],
    fixed: &[Fixed],
    offset: i32,
    flags: MemFlagsData,
) -> Vec<Value> {
    let ty = em.fty();
    let vals = lower::eval(em, k, |em, i| match fixed[i] {
        Fixed::Value { scalar, vector } => {
            if em.vector {
                vector
            } else {
                scalar
            }
        }
        Fixed::None => em.b.ins().load(ty, flags.with_readonly(), addrs[i], offset),
    });
    let n_in = k.inputs.len();
    for (j, o) in k.outputs.iter().enumerate() {
        em.b.ins().store(flags, vals[*o], addrs[n_in + j], offset);
    }
    vals
}

#[cfg(all(test, target_arch = "x86_64"))]
mod fma_tests {
    use super::*;
    use crate::kernel::{Access, Expr};
    use tensorjit_runtime::ops::UnaryOp;

    /// The transcendentals' `fma`s on a CPU without FMA: Cranelift calls libm's `fmaf`
    /// per lane (resolved by the JIT), and the bits are the FMA host's.
    #[test]
    fn kernels_give_the_same_bits_without_the_fma_extension() {
        let without = host_isa(&[("has_fma", "false")]).expect("an ISA without FMA");
        let x: Vec<f32> = (0..203).map(|i| (i as f32 * 0.731).sin() * 12.0 - 0.37 * i as f32 / 50.0).collect();
        for u in [UnaryOp::Exp, UnaryOp::Log, UnaryOp::Tanh, UnaryOp::Sigmoid, UnaryOp::Softplus] {
            let k = Kernel {
                inputs: vec![Access::Full],
                exprs: vec![Expr::Input(0), Expr::Unary(u, 0)],
                outputs: vec![1],
                reduce: None,
            };
            let plain = run_for(without.clone(), &k, &[&x], 7, 29).expect("compiles and runs without FMA");
            let fused = run_on_host(&k, &[&x], 7, 29).expect("compiles and runs");
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&plain[0]), bits(&fused[0]), "{}", u.name());
        }
    }
}

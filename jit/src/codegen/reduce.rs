//! Kernels that end in a row reduction: every element is computed as in a plain kernel
//! (its full outputs stored), and the reduced expression is summed along each row in
//! the runtime's canonical order (`kernels/reduce.rs`) — eight lane accumulators, lane
//! `j` adding the elements at positions ≡ j (mod 8) in increasing order, combined as
//! `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`. Rows are at most one canonical
//! block long (`ROW_REDUCE_MAX`), so that value is the row's sum; a mean divides it by
//! the row length, as the eager kernel does.
//!
//! Two `f32x4` accumulators hold lanes 0–3 and 4–7: a trip adds four elements
//! lane-wise into the one their positions belong to (they alternate). The last < 4
//! elements are added one by one, in a loop (one copy of the scalar body), into their
//! lane of a stack array.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F32X4, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, StackSlotData, StackSlotKind, Type, Value};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::Module;

use super::{body, element_addrs, entry, row_loop, Em, RowLoop};
use crate::kernel::Kernel;

/// Lanes of the canonical order.
const LANES: usize = 8;

/// Builds `kernel` (which has a `reduce`) into `ctx.func`.
pub(super) fn build(
    ctx: &mut Context,
    fctx: &mut FunctionBuilderContext,
    kernel: &Kernel,
    ptr: Type,
    module: &JITModule,
) -> Result<(), String> {
    let Some(red) = kernel.reduce else { return Err("a reduction kernel without its reduction".into()) };
    let mut b = FunctionBuilder::new(&mut ctx.func, fctx);
    let flags = MemFlagsData::new().with_notrap();
    let e = entry(&mut b, kernel, ptr, flags);
    let cols = e.cols;
    let sums = e.base[kernel.inputs.len() + kernel.outputs.len()];
    let acc = [b.declare_var(F32X4), b.declare_var(F32X4)];
    let j = b.declare_var(I64);
    let lanes = b.create_sized_stack_slot(StackSlotData::new(StackSlotKind::ExplicitSlot, 4 * LANES as u32, 4));
    let RowLoop { r, c, head: row_head, exit, row_ptr, row_fixed } = row_loop(&mut b, kernel, &e, flags);
    let [vec_head, vec_body, tail_start, tail_head, tail_body, combine] = [(); 6].map(|_| b.create_block());
    let vzero = b.ins().f32const(0.0);
    let vzero = b.ins().splat(F32X4, vzero);
    acc.iter().for_each(|a| b.def_var(*a, vzero));
    b.ins().jump(vec_head, &[]);

    // Four elements per trip, into lanes 0–3 and 4–7 alternately: `acc[0]` is always
    // the accumulator of the next trip's lanes (one copy of the vector body).
    b.switch_to_block(vec_head);
    let cv = b.use_var(c);
    let end = b.ins().iadd_imm_s(cv, 4);
    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, end, cols);
    b.ins().brif(fits, vec_body, &[], tail_start, &[]);

    b.switch_to_block(vec_body);
    let cv = b.use_var(c);
    let addrs = element_addrs(&mut b, &row_ptr, cv);
    let vals = body(&mut Em { b: &mut b, vector: true }, kernel, &addrs, &row_fixed, 0, flags);
    let (next_acc, other) = (b.use_var(acc[0]), b.use_var(acc[1]));
    let sum = b.ins().fadd(next_acc, vals[red.expr]);
    b.def_var(acc[0], other);
    b.def_var(acc[1], sum);
    let next = b.ins().iadd_imm_s(cv, 4);
    b.def_var(c, next);
    b.ins().jump(vec_head, &[]);

    // The lanes go to an 8-float stack array (after an odd number of trips `acc[0]`
    // holds lanes 4–7); the row's last elements (fewer than 4) are added one by one:
    // element p belongs to lane p mod 8.
    b.switch_to_block(tail_start);
    let cv = b.use_var(c);
    let odd = b.ins().band_imm_s(cv, 4);
    let (a0, a1) = (b.use_var(acc[0]), b.use_var(acc[1]));
    let lo = b.ins().select(odd, a1, a0);
    let hi = b.ins().select(odd, a0, a1);
    b.ins().stack_store(ptr, lo, lanes, 0);
    b.ins().stack_store(ptr, hi, lanes, 16);
    let zero = b.ins().iconst(I64, 0);
    b.def_var(j, zero);
    b.ins().jump(tail_head, &[]);

    b.switch_to_block(tail_head);
    let (cv, jv) = (b.use_var(c), b.use_var(j));
    let at = b.ins().iadd(cv, jv);
    let left = b.ins().icmp(IntCC::SignedLessThan, at, cols);
    b.ins().brif(left, tail_body, &[], combine, &[]);

    b.switch_to_block(tail_body);
    let addrs = element_addrs(&mut b, &row_ptr, at);
    let vals = body(&mut Em { b: &mut b, vector: false }, kernel, &addrs, &row_fixed, 0, flags);
    let base = b.ins().stack_addr(ptr, lanes, 0);
    let lane = b.ins().band_imm_s(at, LANES as i64 - 1);
    let lane_off = b.ins().ishl_imm_s(lane, 2);
    let lane_addr = b.ins().iadd(base, lane_off);
    let l = b.ins().load(F32, flags, lane_addr, 0);
    let l = b.ins().fadd(l, vals[red.expr]);
    b.ins().store(flags, l, lane_addr, 0);
    let next = b.ins().iadd_imm_s(jv, 1);
    b.def_var(j, next);
    b.ins().jump(tail_head, &[]);

    b.switch_to_block(combine);
    let l: Vec<Value> = (0..LANES).map(|i| b.ins().stack_load(ptr, F32, lanes, 4 * i as i32)).collect();
    let pair = |b: &mut FunctionBuilder<'_>, x: usize, y: usize| b.ins().fadd(l[x], l[y]);
    let (a04, a26, a15, a37) = (pair(&mut b, 0, 4), pair(&mut b, 2, 6), pair(&mut b, 1, 5), pair(&mut b, 3, 7));
    let lo = b.ins().fadd(a04, a26);
    let hi = b.ins().fadd(a15, a37);
    let mut s = b.ins().fadd(lo, hi);
    if red.mean {
        let n = b.ins().fcvt_from_sint(F32, cols);
        s = b.ins().fdiv(s, n);
    }
    let rv = b.use_var(r);
    let off = b.ins().ishl_imm_s(rv, 2);
    let addr = b.ins().iadd(sums, off);
    b.ins().store(flags, s, addr, 0);
    let next = b.ins().iadd_imm_s(rv, 1);
    b.def_var(r, next);
    b.ins().jump(row_head, &[]);

    b.switch_to_block(exit);
    b.ins().return_(&[]);
    b.seal_all_blocks();
    b.finalize(module.target_config());
    Ok(())
}

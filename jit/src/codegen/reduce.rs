//! Kernels that end in a row reduction: every element is computed as in a plain kernel
//! (its full outputs stored), and the reduced expression is summed along each row in
//! the runtime's canonical order (`kernels/reduce.rs`) — eight lane accumulators, lane
//! `j` adding the elements at positions ≡ j (mod 8) in increasing order, combined as
//! `((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7))`. Rows are at most one canonical
//! block long (`ROW_REDUCE_MAX`), so that value is the row's sum; a mean divides it by
//! the row length, as the eager kernel does.
//!
//! Two `f32x4` accumulators hold lanes 0–3 and 4–7: a trip adds elements c..c+4 and
//! c+4..c+8 lane-wise (c a multiple of 8). The last < 8 elements are added one by one
//! into the scalar lane they belong to.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F32X4};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Type, Value};
use cranelift_codegen::Context;
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use cranelift_jit::JITModule;
use cranelift_module::Module;

use super::{body, entry, row_loop, Em, RowLoop};
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
    let lane: Vec<_> = (0..LANES).map(|_| b.declare_var(F32)).collect();
    let RowLoop { r, c, head: row_head, exit, row_ptr, row_fixed } = row_loop(&mut b, kernel, &e, flags);
    let [vec_head, vec_body, tail_start, combine] = [(); 4].map(|_| b.create_block());
    let tail: Vec<_> = (0..LANES - 1).map(|_| (b.create_block(), b.create_block())).collect();
    let vzero = b.ins().f32const(0.0);
    let vzero = b.ins().splat(F32X4, vzero);
    acc.iter().for_each(|a| b.def_var(*a, vzero));
    b.ins().jump(vec_head, &[]);

    // Eight elements per trip: lanes 0–3, then 4–7.
    b.switch_to_block(vec_head);
    let cv = b.use_var(c);
    let end = b.ins().iadd_imm_s(cv, LANES as i64);
    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, end, cols);
    b.ins().brif(fits, vec_body, &[], tail_start, &[]);

    b.switch_to_block(vec_body);
    let cv = b.use_var(c);
    let off = b.ins().ishl_imm_s(cv, 2);
    let addrs: Vec<Value> = row_ptr.iter().map(|p| b.ins().iadd(*p, off)).collect();
    for (half, a) in acc.iter().enumerate() {
        let vals = body(&mut Em { b: &mut b, vector: true }, kernel, &addrs, &row_fixed, half as i32 * 16, flags);
        let sum = b.use_var(*a);
        let sum = b.ins().fadd(sum, vals[red.expr]);
        b.def_var(*a, sum);
    }
    let next = b.ins().iadd_imm_s(cv, LANES as i64);
    b.def_var(c, next);
    b.ins().jump(vec_head, &[]);

    // The lanes as scalars, then the row's last elements (fewer than 8) one by one:
    // element c + j belongs to lane j.
    b.switch_to_block(tail_start);
    for (j, l) in lane.iter().enumerate() {
        let v = b.use_var(acc[j / 4]);
        let x = b.ins().extractlane(v, (j % 4) as u8);
        b.def_var(*l, x);
    }
    let first = tail.first().map_or(combine, |t| t.0);
    b.ins().jump(first, &[]);
    for (j, &(head, step)) in tail.iter().enumerate() {
        let next = tail.get(j + 1).map_or(combine, |t| t.0);
        b.switch_to_block(head);
        let cv = b.use_var(c);
        let at = b.ins().iadd_imm_s(cv, j as i64);
        let left = b.ins().icmp(IntCC::SignedLessThan, at, cols);
        b.ins().brif(left, step, &[], combine, &[]);

        b.switch_to_block(step);
        let off = b.ins().ishl_imm_s(at, 2);
        let addrs: Vec<Value> = row_ptr.iter().map(|p| b.ins().iadd(*p, off)).collect();
        let vals = body(&mut Em { b: &mut b, vector: false }, kernel, &addrs, &row_fixed, 0, flags);
        let l = b.use_var(lane[j]);
        let l = b.ins().fadd(l, vals[red.expr]);
        b.def_var(lane[j], l);
        b.ins().jump(next, &[]);
    }

    b.switch_to_block(combine);
    let l: Vec<Value> = lane.iter().map(|v| b.use_var(*v)).collect();
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

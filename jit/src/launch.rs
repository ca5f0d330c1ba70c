//! Launching a plan's kernels: each runs whole (one Cranelift function) or staged
//! (`staged`: Cranelift stages and runtime transcendentals over tiles). Kernels over
//! many elements are split into fixed chunks run by rayon; an elementwise kernel
//! computes every element independently, so the split never changes a bit.

use rayon::prelude::*;
use smallvec::SmallVec;

use crate::codegen::KernelFn;
use crate::kernel::{Access, Kernel};
use crate::staged::Staged;

/// Elements below which a kernel runs on the calling thread.
const PARALLEL_MIN: usize = 1 << 16;
/// Elements per parallel chunk (a multiple of 8: whole vector trips).
const CHUNK: usize = 1 << 15;

/// A raw pointer table entry that may cross to rayon's threads (transparent: a slice of
/// them is the kernel's pointer table).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub(crate) struct Ptr(pub(crate) *mut f32);
// SAFETY: the pointers index disjoint output ranges per chunk and read-only inputs; the
// buffers outlive the parallel section (joined before they are used again).
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}

/// How one plan kernel runs.
enum Runner {
    /// Module function `i`.
    Whole(usize),
    Staged(Staged),
}

/// A plan's kernels as compiled: what to compile, then how to run each.
pub(crate) struct Kernels {
    runners: Vec<Runner>,
    accesses: Vec<Vec<Access>>,
    fns: Vec<KernelFn>,
}

/// Whether kernels with transcendentals run staged (the default) or with the
/// transcendentals inlined as 4-lane Cranelift code (`TENSORJIT_INLINE_MATH=1`, for
/// comparison; the bits are the same either way).
fn staging() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("TENSORJIT_INLINE_MATH").map_or(true, |v| v != "1"))
}

impl Kernels {
    /// The Cranelift functions to compile for `kernels` (in module order) and the
    /// runners that will use them.
    pub(crate) fn prepare(kernels: &[Kernel]) -> (Vec<Kernel>, Kernels) {
        let mut module = Vec::new();
        let mut runners = Vec::with_capacity(kernels.len());
        for k in kernels {
            match Staged::split(k).filter(|_| staging()) {
                Some(mut st) => {
                    st.link(module.len());
                    module.extend(st.kernels.iter().cloned());
                    runners.push(Runner::Staged(st));
                }
                None => {
                    runners.push(Runner::Whole(module.len()));
                    module.push(k.clone());
                }
            }
        }
        let accesses = kernels.iter().map(|k| k.inputs.clone()).collect();
        (module, Kernels { runners, accesses, fns: Vec::new() })
    }

    /// Attaches the compiled module's functions (in `prepare`'s order).
    pub(crate) fn link(mut self, fns: Vec<KernelFn>) -> Kernels {
        self.fns = fns;
        self
    }

    /// Runs plan kernel `index` over `rows × cols` with `ptrs` (inputs then outputs).
    ///
    /// # Safety
    /// Every input pointer must address the elements its access pattern reads for
    /// `rows × cols`, and every output pointer `rows × cols` writable f32s.
    pub(crate) unsafe fn launch(&self, index: usize, ptrs: &[Ptr], rows: usize, cols: usize) {
        let access = &self.accesses[index];
        let chunk = |raw: &[*mut f32], rows: usize, cols: usize| match &self.runners[index] {
            // SAFETY: the chunk's pointers, within the caller's guarantee.
            Runner::Whole(f) => unsafe { self.fns[*f](raw.as_ptr(), rows as i64, cols as i64) },
            // SAFETY: as above.
            Runner::Staged(st) => unsafe { crate::staged::run(st, &self.fns, raw, access, rows, cols) },
        };
        // SAFETY: forwarded.
        unsafe { split(ptrs, access, rows, cols, chunk) }
    }
}

/// The table as the kernel's raw pointer table.
fn raw(ptrs: &[Ptr]) -> &[*mut f32] {
    // SAFETY: `Ptr` is `repr(transparent)` over `*mut f32`: same layout, same length.
    unsafe { std::slice::from_raw_parts(ptrs.as_ptr() as *const *mut f32, ptrs.len()) }
}

/// The pointer table `ptrs` (inputs with their `access` patterns, then full outputs)
/// moved to element (r, c) of a `cols`-wide iteration space.
pub(crate) fn offset_to(
    ptrs: &[*mut f32],
    access: &[Access],
    cols: usize,
    r: usize,
    c: usize,
) -> SmallVec<[*mut f32; 16]> {
    let mut out = SmallVec::new();
    for (i, p) in ptrs.iter().enumerate() {
        out.push(match access.get(i).copied().unwrap_or(Access::Full) {
            Access::Full => p.wrapping_add(r * cols + c),
            Access::Row => p.wrapping_add(c),
            Access::Col => p.wrapping_add(r),
            Access::Scalar => *p,
        });
    }
    out
}

/// Calls `chunk` on the whole of `rows × cols` when it is small, else on fixed pieces
/// in parallel (rows when there are many, else the columns of the few rows), with the
/// pointers offset to each piece.
///
/// # Safety
/// As [`Kernels::launch`].
unsafe fn split(
    ptrs: &[Ptr],
    access: &[Access],
    rows: usize,
    cols: usize,
    chunk: impl Fn(&[*mut f32], usize, usize) + Sync,
) {
    let n = rows * cols;
    if n < PARALLEL_MIN {
        chunk(raw(ptrs), rows, cols);
        return;
    }
    let (split_rows, total, step) = if rows >= 8 { (true, rows, (CHUNK / cols).max(1)) } else { (false, cols, CHUNK) };
    let chunks: Vec<(usize, usize)> = (0..total).step_by(step).map(|s| (s, (s + step).min(total))).collect();
    // `Ptr` (Sync) crosses to the threads; each piece views it as raw pointers.
    let offset = |r: usize, c: usize| offset_to(raw(ptrs), access, cols, r, c);
    chunks.par_iter().for_each(|&(a, b)| {
        if split_rows {
            // Rows a..b of every buffer.
            chunk(&offset(a, 0), b - a, cols);
        } else {
            // Columns a..b of each row.
            for r in 0..rows {
                chunk(&offset(r, a), 1, b - a);
            }
        }
    });
}

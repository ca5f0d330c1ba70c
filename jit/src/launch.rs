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
    /// Per kernel, how each pointer of its table is indexed: inputs, full outputs, then
    /// the row sums (`Col`).
    accesses: Vec<Vec<Access>>,
    /// For each kernel and input, whether its one output may be written over that
    /// input's buffer (see [`in_place_safe`]).
    in_place: Vec<Vec<bool>>,
    /// Inputs per kernel (the first entries of its `accesses`).
    n_inputs: Vec<usize>,
    /// Kernels that must see whole rows (they reduce along them): split only by rows.
    whole_rows: Vec<bool>,
    fns: Vec<KernelFn>,
}

/// Whether kernel `k` (run as `runner`) may write its one output over input `d`: each
/// element's inputs are loaded before that element is stored, and no tile reads input
/// `d` after its output was written. A whole Cranelift kernel computes every output
/// element from loads of the same element; a staged one must write the output in its
/// last stage that reads `d`, from compiled code (a runtime call's `&`/`&mut` slices
/// must not overlap).
fn in_place_safe(k: &Kernel, runner: &Runner, d: usize) -> bool {
    if k.outputs.len() != 1 || k.reduce.is_some() || k.inputs.get(d) != Some(&Access::Full) {
        return false;
    }
    let Runner::Staged(st) = runner else { return true };
    use crate::staged::{Loc, Stage};
    let reads = |s: &Stage| match s {
        Stage::Jit { reads, .. } => reads.contains(&Loc::In(d)),
        Stage::Call { src, .. } => *src == Loc::In(d),
    };
    let writes_out = |s: &Stage| match s {
        Stage::Jit { writes, .. } => writes.contains(&Loc::Out(0)),
        Stage::Call { dst, .. } => *dst == Loc::Out(0),
    };
    let Some(w) = st.stages.iter().position(writes_out) else { return false };
    let last_read = st.stages.iter().rposition(reads);
    last_read.is_none_or(|r| r < w || (r == w && matches!(st.stages[w], Stage::Jit { .. })))
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
        // Full outputs, then the row sums (one per row, indexed like a `Col` input).
        let accesses = kernels
            .iter()
            .map(|k| {
                let outs = std::iter::repeat_n(Access::Full, k.outputs.len());
                k.inputs.iter().copied().chain(outs).chain(k.reduce.map(|_| Access::Col)).collect()
            })
            .collect();
        let whole_rows = kernels.iter().map(|k| k.reduce.is_some()).collect();
        let in_place = kernels
            .iter()
            .zip(&runners)
            .map(|(k, r)| (0..k.inputs.len()).map(|d| in_place_safe(k, r, d)).collect())
            .collect();
        let n_inputs = kernels.iter().map(|k| k.inputs.len()).collect();
        (module, Kernels { runners, accesses, in_place, n_inputs, whole_rows, fns: Vec::new() })
    }

    /// Whether plan kernel `index` may write its output over input `d` (see
    /// [`in_place_safe`]).
    pub(crate) fn may_alias(&self, index: usize, d: usize) -> bool {
        self.in_place.get(index).and_then(|v| v.get(d)).copied().unwrap_or(false)
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
        let inputs = &access[..self.n_inputs[index]];
        let chunk = |raw: &[*mut f32], rows: usize, cols: usize| match &self.runners[index] {
            // SAFETY: the chunk's pointers, within the caller's guarantee.
            Runner::Whole(f) => unsafe { self.fns[*f](raw.as_ptr(), rows as i64, cols as i64) },
            // SAFETY: as above.
            Runner::Staged(st) => unsafe { crate::staged::run(st, &self.fns, raw, inputs, rows, cols) },
        };
        // SAFETY: forwarded.
        unsafe { split(ptrs, access, Grid { rows, cols, whole_rows: self.whole_rows[index] }, chunk) }
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

/// The iteration space of one launch.
#[derive(Clone, Copy)]
struct Grid {
    rows: usize,
    cols: usize,
    /// Pieces must hold whole rows.
    whole_rows: bool,
}

/// Calls `chunk` on the whole of `rows × cols` when it is small, else on fixed pieces
/// in parallel (rows when there are many, else the columns of the few rows, unless
/// rows must stay whole), with the pointers offset to each piece.
///
/// # Safety
/// As [`Kernels::launch`].
unsafe fn split(ptrs: &[Ptr], access: &[Access], grid: Grid, chunk: impl Fn(&[*mut f32], usize, usize) + Sync) {
    let Grid { rows, cols, whole_rows } = grid;
    let n = rows * cols;
    if n < PARALLEL_MIN || (whole_rows && rows < 8) {
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

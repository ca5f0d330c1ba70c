//! Eager GPU ops on tensors that are not all f32: comparisons, logical ops, `where`,
//! casts, integer and f64 arithmetic, f32 `floor`/`ceil`/`sin`/`cos`/`pow` (the typed
//! kernels of [`crate::ptx::typed`]), `one_hot`, `gather` and `argmax`/`argmin` (those of
//! `ptx::index`) — and how tensors of every dtype are held on a GPU.
//!
//! Every GPU buffer is a pooled buffer of 4-byte words (`CudaSlice<f32>`, the caching
//! allocator's unit): f32 elements are the words themselves; i32 one word each, i64 and
//! f64 two (little-endian), bools one byte each, four to a word. Kernels address them
//! by byte, so the word type is only the allocator's.

use std::sync::Arc;

use cudarc::driver::{CudaFunction, CudaSlice, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;
use tensorjit_runtime::buffer::Buffer;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::{ArgOp, Op};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::{DType, Tensor};

use super::backend::{access, words_of, CudaMemory, OpCall};
use super::Gpu;
use crate::kernel::Access;
use crate::ptx::{self, Elem, TypedKernel, TypedOp, BLOCK};

/// Words that hold `n` elements of `dtype`.
pub fn words_for(dtype: DType, n: usize) -> usize {
    match dtype {
        DType::F32 | DType::I32 => n,
        DType::F64 | DType::I64 => 2 * n,
        DType::Bool => n.div_ceil(4),
    }
}

/// Host elements packed into words (see the module's documentation).
pub fn pack(buf: &Buffer) -> Vec<f32> {
    fn from_bytes(bytes: impl Iterator<Item = u8>) -> Vec<f32> {
        let bytes: Vec<u8> = bytes.collect();
        bytes
            .chunks(4)
            .map(|c| {
                let mut w = [0u8; 4];
                w[..c.len()].copy_from_slice(c);
                f32::from_bits(u32::from_le_bytes(w))
            })
            .collect()
    }
    match buf {
        Buffer::F32(v) => v.clone(),
        Buffer::I32(v) => v.iter().map(|x| f32::from_bits(*x as u32)).collect(),
        Buffer::I64(v) => from_bytes(v.iter().flat_map(|x| x.to_le_bytes())),
        Buffer::F64(v) => from_bytes(v.iter().flat_map(|x| x.to_le_bytes())),
        Buffer::Bool(v) => from_bytes(v.iter().map(|&b| u8::from(b))),
    }
}

/// The words of a fill of `dtype` with `value` (`ptx::render_fill_words`' `lo` and `hi`):
/// `value` converted as the runtime's `full` converts it (`as`, and `!= 0` for bools),
/// packed.
pub fn fill_words(value: f64, dtype: DType) -> [u32; 2] {
    element_words(&match dtype {
        DType::F32 => Buffer::F32(vec![value as f32]),
        DType::F64 => Buffer::F64(vec![value]),
        DType::I32 => Buffer::I32(vec![value as i32]),
        DType::I64 => Buffer::I64(vec![value as i64]),
        DType::Bool => Buffer::Bool(vec![value != 0.0]),
    })
}

/// The fill words (`lo`, `hi`) repeating the first element of `one` (a bool's byte four
/// times to the word).
pub fn element_words(one: &Buffer) -> [u32; 2] {
    let words = match one {
        Buffer::Bool(v) => pack(&Buffer::Bool(vec![v.first().copied().unwrap_or(false); 4])),
        other => pack(other),
    };
    let (lo, hi) = match one {
        Buffer::F64(_) | Buffer::I64(_) => (0, 1),
        _ => (0, 0),
    };
    let bits = |i: usize| words.get(i).map_or(0, |w| w.to_bits());
    [bits(lo), bits(hi)]
}

/// The `len` elements of `dtype` that `words` hold (see the module's documentation).
pub fn unpack(dtype: DType, words: &[f32], len: usize) -> Buffer {
    let bytes = || words.iter().flat_map(|w| w.to_bits().to_le_bytes());
    let eights = || {
        let b: Vec<u8> = bytes().collect();
        b.chunks_exact(8).take(len).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect::<Vec<_>>()
    };
    match dtype {
        DType::F32 => Buffer::F32(words[..len.min(words.len())].to_vec()),
        DType::I32 => Buffer::I32(words.iter().take(len).map(|w| w.to_bits() as i32).collect()),
        DType::I64 => Buffer::I64(eights().into_iter().map(|b| b as i64).collect()),
        DType::F64 => Buffer::F64(eights().into_iter().map(f64::from_bits).collect()),
        DType::Bool => Buffer::Bool(bytes().take(len).map(|b| b != 0).collect()),
    }
}

/// Whether [`run`] may compute `op` (a cheap test on the f32 ops' path).
fn handled(op: &Op) -> bool {
    match op {
        // Every binary op has a typed form for some dtypes (f32 arithmetic has fused
        // kernels: `TypedOp::of` declines it).
        Op::Binary(_) => true,
        // Every unary op has a typed form for some dtypes (f64 has all; `TypedOp::of`
        // declines the f32 ones the fused kernels compute).
        Op::Unary(_) => true,
        Op::Select
        | Op::Cast(_)
        | Op::OneHot { .. }
        | Op::Gather { .. }
        | Op::ArgReduce { .. }
        | Op::Cumsum { .. }
        | Op::Cumprod { .. }
        | Op::Argsort { .. } => true,
        _ => false,
    }
}

/// Runs `op` on `gpu` when it is one of this module's (`Ok(None)`: it is not, or not
/// for these operands — an operand of f64, a broadcast no access pattern reads, an
/// empty reduction).
pub(super) fn run(call: OpCall<'_>) -> Result<Option<Tensor>, Error> {
    let OpCall { gpu, op, x, dtype, shape } = call;
    if !handled(op) {
        return Ok(None);
    }
    // The elementwise ops' typed form, before anything else is looked at (f32
    // arithmetic and casts of f64 decline here, on the f32 ops' path).
    let elementwise = match op {
        Op::OneHot { .. }
        | Op::Gather { .. }
        | Op::ArgReduce { .. }
        | Op::Cumsum { .. }
        | Op::Cumprod { .. }
        | Op::Argsort { .. } => None,
        _ => {
            let dtypes: smallvec::SmallVec<[DType; 3]> = x.iter().map(|t| t.dtype()).collect();
            match TypedOp::of(op, &dtypes, dtype) {
                Some(t) => Some(t),
                None => return Ok(None),
            }
        }
    };
    let Some(bufs) = x.iter().map(|t| words_of(t)).collect::<Option<Vec<_>>>() else { return Ok(None) };
    let elem = |t: &Tensor| Elem::of(t.dtype());
    // The index kernels: one launch writing the whole output, its entry rendered by
    // `render`, reading `ins` (buffer, words), with `dims` after the element count.
    // `total` work items (one per output element unless said).
    let launch_items =
        |name: String, render: &dyn Fn(&str) -> String, ins: &[(&CudaSlice<f32>, usize)], total, dims: &[usize]| {
            let out_words = words_for(dtype, shape.numel());
            new_tensor(gpu, dtype, shape, |o| {
                gpu.launch_elementwise(&name, render, &op, ins, (o, total, out_words), dims)
            })
        };
    let launch = |name, render: &dyn Fn(&str) -> String, ins: &[(&CudaSlice<f32>, usize)], dims: &[usize]| {
        launch_items(name, render, ins, shape.numel(), dims)
    };
    let whole = |k: usize| (bufs[k], words_for(x[k].dtype(), x[k].numel()));
    // `[outer, n, inner]` around `axis` of the first operand: (n, inner).
    let line = |axis: usize| (x[0].dims()[axis], x[0].dims()[axis + 1..].iter().product::<usize>());
    match op {
        Op::OneHot { depth, .. } => {
            let (index, out) = (elem(x[0]), Elem::of(dtype));
            if !matches!(index, Elem::I32 | Elem::I64) {
                return Ok(None);
            }
            let render = move |n: &str| ptx::render_one_hot(index, out, n);
            launch(format!("tensorjit_one_hot_{index:?}_{out:?}"), &render, &[whole(0)], &[*depth])
        }
        Op::Gather { axis } => {
            let (values, index) = (elem(x[0]), elem(x[1]));
            if !matches!(index, Elem::I32 | Elem::I64) {
                return Ok(None);
            }
            let (n, inner) = line(*axis);
            let render = move |nm: &str| ptx::render_gather(values, index, nm);
            // Every element read is below the params' count: o < outer, id < n (checked
            // in the kernel), x < inner.
            let dims = [n, x[1].numel(), inner];
            launch(format!("tensorjit_gather_{values:?}_{index:?}"), &render, &[whole(0), whole(1)], &dims)
        }
        Op::ArgReduce { op: which, axis } => {
            let values = elem(x[0]);
            let (n, inner) = line(*axis);
            if values == Elem::Bool || n == 0 {
                return Ok(None);
            }
            let max = *which == ArgOp::ArgMax;
            let render = move |nm: &str| ptx::render_arg_reduce(values, max, nm);
            launch(format!("tensorjit_arg_reduce_{values:?}_{max}"), &render, &[whole(0)], &[n, inner])
        }
        Op::Cumsum { axis, exclusive, reverse } | Op::Cumprod { axis, exclusive, reverse } => {
            let values = elem(x[0]);
            if values == Elem::Bool {
                return Ok(None);
            }
            let product = matches!(op, Op::Cumprod { .. });
            let (n, inner) = line(*axis);
            let render = move |nm: &str| ptx::render_scan(values, product, nm);
            // An empty output launches nothing, so `n` ≥ 1 in the kernel.
            let dims = [n, inner, usize::from(*exclusive), usize::from(*reverse)];
            let name = format!("tensorjit_{}_{values:?}", if product { "cumprod" } else { "cumsum" });
            launch(name, &render, &[whole(0)], &dims)
        }
        Op::Argsort { axis, descending, keep } => {
            let values = elem(x[0]);
            let (n, inner) = line(*axis);
            // Each element reads its whole line: long lines sort on the host.
            if values == Elem::Bool || n > ptx::ARGSORT_MAX_LINE {
                return Ok(None);
            }
            let render = move |nm: &str| ptx::render_argsort(values, nm);
            // Every write is at (o·keep + rank)·inner + x with rank < keep: inside the
            // output. One thread per input element (the output may be shorter).
            let dims = [n, inner, keep.unwrap_or(n), usize::from(*descending)];
            launch_items(format!("tensorjit_argsort_{values:?}"), &render, &[whole(0)], x[0].numel(), &dims)
        }
        _ => {
            let Some(typed) = elementwise else { return Ok(None) };
            let reads: smallvec::SmallVec<[Option<Access>; 3]> = x.iter().map(|t| access(t, shape)).collect();
            let Some(inputs) = reads.iter().copied().collect::<Option<Vec<Access>>>() else {
                // A broadcast no access pattern reads ([b, 1, c] against [b, t, c]): those
                // operands are broadcast to the output's shape first.
                let mut full = Vec::with_capacity(x.len());
                for (t, read) in x.iter().zip(&reads) {
                    full.push(match read {
                        Some(_) => (*t).clone(),
                        None => match super::permute::broadcast(gpu, t, shape)? {
                            Some(b) => b,
                            None => return Ok(None),
                        },
                    });
                }
                let refs: smallvec::SmallVec<[&Tensor; 3]> = full.iter().collect();
                return run(OpCall { x: &refs, ..call });
            };
            let k = TypedKernel { op: typed, inputs };
            let lens: smallvec::SmallVec<[usize; 3]> = x.iter().map(|t| t.numel()).collect();
            new_tensor(gpu, dtype, shape, |o| gpu.launch_typed(&k, (&bufs, &lens), o, shape))
        }
    }
}

/// A new tensor of `dtype` and `shape` on `gpu` whose words `fill` writes, as the
/// `Ok(Some(…))` of the op launchers ([`CudaMemory::new_typed`]).
pub(super) fn new_tensor(
    gpu: &Arc<Gpu>,
    dtype: DType,
    shape: &Shape,
    fill: impl FnOnce(&mut CudaSlice<f32>) -> Result<(), Error>,
) -> Result<Option<Tensor>, Error> {
    CudaMemory::new_typed(gpu, dtype, shape, fill).map(Some)
}

impl Gpu {
    /// The loaded entry of typed kernel `k` (rendered and loaded on first use).
    fn typed_function(&self, k: &TypedKernel) -> Result<CudaFunction, Error> {
        let mut cache = self.typed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(k) {
            return Ok(f.clone());
        }
        let name = "tensorjit_typed";
        let module = self
            .ctx
            .load_module(Ptx::from_src(ptx::render_typed(k, name)))
            .map_err(|e| self.err(format!("loading {k}: {e}")))?;
        let f = module.load_function(name).map_err(|e| self.err(format!("{k}: {e}")))?;
        cache.insert(k.clone(), f.clone());
        Ok(f)
    }

    /// Launches typed kernel `k` over the elements of `shape` (rows of its last dim):
    /// `inputs` the operands' word buffers and element counts, in the kernel's order.
    fn launch_typed(
        &self,
        k: &TypedKernel,
        (inputs, lens): (&[&CudaSlice<f32>], &[usize]),
        out: &mut CudaSlice<f32>,
        shape: &Shape,
    ) -> Result<(), Error> {
        let n = shape.numel();
        let cols = shape.dims().last().copied().unwrap_or(1);
        let rows = n.checked_div(cols).unwrap_or(0);
        k.check_input_lens(lens, rows, cols).map_err(|e| self.err(format!("{k}: {e}")))?;
        let types = k.op.operands();
        for ((b, &len), t) in inputs.iter().zip(lens).zip(&types) {
            if b.len() < words_for(t.dtype(), len) {
                return Err(self.err(format!("{k}: an operand of {len} elements in {} words", b.len())));
            }
        }
        if out.len() < words_for(k.op.result().dtype(), n) {
            return Err(self.err(format!("{k}: an output of {n} elements in {} words", out.len())));
        }
        if n == 0 {
            return Ok(());
        }
        let f = self.typed_function(k)?;
        let (n64, cols64) = (n as u64, cols.max(1) as u64);
        let cfg = LaunchConfig { grid_dim: (self.grid(n), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        for b in inputs {
            launch.arg(*b);
        }
        launch.arg(out).arg(&n64).arg(&cols64);
        // SAFETY: the arguments are the entry's parameters as `render_typed` declares
        // them (input pointers, the output pointer, n and cols as u64); every input
        // holds the elements its access pattern reads over n elements, in its type's
        // bytes, and the output the n results (checked above); the output is a fresh
        // buffer, never an input.
        let _gate = self.enter();
        unsafe { launch.launch(cfg) }.map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::ops::{BinaryOp, ReduceOp, UnaryOp};

    #[test]
    fn every_dtype_packs_into_words_and_back() {
        let bufs = [
            Buffer::F32(vec![1.5, -0.0, f32::NAN]),
            Buffer::F64(vec![1e300, -2.5]),
            Buffer::I32(vec![i32::MIN, -1, 7]),
            Buffer::I64(vec![i64::MIN, -1, 1 << 40]),
            Buffer::Bool(vec![true, false, true, true, false]),
        ];
        for b in bufs {
            let words = pack(&b);
            assert_eq!(words.len(), words_for(b.dtype(), b.len()), "{b:?}");
            let back = unpack(b.dtype(), &words, b.len());
            assert_eq!(format!("{back:?}"), format!("{b:?}"));
        }
        // Bools are bytes: the second word holds the fifth.
        assert_eq!(pack(&Buffer::Bool(vec![false, true, false, false, true]))[1].to_bits(), 1);
        assert_eq!(pack(&Buffer::I64(vec![-2]))[1].to_bits(), u32::MAX, "the high word of −2");
    }

    #[test]
    fn only_the_typed_ops_are_taken() {
        assert!(handled(&Op::Binary(BinaryOp::Lt)) && handled(&Op::Select) && handled(&Op::Cast(DType::I32)));
        assert!(handled(&Op::Binary(BinaryOp::FloorDiv)) && handled(&Op::Unary(UnaryOp::Exp)), "f64 exp");
        assert!(!handled(&Op::Reduce { op: ReduceOp::Sum, axes: [0].into_iter().collect(), keepdims: false }));
        assert!(!handled(&Op::MatMul { transpose_a: false, transpose_b: false }));
    }
}

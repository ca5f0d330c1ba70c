//! The CUDA device backend: eager ops on GPU tensors. f32 elementwise ops (any
//! broadcast: one a kernel's access patterns do not express is materialised first),
//! fills of every dtype, reductions (f32 over trailing or leading axes directly, over
//! others after a permute; i32 and i64 exact, `split_reduce`), matmuls, conv2d (im2col +
//! GEMM, `conv`), max and average pooling and their gradients (max pooling's
//! second-order one too; `pooling`), axis permutations and `broadcast_to` of any rank
//! and dtype (`permute`: runs of axes merged, several launches past the kernel's rank),
//! and on f32, f64, i32, i64 and bool tensors comparisons, logical ops, `where`, casts,
//! integer `+ − × ÷ pow max min` and `neg abs sign square relu`, every f64 elementwise
//! op, `one_hot`, `gather`, `argmax`/`argmin` and `cumsum` (`typed`), f64 reductions
//! (`split_reduce`) and matmuls (dgemm), slices and their gradients, concatenations,
//! and `scatter_add` (`moves`) run on the GPU —
//! single-op kernels from the PTX renderer, loaded once per kernel, and cuBLAS. Random
//! draws of f32 and f64 values (`random`) are made there; matmuls, convolutions and
//! pooling take f64 too; matmul operands whose batch is neither the output's nor one
//! matrix are broadcast to it first. Problems with nothing to read (an empty result; a
//! reduction, matmul or convolution over nothing) are fills (`empty`); permutes,
//! broadcasts and slices (and their gradients) whose walks keep more runs of axes than
//! one launch takes run as several. An op and operands no kernel above takes is
//! computed on the host and its result copied back (correct, slow, announced once per
//! op by a `tracing` warning, and counted by [`host_fallbacks`]).

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use cudarc::driver::CudaSlice;
use tensorjit_runtime::buffer::Buffer;
use tensorjit_runtime::device::{Device, DeviceBackend, DeviceMemory};
use tensorjit_runtime::error::{Error, OpError};
use tensorjit_runtime::ir::ValueType;
use tensorjit_runtime::ops::{Op, ReduceOp};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend as rt;
use tensorjit_runtime::{DType, Tensor};

use super::blas::MatMulParams;
use super::typed::{pack, unpack, words_for};
use super::{Gpu, Lines};
use crate::kernel::{fusible_binary, fusible_unary, Access, Expr, Kernel};
use crate::ptx::RowReduce;

/// A tensor's elements on a GPU, in a pooled buffer of 4-byte words (f32 elements
/// themselves; other dtypes packed as `typed` describes), which goes back to the GPU's
/// pool when dropped.
pub struct CudaMemory {
    gpu: Arc<Gpu>,
    words: Option<CudaSlice<f32>>,
    dtype: DType,
    len: usize,
}

impl CudaMemory {
    pub(crate) fn f32(gpu: Arc<Gpu>, b: CudaSlice<f32>, len: usize) -> Arc<dyn DeviceMemory> {
        Self::typed(gpu, b, DType::F32, len)
    }

    /// `len` elements of `dtype` held in `words`.
    pub(crate) fn typed(gpu: Arc<Gpu>, words: CudaSlice<f32>, dtype: DType, len: usize) -> Arc<dyn DeviceMemory> {
        Arc::new(CudaMemory { gpu, words: Some(words), dtype, len })
    }

    /// A new f32 tensor of `shape` on `gpu` whose elements `fill` writes (the buffer
    /// goes back to the pool when `fill` fails).
    pub(crate) fn new_f32(
        gpu: &Arc<Gpu>,
        shape: &Shape,
        fill: impl FnOnce(&mut CudaSlice<f32>) -> Result<(), Error>,
    ) -> Result<Tensor, Error> {
        Self::new_typed(gpu, DType::F32, shape, fill)
    }

    /// A new tensor of `dtype` and `shape` on `gpu` whose words `fill` writes (the
    /// buffer goes back to the pool when `fill` fails).
    pub(crate) fn new_typed(
        gpu: &Arc<Gpu>,
        dtype: DType,
        shape: &Shape,
        fill: impl FnOnce(&mut CudaSlice<f32>) -> Result<(), Error>,
    ) -> Result<Tensor, Error> {
        let n = shape.numel();
        let mut out = gpu.alloc_f32(words_for(dtype, n))?;
        if let Err(e) = fill(&mut out) {
            gpu.recycle_f32(out);
            return Err(e);
        }
        Tensor::from_device_memory(CudaMemory::typed(gpu.clone(), out, dtype, n), shape.clone())
    }

    /// The f32 buffer (`None` for other dtypes).
    pub fn as_f32(&self) -> Option<&CudaSlice<f32>> {
        self.words.as_ref().filter(|_| self.dtype == DType::F32)
    }

    /// The words holding the elements, whatever their dtype.
    pub fn words(&self) -> Option<&CudaSlice<f32>> {
        self.words.as_ref()
    }
}

impl Drop for CudaMemory {
    fn drop(&mut self) {
        if let Some(b) = self.words.take() {
            self.gpu.recycle_f32(b);
        }
    }
}

impl fmt::Debug for CudaMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CudaMemory({} × {} on cuda:{})", self.len, self.dtype(), self.gpu.ordinal)
    }
}

impl DeviceMemory for CudaMemory {
    fn device(&self) -> Device {
        Device::Cuda(self.gpu.ordinal)
    }

    fn dtype(&self) -> DType {
        self.dtype
    }

    fn len(&self) -> usize {
        self.len
    }

    fn to_host(&self) -> Result<Buffer, Error> {
        let g = &self.gpu;
        let Some(b) = &self.words else { return Err(g.err("internal: a released device buffer was read")) };
        let words = g.download(b, words_for(self.dtype, self.len))?;
        Ok(match self.dtype {
            DType::F32 => Buffer::F32(words),
            d => unpack(d, &words, self.len),
        })
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

thread_local! {
    static HOST_FALLBACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many GPU ops this thread has computed on the host so far because no GPU kernel
/// takes them (a diagnostic: the count of the slow path the once-per-op warning
/// announces).
pub fn host_fallbacks() -> usize {
    HOST_FALLBACKS.with(std::cell::Cell::get)
}

/// One eager op on a GPU as each family of its kernels (`typed`, `moves`, `random`,
/// `empty`) is handed it: the op, its operands (on `gpu`), and its result's dtype and
/// shape.
#[derive(Clone, Copy)]
pub(super) struct OpCall<'a> {
    pub gpu: &'a Arc<Gpu>,
    pub op: &'a Op,
    pub x: &'a [&'a Tensor],
    pub dtype: DType,
    pub shape: &'a Shape,
}

/// The backend of `Device::Cuda`: GPUs opened on first use.
#[derive(Default)]
pub struct CudaBackend {
    gpus: Mutex<HashMap<usize, Arc<Gpu>>>,
    warned: Mutex<HashSet<&'static str>>,
}

impl CudaBackend {
    /// GPU `ordinal`, opened on first use (`Err` without a driver or such a GPU).
    pub fn gpu(&self, ordinal: usize) -> Result<Arc<Gpu>, Error> {
        let mut gpus = self.gpus.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = gpus.get(&ordinal) {
            return Ok(g.clone());
        }
        let g = Gpu::open(ordinal)?;
        gpus.insert(ordinal, g.clone());
        Ok(g)
    }

    fn ordinal(device: Device) -> Result<usize, Error> {
        match device {
            Device::Cuda(i) => Ok(i),
            other => Err(Error::Internal(format!("the CUDA backend was asked for {other}"))),
        }
    }
}

/// The f32 device buffer of a tensor on `gpu`.
pub(crate) fn f32_of(t: &Tensor) -> Option<&CudaSlice<f32>> {
    t.device_memory()?.as_any().downcast_ref::<CudaMemory>()?.as_f32()
}

/// The device words of a tensor on a GPU, whatever its dtype.
pub(crate) fn words_of(t: &Tensor) -> Option<&CudaSlice<f32>> {
    t.device_memory()?.as_any().downcast_ref::<CudaMemory>()?.words()
}

/// How a kernel reads operand `t` for an output of `out` viewed as `rows × cols`.
pub(super) fn access(t: &Tensor, out: &Shape) -> Option<Access> {
    let cols = out.dims().last().copied().unwrap_or(1);
    let dims = t.dims();
    if t.shape() == out {
        return Some(Access::Full);
    }
    if t.numel() == 1 {
        return Some(Access::Scalar);
    }
    let lead_ones = dims.iter().take_while(|&&d| d == 1).count();
    if dims[lead_ones..] == [cols] {
        return Some(Access::Row);
    }
    let r = out.rank();
    if r >= 2 && dims.len() == r && dims[r - 1] == 1 && dims[..r - 1] == out.dims()[..r - 1] {
        return Some(Access::Col);
    }
    None
}

/// The single-op kernel an eager GPU op runs, its operands read with `access` (`None`:
/// the op has no GPU kernel). Public so the PTX tests assemble every one of them.
pub fn single_op_kernel(op: &Op, access: &[Access]) -> Option<Kernel> {
    let kernel = |inputs: Vec<Access>, exprs: Vec<Expr>| {
        let out = exprs.len() - 1;
        Some(Kernel { inputs, exprs, outputs: vec![out], reduce: None })
    };
    match (op, access) {
        (Op::Unary(u), [a]) if fusible_unary(*u) => kernel(vec![*a], vec![Expr::Input(0), Expr::Unary(*u, 0)]),
        (Op::Binary(b), [a0, a1]) if fusible_binary(*b) => {
            kernel(vec![*a0, *a1], vec![Expr::Input(0), Expr::Input(1), Expr::Binary(*b, 0, 1)])
        }
        (Op::Fill { value }, _) => kernel(vec![], vec![Expr::Const(*value as f32)]),
        _ => None,
    }
}

/// The kernel that turns row sums into means (the runtime's mean: sum / count).
pub fn mean_kernel(count: usize) -> Kernel {
    Kernel {
        inputs: vec![Access::Full],
        exprs: vec![
            Expr::Input(0),
            Expr::Const(count as f32),
            Expr::Binary(tensorjit_runtime::ops::BinaryOp::Div, 0, 1),
        ],
        outputs: vec![2],
        reduce: None,
    }
}

/// Rows and columns of `shape` for a kernel (the last dim is the columns).
fn rows_cols(shape: &Shape) -> (usize, usize) {
    let cols = shape.dims().last().copied().unwrap_or(1);
    (shape.numel().checked_div(cols).unwrap_or(0), cols)
}

impl CudaBackend {
    /// Runs `op` on the GPU when it is one the GPU computes (`Ok(None)`: it is not).
    fn native(
        &self,
        gpu: &Arc<Gpu>,
        op: &Op,
        x: &[&Tensor],
        dtype: DType,
        shape: &Shape,
    ) -> Result<Option<Tensor>, Error> {
        let call = OpCall { gpu, op, x, dtype, shape };
        for family in [super::typed::run, super::moves::run, super::random::run, super::empty::run] {
            if let Some(t) = family(call)? {
                return Ok(Some(t));
            }
        }
        match op {
            Op::Permute(perm) => return super::permute::permute(gpu, perm, x[0]),
            Op::BroadcastTo(_) => return super::permute::broadcast(gpu, x[0], shape),
            _ => {}
        }
        let float_op = matches!(
            op,
            Op::MatMul { .. }
                | Op::Conv2d(_)
                | Op::Conv2dBackpropInput { .. }
                | Op::Conv2dBackpropFilter { .. }
                | Op::MaxPool2d(_)
                | Op::MaxPool2dGrad(_)
                | Op::MaxPool2dGradGrad(_)
                | Op::AvgPool2d(_)
                | Op::AvgPool2dGrad { .. }
        );
        if float_op && matches!(dtype, DType::F32 | DType::F64) {
            let Some(words) = x.iter().map(|t| words_of(t)).collect::<Option<Vec<_>>>() else { return Ok(None) };
            return self.float_op(gpu, op, x, &words, (dtype, shape));
        }
        if dtype != DType::F32 {
            return match op {
                Op::Reduce { op, axes, .. } => super::split_reduce::run(gpu, *op, axes, x[0], shape),
                _ => Ok(None),
            };
        }
        let Some(bufs) = x.iter().map(|t| f32_of(t)).collect::<Option<Vec<_>>>() else { return Ok(None) };
        let (rows, cols) = rows_cols(shape);
        let k = match op {
            Op::Reduce { op, axes, .. } => return self.reduce(gpu, *op, axes, x[0], bufs[0], shape),
            // A unary op's operand has the output's shape; a fill reads none.
            Op::Unary(_) | Op::Fill { .. } => single_op_kernel(op, &[Access::Full]),
            _ => {
                let reads: Vec<Option<Access>> = x.iter().map(|t| access(t, shape)).collect();
                match reads.iter().copied().collect::<Option<Vec<_>>>() {
                    Some(a) => single_op_kernel(op, &a),
                    None if matches!(op, Op::Binary(b) if fusible_binary(*b)) => {
                        return self.broadcast_operands(gpu, op, (x, &reads), shape)
                    }
                    None => None,
                }
            }
        };
        let Some(k) = k else { return Ok(None) };
        // A fill reads none of its operand's elements.
        let ins: &[&CudaSlice<f32>] = if k.inputs.is_empty() { &[] } else { &bufs };
        let t = CudaMemory::new_f32(gpu, shape, |out| gpu.launch(&k, ins, std::slice::from_mut(out), rows, cols))?;
        Ok(Some(t))
    }

    /// A matmul, conv2d (or a gradient) or pooling (or a gradient) of f32 or f64
    /// operands, their word buffers `bufs`.
    fn float_op(
        &self,
        gpu: &Arc<Gpu>,
        op: &Op,
        x: &[&Tensor],
        bufs: &[&CudaSlice<f32>],
        (dtype, shape): (DType, &Shape),
    ) -> Result<Option<Tensor>, Error> {
        match op {
            Op::MatMul { transpose_a, transpose_b } => {
                self.matmul(gpu, (*transpose_a, *transpose_b), x, (dtype, shape))
            }
            Op::Conv2d(p) => super::conv::conv2d(gpu, p, x, bufs, (dtype, shape)),
            Op::Conv2dBackpropInput { .. } | Op::Conv2dBackpropFilter { .. } => {
                super::conv::conv2d_grad(gpu, op, x, bufs, (dtype, shape))
            }
            _ => super::pooling::pool(gpu, op, x, bufs, (dtype, shape)),
        }
    }

    /// A binary op whose operands broadcast in a way no access pattern reads (e.g.
    /// `[b, 1, c]` against `[b, t, c]`): those operands are broadcast to the output's
    /// shape first (the permute kernel with stride 0 on repeated axes), then the op runs
    /// on full operands — the same arithmetic on the same values. `reads`: each
    /// operand's access pattern, if it has one.
    fn broadcast_operands(
        &self,
        gpu: &Arc<Gpu>,
        op: &Op,
        (x, reads): (&[&Tensor], &[Option<Access>]),
        shape: &Shape,
    ) -> Result<Option<Tensor>, Error> {
        let mut full = Vec::with_capacity(x.len());
        for (t, read) in x.iter().zip(reads) {
            full.push(match read {
                Some(_) => (*t).clone(),
                None => match super::permute::broadcast(gpu, t, shape)? {
                    Some(e) => e,
                    None => return Ok(None),
                },
            });
        }
        let refs: Vec<&Tensor> = full.iter().collect();
        self.native(gpu, op, &refs, DType::F32, shape)
    }

    /// Sum, mean, max or min over trailing axes (one row per kept position) or leading
    /// axes (one column per kept position); over other axes, the reduced axes are
    /// permuted to the end first.
    fn reduce(
        &self,
        gpu: &Arc<Gpu>,
        op: ReduceOp,
        axes: &[usize],
        x: &Tensor,
        buf: &CudaSlice<f32>,
        shape: &Shape,
    ) -> Result<Option<Tensor>, Error> {
        let r = x.rank();
        let trailing = axes.iter().enumerate().all(|(i, &a)| a == r - axes.len() + i);
        let leading = axes.iter().enumerate().all(|(i, &a)| a == i);
        let which = match op {
            ReduceOp::Sum | ReduceOp::Mean => RowReduce::Sum,
            ReduceOp::Max => RowReduce::Max,
            ReduceOp::Min => RowReduce::Min,
            ReduceOp::Prod => RowReduce::Prod,
        };
        // Results and how many values each one combines.
        let kept = shape.numel();
        let count = x.numel().checked_div(kept).unwrap_or(0);
        if kept == 0 || count == 0 || kept * count != x.numel() {
            return Ok(None);
        }
        if !(trailing || leading) {
            // Kept axes first, reduced ones last (each in order), then a row reduction.
            let (perm, tail) = super::permute::axes_last(x.rank(), axes);
            let Some(moved) = super::permute::permute(gpu, &perm, x)? else { return Ok(None) };
            let Some(moved_buf) = f32_of(&moved) else { return Ok(None) };
            return self.reduce(gpu, op, &tail, &moved, moved_buf, shape);
        }
        let reduce = |out: &mut CudaSlice<f32>| match trailing {
            true => gpu.reduce_into(Lines::Rows, which, buf, out, kept, count),
            false => gpu.reduce_into(Lines::Cols, which, buf, out, count, kept),
        };
        let t = CudaMemory::new_f32(gpu, shape, |out| {
            if op != ReduceOp::Mean {
                return reduce(out);
            }
            // Means: the sums, then each divided by the count.
            gpu.with_scratch(kept, |sums| {
                reduce(sums)?;
                gpu.launch(&mean_kernel(count), &[sums], std::slice::from_mut(out), 1, kept)
            })
        })?;
        Ok(Some(t))
    }

    /// Matmul of f32 or f64 operands through cuBLAS: each operand's batch is the
    /// output's (stride one matrix), a single matrix (stride 0), or broadcast to the
    /// output's batch first (`[2, 1, m, k]` against `[3, k, n]`).
    fn matmul(
        &self,
        gpu: &Arc<Gpu>,
        (transpose_a, transpose_b): (bool, bool),
        x: &[&Tensor],
        (dtype, shape): (DType, &Shape),
    ) -> Result<Option<Tensor>, Error> {
        let r = shape.rank();
        if x[0].rank() < 2 || x[1].rank() < 2 || r < 2 {
            return Ok(None);
        }
        let batch_dims = &shape.dims()[..r - 2];
        // Each operand with a batch of its own (size > 1) that is not the output's is
        // broadcast to it.
        let mut ops = Vec::with_capacity(2);
        for t in [x[0], x[1]] {
            let (tb, mat) = t.dims().split_at(t.rank() - 2);
            ops.push(if tb.iter().product::<usize>() == 1 || tb == batch_dims {
                t.clone()
            } else {
                let wide = Shape::from([batch_dims, mat].concat());
                match super::permute::broadcast(gpu, t, &wide)? {
                    Some(w) => w,
                    None => return Ok(None),
                }
            });
        }
        let (a, b) = (&ops[0], &ops[1]);
        let (Some(buf_a), Some(buf_b)) = (words_of(a), words_of(b)) else { return Ok(None) };
        let (m, n) = (shape.dims()[r - 2], shape.dims()[r - 1]);
        let ad = a.dims();
        let k = if transpose_a { ad[ad.len() - 2] } else { ad[ad.len() - 1] };
        let stride =
            |t: &Tensor, size: usize| if t.rank() > 2 && t.dims()[..t.rank() - 2] == *batch_dims { size } else { 0 };
        let (stride_a, stride_b) = (stride(a, m * k), stride(b, k * n));
        let batch: usize = batch_dims.iter().product();
        let p = MatMulParams { m, n, k, transpose_a, transpose_b, batch, stride_a, stride_b };
        super::typed::new_tensor(gpu, dtype, shape, |out| match dtype {
            DType::F64 => gpu.matmul_f64(p, buf_a, buf_b, out),
            _ => gpu.matmul(p, buf_a, buf_b, out),
        })
    }

    /// Computes `op` on the host and copies the result back.
    fn on_host(&self, device: Device, op: &Op, x: &[&Tensor], dtype: DType, shape: &Shape) -> Result<Tensor, Error> {
        HOST_FALLBACKS.with(|n| n.set(n.get() + 1));
        if self.warned.lock().unwrap_or_else(|p| p.into_inner()).insert(op.name()) {
            tracing::warn!(
                target: "tensorjit::cuda",
                "{} has no GPU kernel for these operands yet: computed on the host and copied back to {device} \
                 (slow; shown once per op)",
                op.name()
            );
        }
        let host = x.iter().map(|t| t.to(Device::Cpu)).collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&Tensor> = host.iter().collect();
        let out = rt::run_kernel(op, &refs, &ValueType { dtype, shape: shape.clone() })?;
        out.to(device)
    }
}

impl DeviceBackend for CudaBackend {
    fn upload(&self, device: Device, buf: &Buffer) -> Result<Arc<dyn DeviceMemory>, Error> {
        let gpu = self.gpu(Self::ordinal(device)?)?;
        let words = match buf {
            Buffer::F32(v) => gpu.upload(v)?,
            other => gpu.upload(&pack(other))?,
        };
        Ok(CudaMemory::typed(gpu, words, buf.dtype(), buf.len()))
    }

    fn run(&self, device: Device, op: &Op, x: &[&Tensor], dtype: DType, shape: &Shape) -> Result<Tensor, OpError> {
        let go = || -> Result<Tensor, Error> {
            let gpu = self.gpu(Self::ordinal(device)?)?;
            match self.native(&gpu, op, x, dtype, shape)? {
                Some(t) => Ok(t),
                None => self.on_host(device, op, x, dtype, shape),
            }
        };
        go().map_err(|e| OpError::new(op.name(), e.to_string()))
    }

    fn synchronize(&self, device: Device) -> Result<(), Error> {
        self.gpu(Self::ordinal(device)?)?.synchronize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasts_map_to_access_patterns() {
        let out = Shape::new(&[4, 3]);
        let t = |d: &[usize]| Tensor::zeros(d, DType::F32);
        assert_eq!(access(&t(&[4, 3]), &out), Some(Access::Full));
        assert_eq!(access(&t(&[]), &out), Some(Access::Scalar));
        assert_eq!(access(&t(&[1, 1]), &out), Some(Access::Scalar));
        assert_eq!(access(&t(&[3]), &out), Some(Access::Row));
        assert_eq!(access(&t(&[1, 3]), &out), Some(Access::Row));
        assert_eq!(access(&t(&[4, 1]), &out), Some(Access::Col));
        assert_eq!(access(&t(&[2, 4, 3]), &Shape::new(&[2, 4, 3])), Some(Access::Full));
        assert_eq!(access(&t(&[4, 3]), &Shape::new(&[2, 4, 3])), None, "a batch broadcast has no pattern");
        assert_eq!(rows_cols(&out), (4, 3));
        assert_eq!(rows_cols(&Shape::scalar()), (1, 1));
        assert_eq!(rows_cols(&Shape::new(&[5, 0])), (0, 0));
    }

    #[test]
    fn a_backend_without_a_gpu_answers_err() {
        let b = CudaBackend::default();
        if super::super::device_count() > 0 {
            return;
        }
        let e = b.upload(Device::Cuda(0), &Buffer::F32(vec![1.0, 2.0])).err().map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.starts_with("cuda:0: ")));
        assert!(b.synchronize(Device::Cuda(0)).is_err());
    }
}

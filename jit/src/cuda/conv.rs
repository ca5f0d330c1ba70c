//! conv2d on a GPU: the PTX im2col kernel ([`crate::ptx::render_im2col`]) and one
//! cuBLAS GEMM of the im2col matrix with the HWIO filter (viewed as `[KH·KW·C, O]`);
//! its gradients as the CPU computes them — a GEMM and col2im
//! ([`crate::ptx::render_col2im`]) for the input, im2col and a GEMM for the filter.

use std::sync::Arc;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::{Conv2dParams, Op};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::{conv2d_geometry, WindowGeometry};
use tensorjit_runtime::{DType, Tensor};

use super::backend::CudaMemory;
use super::blas::MatMulParams;
use super::typed::words_for;
use super::Gpu;
use crate::ptx::{self, Elem, BLOCK};

impl Gpu {
    /// Writes the im2col matrix of the NHWC `elem` (f32 or f64) `input` (geometry `g`)
    /// into `out`, which holds `n·out_h·out_w × kh·kw·c` elements.
    pub fn im2col_into(
        &self,
        g: &WindowGeometry,
        elem: Elem,
        input: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), Error> {
        let kk = g.kh * g.kw * g.c;
        let total = g.n * g.out_h * g.out_w * kk;
        let dims = [kk, g.c, g.kw, g.out_h * g.out_w, g.out_w, g.h, g.w, g.stride_h, g.stride_w, g.pad_top, g.pad_left];
        let words = |n: usize| words_for(elem.dtype(), n);
        self.launch_elementwise(
            if elem == Elem::F64 { "tensorjit_im2col_f64" } else { "tensorjit_im2col" },
            &|n: &str| ptx::render_im2col(elem, n),
            g,
            &[(input, words(g.n * g.h * g.w * g.c))],
            (out, total, words(total)),
            &dims,
        )
    }

    /// Sums the im2col-shaped `elem` (f32 or f64) gradient `cols` (`n·out_h·out_w ×
    /// kh·kw·c`) back onto the NHWC input of geometry `g`, into `out` (`n·h·w·c`
    /// elements).
    pub fn col2im_into(
        &self,
        g: &WindowGeometry,
        elem: Elem,
        cols: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), Error> {
        let kk = g.kh * g.kw * g.c;
        let total = g.n * g.h * g.w * g.c;
        let dims = [g.c, g.w, g.h, g.kh, g.kw, g.stride_h, g.stride_w, g.pad_top, g.pad_left, g.out_h, g.out_w, kk];
        let words = |n: usize| words_for(elem.dtype(), n);
        self.launch_elementwise(
            if elem == Elem::F64 { "tensorjit_col2im_f64" } else { "tensorjit_col2im" },
            &|n: &str| ptx::render_col2im(elem, n),
            g,
            &[(cols, words(g.n * g.out_h * g.out_w * kk))],
            (out, total, words(total)),
            &dims,
        )
    }

    /// A GEMM of f32 or f64 (`elem`) operands in word buffers.
    fn matmul_of(
        &self,
        elem: Elem,
        p: MatMulParams,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), Error> {
        match elem {
            Elem::F64 => self.matmul_f64(p, a, b, out),
            _ => self.matmul(p, a, b, out),
        }
    }

    /// Launches a grid-stride entry with one thread per work item (conv layouts, pooling,
    /// permutes, typed index and data-movement kernels): its `inputs` with the words each
    /// must hold, `(output, total, room)` — the output, the `total` work items, the words
    /// the output must hold — then `dims` (the entry's parameters after `total`); `what`
    /// names the problem in errors.
    pub(super) fn launch_elementwise(
        &self,
        name: &str,
        render: &dyn Fn(&str) -> String,
        what: &dyn std::fmt::Debug,
        inputs: &[(&CudaSlice<f32>, usize)],
        (out, total, room): (&mut CudaSlice<f32>, usize, usize),
        dims: &[usize],
    ) -> Result<(), Error> {
        if inputs.iter().any(|(b, needs)| b.len() < *needs) || out.len() < room {
            let lens: Vec<usize> = inputs.iter().map(|(b, _)| b.len()).collect();
            return Err(self.err(format!("{name} of {what:?} given buffers of {lens:?} and {} elements", out.len())));
        }
        if total == 0 {
            return Ok(());
        }
        let f = self.function(name, name, || render(name))?;
        let values: Vec<u64> = std::iter::once(total).chain(dims.iter().copied()).map(|d| d as u64).collect();
        let cfg = LaunchConfig { grid_dim: (self.grid(total), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        for (b, _) in inputs {
            launch.arg(*b);
        }
        launch.arg(out);
        for v in &values {
            launch.arg(v);
        }
        // SAFETY: the arguments are the entry's parameters in its `*_PARAMS` order
        // (input pointers, the output pointer, then u64s: `total` and `dims`); every
        // input holds the elements an in-range index reads (cells in the padding are
        // never loaded) and `out` the `total` elements the grid-stride loop writes
        // (checked above).
        let _gate = self.enter();
        unsafe { launch.launch(cfg) }.map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// One plain (unbatched, untransposed) GEMM; each use sets the dims.
const ONE: MatMulParams =
    MatMulParams { m: 0, n: 0, k: 0, transpose_a: false, transpose_b: false, batch: 1, stride_a: 0, stride_b: 0 };

/// The element type of a conv or pooling of `dtype` (`None`: neither f32 nor f64).
pub(super) fn float_elem(dtype: DType) -> Option<Elem> {
    match dtype {
        DType::F32 => Some(Elem::F32),
        DType::F64 => Some(Elem::F64),
        _ => None,
    }
}

/// `conv2d(x, f)` of f32 or f64 tensors (their word buffers `bufs`) on `gpu` into a new
/// tensor of `dtype` and `shape` (`Ok(None)` for empty problems: `empty` fills those
/// first).
pub(super) fn conv2d(
    gpu: &Arc<Gpu>,
    p: &Conv2dParams,
    x: &[&Tensor],
    bufs: &[&CudaSlice<f32>],
    (dtype, shape): (DType, &Shape),
) -> Result<Option<Tensor>, Error> {
    let Some(elem) = float_elem(dtype) else { return Ok(None) };
    let g = conv2d_geometry(x[0].shape(), x[1].shape(), p)?;
    let (m, k, n) = (g.n * g.out_h * g.out_w, g.kh * g.kw * g.c, x[1].dims()[3]);
    if m == 0 || k == 0 || n == 0 || shape.numel() != m * n {
        return Ok(None);
    }
    let t = CudaMemory::new_typed(gpu, dtype, shape, |out| {
        gpu.with_scratch(words_for(dtype, m * k), |cols| {
            gpu.im2col_into(&g, elem, bufs[0], cols)?;
            gpu.matmul_of(elem, MatMulParams { m, n, k, ..ONE }, cols, bufs[1], out)
        })
    })?;
    Ok(Some(t))
}

/// conv2d's gradients on `gpu`: `Conv2dBackpropInput` (`dy · Wᵀ`, then col2im) and
/// `Conv2dBackpropFilter` (`im2col(x)ᵀ · dy`); `Ok(None)` for empty problems (`empty`
/// fills those first).
pub(super) fn conv2d_grad(
    gpu: &Arc<Gpu>,
    op: &Op,
    x: &[&Tensor],
    bufs: &[&CudaSlice<f32>],
    (dtype, shape): (DType, &Shape),
) -> Result<Option<Tensor>, Error> {
    let Some(elem) = float_elem(dtype) else { return Ok(None) };
    let (g, o) = match op {
        Op::Conv2dBackpropInput { params, input } => (conv2d_geometry(input, x[1].shape(), params)?, x[1].dims()[3]),
        Op::Conv2dBackpropFilter { params, filter } => (conv2d_geometry(x[0].shape(), filter, params)?, filter[3]),
        _ => return Ok(None),
    };
    let (m, k) = (g.n * g.out_h * g.out_w, g.kh * g.kw * g.c);
    if m == 0 || k == 0 || o == 0 {
        return Ok(None);
    }
    let input_grad = matches!(op, Op::Conv2dBackpropInput { .. });
    let t = CudaMemory::new_typed(gpu, dtype, shape, |out| {
        gpu.with_scratch(words_for(dtype, m * k), |cols| {
            if input_grad {
                // dcols[m×k] = dy[m×o] · Wᵀ (W stored [k, o]), summed back onto the input.
                let p = MatMulParams { m, n: k, k: o, transpose_b: true, ..ONE };
                gpu.matmul_of(elem, p, bufs[0], bufs[1], cols)?;
                gpu.col2im_into(&g, elem, cols, out)
            } else {
                // dW[k×o] = colsᵀ · dy.
                let p = MatMulParams { m: k, n: o, k: m, transpose_a: true, ..ONE };
                gpu.im2col_into(&g, elem, bufs[0], cols)?;
                gpu.matmul_of(elem, p, cols, bufs[1], out)
            }
        })
    })?;
    Ok(Some(t))
}

//! conv2d on a GPU: the PTX im2col kernel ([`crate::ptx::render_im2col`]) and one
//! cuBLAS GEMM of the im2col matrix with the HWIO filter (viewed as `[KH·KW·C, O]`).

use std::sync::Arc;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ops::Conv2dParams;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::{conv2d_geometry, Conv2dGeometry};
use tensorjit_runtime::Tensor;

use super::backend::CudaMemory;
use super::blas::MatMulParams;
use super::Gpu;
use crate::ptx::{self, BLOCK};

impl Gpu {
    /// Writes the im2col matrix of the NHWC `input` (geometry `g`) into `out`, which
    /// holds `n·out_h·out_w × kh·kw·c` elements.
    pub fn im2col_into(
        &self,
        g: &Conv2dGeometry,
        input: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), Error> {
        let kk = g.kh * g.kw * g.c;
        let total = g.n * g.out_h * g.out_w * kk;
        if input.len() < g.n * g.h * g.w * g.c || out.len() < total {
            return Err(self.err(format!(
                "im2col of {g:?} given buffers of {} and {} elements",
                input.len(),
                out.len()
            )));
        }
        if total == 0 {
            return Ok(());
        }
        let name = "tensorjit_im2col";
        let f = self.function(name, name, || ptx::render_im2col(name))?;
        let dims: [u64; 12] =
            [total, kk, g.c, g.kw, g.out_h * g.out_w, g.out_w, g.h, g.w, g.stride_h, g.stride_w, g.pad_top, g.pad_left]
                .map(|d| d as u64);
        let cfg = LaunchConfig { grid_dim: (self.grid(total), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        launch.arg(input).arg(out);
        for d in &dims {
            launch.arg(d);
        }
        // SAFETY: the arguments are the entry's parameters in `IM2COL_PARAMS` order (two
        // pointers, twelve u64); `input` holds the n·h·w·c elements every in-range index
        // reads (out-of-range cells are never loaded) and `out` the `total` elements the
        // grid-stride loop writes (checked above).
        unsafe { launch.launch(cfg) }.map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// `conv2d(x, f)` of f32 tensors on `gpu` into a new tensor of `shape` (`Ok(None)` for
/// empty problems, which the host computes).
pub(super) fn conv2d(
    gpu: &Arc<Gpu>,
    p: &Conv2dParams,
    x: &[&Tensor],
    bufs: &[&CudaSlice<f32>],
    shape: &Shape,
) -> Result<Option<Tensor>, Error> {
    let g = conv2d_geometry(x[0].shape(), x[1].shape(), p)?;
    let (m, k, n) = (g.n * g.out_h * g.out_w, g.kh * g.kw * g.c, x[1].dims()[3]);
    if m == 0 || k == 0 || n == 0 || shape.numel() != m * n {
        return Ok(None);
    }
    let mut cols = gpu.alloc_f32(m * k)?;
    gpu.im2col_into(&g, bufs[0], &mut cols)?;
    let mut out = gpu.alloc_f32(m * n)?;
    let gemm = MatMulParams { m, n, k, transpose_a: false, transpose_b: false, batch: 1, stride_a: 0, stride_b: 0 };
    let done = gpu.matmul(gemm, &cols, bufs[1], &mut out);
    gpu.recycle_f32(cols);
    done?;
    Ok(Some(Tensor::from_device_memory(CudaMemory::f32(gpu.clone(), out, m * n), shape.clone())?))
}

//! Matmul on the GPU through cuBLAS (one handle per GPU, on its stream).
//!
//! Tensors are row-major and cuBLAS is column-major: a row-major `X[r, c]` is the
//! column-major `Xᵀ` with leading dimension `c`, so `C = op(A)·op(B)` is computed as
//! `Cᵀ = op(B)ᵀ·op(A)ᵀ` — cuBLAS's `A` is our `B` and its `B` our `A`, with the same
//! transpose flags, and C needs no transpose at all.

use std::sync::Arc;

use cudarc::cublas::sys::cublasOperation_t;
use cudarc::cublas::{CudaBlas, Gemm, GemmConfig, StridedBatchedConfig};
use cudarc::driver::{CudaSlice, DevicePtr, DevicePtrMut};
use tensorjit_runtime::error::Error;

use super::Gpu;

/// One (batched) matmul: `batch` products of `op(A)[m,k] · op(B)[k,n]`; a batch stride
/// of 0 broadcasts that operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatMulParams {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub transpose_a: bool,
    pub transpose_b: bool,
    pub batch: usize,
    pub stride_a: usize,
    pub stride_b: usize,
}

impl Gpu {
    fn blas(&self) -> Result<Arc<CudaBlas>, Error> {
        self.blas
            .get_or_init(|| {
                // SAFETY: only tries to dlopen the cuBLAS library; runs none of its code.
                if !unsafe { cudarc::cublas::sys::is_culib_present() } {
                    return Err("cuBLAS could not be loaded: none of libcublas.so, .so.12, .so.11 is on the \
                                library path (CUDA 13 ships only libcublas.so.13: link it as libcublas.so in a \
                                folder on LD_LIBRARY_PATH, as .ci/gpu-run does)"
                        .to_string());
                }
                CudaBlas::new(self.stream.clone()).map(Arc::new).map_err(|e| e.to_string())
            })
            .clone()
            .map_err(|e| self.err(e))
    }

    /// `out = op(A)·op(B)` for every batch (row-major, `out` holds batch·m·n).
    pub fn matmul(
        &self,
        p: MatMulParams,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), Error> {
        let (a_len, b_len, out_len) = (a.len(), b.len(), out.len());
        self.gemm(p, (a, a_len), (b, b_len), (out, out_len), (1.0f32, 0.0f32))
    }

    /// [`matmul`](Self::matmul) of f64 operands held in word buffers (two words per
    /// element): cuBLAS's dgemm.
    pub fn matmul_f64(
        &self,
        p: MatMulParams,
        a: &CudaSlice<f32>,
        b: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
    ) -> Result<(), Error> {
        let (a_len, b_len, out_len) = (a.len() / 2, b.len() / 2, out.len() / 2);
        let short = || self.err("matmul: an f64 buffer of an odd number of words");
        // SAFETY: the buffers hold f64 elements packed as two little-endian words each
        // (`typed`'s layout); every bit pattern is a valid f64, and each view covers
        // whole elements within its buffer.
        let (av, bv, mut ov) = unsafe {
            (
                a.transmute::<f64>(a_len).ok_or_else(short)?,
                b.transmute::<f64>(b_len).ok_or_else(short)?,
                out.transmute_mut::<f64>(out_len).ok_or_else(short)?,
            )
        };
        self.gemm(p, (&av, a_len), (&bv, b_len), (&mut ov, out_len), (1.0f64, 0.0f64))
    }

    /// The GEMM(s) of `p` on operands of `T` holding the given element counts, with
    /// `alpha` 1 and `beta` 0 of `T` (`one_zero`).
    fn gemm<T, A, B, C>(
        &self,
        p: MatMulParams,
        (a, a_len): (&A, usize),
        (b, b_len): (&B, usize),
        (out, out_len): (&mut C, usize),
        (one, zero): (T, T),
    ) -> Result<(), Error>
    where
        CudaBlas: Gemm<T>,
        T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits,
        A: DevicePtr<T>,
        B: DevicePtr<T>,
        C: DevicePtrMut<T>,
    {
        let MatMulParams { m, n, k, transpose_a, transpose_b, batch, stride_a, stride_b } = p;
        let last = |stride: usize, size: usize| stride * batch.saturating_sub(1) + size;
        if a_len < last(stride_a, m * k) || b_len < last(stride_b, k * n) || out_len < batch * m * n {
            return Err(self.err(format!("matmul buffers too small for {p:?}")));
        }
        if batch == 0 || m == 0 || n == 0 {
            return Ok(());
        }
        let int =
            |x: usize| i32::try_from(x).map_err(|_| self.err(format!("matmul dimension {x} exceeds cuBLAS's i32")));
        let op = |t: bool| if t { cublasOperation_t::CUBLAS_OP_T } else { cublasOperation_t::CUBLAS_OP_N };
        let gemm = GemmConfig {
            transa: op(transpose_b),
            transb: op(transpose_a),
            m: int(n)?,
            n: int(m)?,
            k: int(k)?,
            alpha: one,
            lda: int(if transpose_b { k } else { n })?,
            ldb: int(if transpose_a { m } else { k })?,
            beta: zero,
            ldc: int(n)?,
        };
        let blas = self.blas()?;
        if k == 0 {
            // An empty sum: cuBLAS with k = 0 scales C by beta, so C must be zeroed.
            let _gate = self.enter();
            return self.stream.memset_zeros(out).map_err(|e| self.err(e));
        }
        let _gate = self.enter();
        let res = if batch == 1 {
            // SAFETY: the config describes row-major operands of the sizes checked above
            // (cuBLAS reads A and B within them and writes m·n elements of C).
            unsafe { blas.gemm(gemm, b, a, out) }
        } else {
            let cfg = StridedBatchedConfig {
                gemm,
                batch_size: int(batch)?,
                stride_a: stride_b as i64,
                stride_b: stride_a as i64,
                stride_c: (m * n) as i64,
            };
            // SAFETY: as above, for every batch at the strides checked above.
            unsafe { blas.gemm_strided_batched(cfg, b, a, out) }
        };
        res.map_err(|e| self.err(format!("cuBLAS gemm: {e}")))
    }
}

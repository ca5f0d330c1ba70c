//! Fused kernels of device plans ([`crate::device_plan`]) on a GPU: the PTX renderer's
//! kernel, loaded once per kernel text and launched on the device buffers of its inputs.

use std::sync::Arc;

use cudarc::driver::CudaSlice;
use smallvec::SmallVec;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::Tensor;

use super::backend::{f32_of, CudaMemory};
use super::Gpu;
use crate::device_plan::Launcher;
use crate::kernel::Kernel;

/// Launches fused kernels on one GPU.
pub struct PtxLauncher {
    gpu: Arc<Gpu>,
}

impl PtxLauncher {
    pub fn new(gpu: Arc<Gpu>) -> PtxLauncher {
        PtxLauncher { gpu }
    }
}

impl Launcher for PtxLauncher {
    fn name(&self) -> &'static str {
        "ptx"
    }

    fn gpu(&self) -> Option<Arc<Gpu>> {
        Some(self.gpu.clone())
    }

    fn launch(
        &self,
        k: &Kernel,
        inputs: &[&Tensor],
        rows: usize,
        cols: usize,
        shapes: &[&Shape],
    ) -> Result<Vec<Tensor>, Error> {
        let gpu = &self.gpu;
        let mut bufs: SmallVec<[&CudaSlice<f32>; 8]> = SmallVec::new();
        for (i, t) in inputs.iter().enumerate() {
            bufs.push(f32_of(t).ok_or_else(|| {
                gpu.err(format!("fused kernel input {i} ({}) is not an f32 tensor on this GPU", t.type_string()))
            })?);
        }
        let n = rows * cols;
        if shapes.len() != k.outputs.len() || shapes.iter().any(|s| s.numel() != n) {
            return Err(gpu.err(format!("a fused kernel over {rows} × {cols} given output shapes {shapes:?}")));
        }
        let mut outs = (0..k.outputs.len()).map(|_| gpu.alloc_f32(n)).collect::<Result<Vec<_>, _>>()?;
        gpu.launch(k, &bufs, &mut outs, rows, cols)?;
        outs.into_iter()
            .zip(shapes)
            .map(|(o, s)| Tensor::from_device_memory(CudaMemory::f32(gpu.clone(), o, n), (*s).clone()))
            .collect()
    }
}

//! Fused kernels of device plans ([`crate::device_plan`]) on a GPU: the PTX renderer's
//! kernel, loaded once per kernel text and launched on the device buffers of its inputs;
//! and whole `while` loops as one launch of one block (`ptx::render_loop`).

use std::sync::Arc;

use cudarc::driver::{CudaSlice, LaunchConfig, PushKernelArg};
use smallvec::SmallVec;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::Tensor;

use super::backend::{f32_of, CudaMemory};
use super::Gpu;
use crate::device_plan::{Launcher, LoopModule};
use crate::kernel::Kernel;
use crate::ptx::BLOCK;

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
        let bufs = f32_bufs(gpu, inputs, "fused kernel input")?;
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

    fn runs_loops(&self) -> bool {
        true
    }

    fn launch_loop(
        &self,
        l: &LoopModule,
        init: &[&Tensor],
        outer: &[&Tensor],
        max: Option<u64>,
    ) -> Result<Vec<Tensor>, Error> {
        let gpu = &self.gpu;
        let (init_bufs, outer_bufs) = (f32_bufs(gpu, init, "loop variable")?, f32_bufs(gpu, outer, "outer value")?);
        let lens_ok = init.len() == l.shapes.len() && init.iter().zip(&l.shapes).all(|(t, s)| t.shape() == s);
        if !lens_ok {
            return Err(gpu.err(format!("{} given loop variables that are not of its shapes {:?}", l.name, l.shapes)));
        }
        let f = gpu.function(&l.name, &l.name, || l.ptx.clone())?;
        let mut outs = l.shapes.iter().map(|s| gpu.alloc_f32(s.numel())).collect::<Result<Vec<_>, _>>()?;
        let max = max.unwrap_or(u64::MAX);
        gpu.with_scratch(l.arena_len, |arena| {
            let cfg = LaunchConfig { grid_dim: (1, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
            let mut launch = gpu.stream.launch_builder(&f);
            launch.arg(arena);
            for b in init_bufs.iter().chain(&outer_bufs) {
                launch.arg(*b);
            }
            for o in outs.iter_mut() {
                launch.arg(o);
            }
            launch.arg(&max);
            // SAFETY: the arguments are the entry's parameters as `ptx::loop_params`
            // names them (arena, init…, outer…, out…, max); the arena holds the loop's
            // `arena_len` slots, every loop variable and result its shape's elements
            // (checked above), and each outer value what the plan's static shapes say
            // its steps read; one block of exactly BLOCK threads (the entry's `.reqntid`).
            let _gate = gpu.enter();
            unsafe { launch.launch(cfg) }.map_err(|e| gpu.err(e))?;
            Ok(())
        })?;
        outs.into_iter()
            .zip(&l.shapes)
            .map(|(o, s)| Tensor::from_device_memory(CudaMemory::f32(gpu.clone(), o, s.numel()), s.clone()))
            .collect()
    }
}

/// The f32 device buffers of `ts` (`what`: what they are, for the error).
fn f32_bufs<'a>(gpu: &Gpu, ts: &[&'a Tensor], what: &str) -> Result<SmallVec<[&'a CudaSlice<f32>; 8]>, Error> {
    ts.iter()
        .enumerate()
        .map(|(i, t)| {
            f32_of(t)
                .ok_or_else(|| gpu.err(format!("{what} {i} ({}) is not an f32 tensor on this GPU", t.type_string())))
        })
        .collect()
}

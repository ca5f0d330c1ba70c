//! The CUDA device runtime: PTX modules from [`crate::ptx`] loaded and launched through
//! cudarc on one stream per device.
//!
//! cudarc loads the driver library at run time, so this builds everywhere and a machine
//! without a GPU gets `Err` from [`Gpu::open`] — never a panic: the driver library's
//! presence is checked before cudarc would panic on a failed load. Unsafe code is
//! limited to the two calls that need it (the presence probe and the kernel launch),
//! each with its `SAFETY` argument.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;
use tensorjit_runtime::error::Error;

use crate::kernel::Kernel;
use crate::ptx::{self, RowReduce, BLOCK};

fn device_error(ordinal: usize, message: impl std::fmt::Display) -> Error {
    Error::Device { device: format!("cuda:{ordinal}"), message: message.to_string() }
}

/// Whether the CUDA driver library can be loaded on this machine.
pub fn driver_present() -> bool {
    // SAFETY: the probe only tries to dlopen the driver library under its usual names
    // and drops it; it runs no code of the library.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// The number of CUDA devices (0 without a driver or a GPU).
pub fn device_count() -> usize {
    if !driver_present() {
        return 0;
    }
    CudaContext::device_count().map_or(0, |n| n.max(0) as usize)
}

/// One GPU: its context, its stream and the kernels loaded on it.
pub struct Gpu {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Loaded entries by PTX text (each rendering names its own entry).
    functions: Mutex<HashMap<String, CudaFunction>>,
    multiprocessors: u32,
}

impl Gpu {
    /// Opens device `ordinal`: `Err` naming the device when there is no driver, no such
    /// GPU, or the driver fails.
    pub fn open(ordinal: usize) -> Result<Arc<Gpu>, Error> {
        if !driver_present() {
            return Err(device_error(
                ordinal,
                "no CUDA driver on this machine (libcuda could not be loaded); use Device::Cpu",
            ));
        }
        let count = device_count();
        if ordinal >= count {
            return Err(device_error(ordinal, format!("no such GPU: this machine has {count} CUDA device(s)")));
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| device_error(ordinal, e))?;
        let sms = ctx
            .attribute(cudarc::driver::sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)
            .map_err(|e| device_error(ordinal, e))?;
        let stream = ctx.default_stream();
        Ok(Arc::new(Gpu {
            ordinal,
            ctx,
            stream,
            functions: Mutex::new(HashMap::new()),
            multiprocessors: sms.max(1) as u32,
        }))
    }

    /// The device's name (`NVIDIA H100 80GB HBM3`).
    pub fn name(&self) -> Result<String, Error> {
        self.ctx.name().map_err(|e| self.err(e))
    }

    fn err(&self, e: impl std::fmt::Display) -> Error {
        device_error(self.ordinal, e)
    }

    /// The entry `entry` of module `ptx`, loaded once (the driver JIT-compiles the PTX
    /// for this GPU).
    fn function(&self, ptx: &str, entry: &str) -> Result<CudaFunction, Error> {
        let mut cache = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(ptx) {
            return Ok(f.clone());
        }
        let module = self.ctx.load_module(Ptx::from_src(ptx)).map_err(|e| self.err(format!("loading {entry}: {e}")))?;
        let f = module.load_function(entry).map_err(|e| self.err(format!("{entry}: {e}")))?;
        cache.insert(ptx.to_string(), f.clone());
        Ok(f)
    }

    fn upload(&self, data: &[f32]) -> Result<CudaSlice<f32>, Error> {
        self.stream.clone_htod(data).map_err(|e| self.err(e))
    }

    fn download(&self, buf: &CudaSlice<f32>) -> Result<Vec<f32>, Error> {
        self.stream.clone_dtoh(buf).map_err(|e| self.err(e))
    }

    /// Blocks for a grid-stride loop over `threads` work items.
    fn grid(&self, threads: usize) -> u32 {
        let wanted = threads.div_ceil(BLOCK as usize).max(1);
        wanted.min(self.multiprocessors as usize * 16) as u32
    }

    /// Runs kernel `k` on host data (inputs in the kernel's order, each of the length
    /// its access pattern needs over `rows × cols`) and returns its outputs.
    pub fn run_kernel(&self, k: &Kernel, inputs: &[&[f32]], rows: usize, cols: usize) -> Result<Vec<Vec<f32>>, Error> {
        let n = rows * cols;
        let lens: Vec<usize> = inputs.iter().map(|d| d.len()).collect();
        k.check_input_lens(&lens, rows, cols).map_err(|e| self.err(e))?;
        if k.reduce.is_some() {
            // Row sums are rendered separately (`ptx::render_row_reduce`).
            return Err(self.err("a kernel ending in a row reduction has no single PTX entry yet"));
        }
        let name = "tensorjit_kernel";
        let text = ptx::render_kernel(k, name);
        let f = self.function(&text, name)?;
        let ins = inputs.iter().map(|d| self.upload(d)).collect::<Result<Vec<_>, _>>()?;
        let mut outs = (0..k.outputs.len())
            .map(|_| self.stream.alloc_zeros::<f32>(n.max(1)).map_err(|e| self.err(e)))
            .collect::<Result<Vec<_>, _>>()?;
        let (n64, cols64) = (n as u64, cols.max(1) as u64);
        let threads = if ptx::vectorized(k) { n.div_ceil(4) } else { n };
        let cfg = LaunchConfig { grid_dim: (self.grid(threads), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        for b in &ins {
            launch.arg(b);
        }
        for b in &mut outs {
            launch.arg(b);
        }
        launch.arg(&n64).arg(&cols64);
        // SAFETY: the arguments are exactly the entry's parameters as `render_kernel`
        // declares them (input pointers, output pointers, n, cols as u64); every input
        // buffer holds the values its access pattern reads over n elements (checked
        // above), every output holds n, and no buffer is both read and written.
        unsafe { launch.launch(cfg) }.map_err(|e| self.err(e))?;
        let mut result = Vec::with_capacity(outs.len());
        for b in &outs {
            let mut v = self.download(b)?;
            v.truncate(n);
            result.push(v);
        }
        Ok(result)
    }

    /// Reduces each of `rows` rows of `cols` values (row-major `data`).
    pub fn row_reduce(&self, op: RowReduce, data: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>, Error> {
        if data.len() != rows * cols || rows == 0 {
            return Err(self.err(format!(
                "row_reduce needs rows × cols = {} values and rows > 0, got {}",
                rows * cols,
                data.len()
            )));
        }
        let name = "tensorjit_row_reduce";
        let text = ptx::render_row_reduce(op, name);
        let f = self.function(&text, name)?;
        let input = self.upload(data)?;
        let mut out = self.stream.alloc_zeros::<f32>(rows).map_err(|e| self.err(e))?;
        let (rows64, cols64) = (rows as u64, cols as u64);
        let blocks = rows.min(self.multiprocessors as usize * 16) as u32;
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        launch.arg(&input).arg(&mut out).arg(&rows64).arg(&cols64);
        // SAFETY: parameters as `render_row_reduce` declares them (in, out, rows, cols);
        // `input` holds rows·cols values, `out` rows; the block has exactly BLOCK threads
        // as the entry's `.reqntid` requires.
        unsafe { launch.launch(cfg) }.map_err(|e| self.err(e))?;
        self.download(&out)
    }
}

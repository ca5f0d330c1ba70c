//! The CUDA device runtime: PTX modules from [`crate::ptx`] loaded and launched through
//! cudarc on one stream per device, matmul through cuBLAS (`blas`), buffers from a
//! caching allocator ([`pool`]), and the device backend that runs eager ops on GPU
//! tensors ([`backend`]).
//!
//! cudarc loads the driver library at run time, so this builds everywhere and a machine
//! without a GPU gets `Err` from [`Gpu::open`] — never a panic: the driver library's
//! presence is checked before cudarc would panic on a failed load. Unsafe code is
//! limited to the calls that need it (the presence probes, uninitialised allocations,
//! kernel launches and GEMMs), each with its `SAFETY` argument.

pub mod backend;
mod blas;
mod conv;
mod empty;
pub mod fused;
pub(crate) mod graph;
mod moves;
mod permute;
pub mod pool;
mod pooling;
mod random;
mod split_reduce;
pub mod typed;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, RwLockReadGuard};

use cudarc::cublas::CudaBlas;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::Ptx;
use tensorjit_runtime::error::Error;

use crate::kernel::Kernel;
use crate::ptx::{self, RowReduce, BLOCK};
use pool::SizePool;

/// Which lines of a row-major matrix a reduction combines into one value each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lines {
    Rows,
    Cols,
}

/// Elements of freed f32 buffers a GPU keeps for reuse (1 GiB).
const POOL_ELEMS: usize = 1 << 28;

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

/// One GPU: its context, its stream, the kernels loaded on it, its cuBLAS handle and
/// its buffer pool.
pub struct Gpu {
    ordinal: usize,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    /// Loaded entries by the text of what they compute (a kernel's IR text, or the row
    /// reduction's name).
    functions: Mutex<HashMap<String, CudaFunction>>,
    /// Fused kernels' entries by [`Kernel::fingerprint`] (kernels with one fingerprint
    /// told apart by [`Kernel::same_as`]).
    kernels: Mutex<HashMap<u64, Vec<(Kernel, CudaFunction)>>>,
    /// Typed kernels' entries (`typed`), by the kernel itself.
    typed: Mutex<HashMap<ptx::TypedKernel, CudaFunction>>,
    blas: OnceLock<Result<Arc<CudaBlas>, String>>,
    pool: Mutex<SizePool<CudaSlice<f32>>>,
    multiprocessors: u32,
    /// Taken exclusively by a capture; every other thread's device call takes it shared,
    /// so no other thread's work lands in a graph being captured.
    gate: RwLock<()>,
}

thread_local! {
    /// Whether this thread is capturing a CUDA graph (it holds the gate exclusively).
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
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
        // One stream does all of this GPU's work, so cudarc's cross-stream event tracking
        // has nothing to order; a stream of its own (not the legacy default stream) can
        // be captured into CUDA graphs.
        // SAFETY: every buffer of this context is used on `stream` only.
        unsafe { ctx.disable_event_tracking() };
        let stream = ctx.new_stream().map_err(|e| device_error(ordinal, e))?;
        Ok(Arc::new(Gpu {
            ordinal,
            ctx,
            stream,
            functions: Mutex::new(HashMap::new()),
            kernels: Mutex::new(HashMap::new()),
            typed: Mutex::new(HashMap::new()),
            blas: OnceLock::new(),
            pool: Mutex::new(SizePool::new(POOL_ELEMS)),
            multiprocessors: sms.max(1) as u32,
            gate: RwLock::new(()),
        }))
    }

    /// The device's name (`NVIDIA H100 80GB HBM3`).
    pub fn name(&self) -> Result<String, Error> {
        self.ctx.name().map_err(|e| self.err(e))
    }

    pub(crate) fn err(&self, e: impl std::fmt::Display) -> Error {
        device_error(self.ordinal, e)
    }

    /// The stream every launch and copy of this GPU is queued on.
    pub fn stream(&self) -> &Arc<CudaStream> {
        &self.stream
    }

    /// Waits for all queued work.
    pub fn synchronize(&self) -> Result<(), Error> {
        let _gate = self.enter();
        self.stream.synchronize().map_err(|e| self.err(e))
    }

    /// Admits one call that queues work on the stream: waits while another thread
    /// captures a CUDA graph (the capturing thread itself passes).
    fn enter(&self) -> Option<RwLockReadGuard<'_, ()>> {
        if CAPTURING.with(Cell::get) {
            return None;
        }
        Some(self.gate.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Queues a copy of `src` over `dst` (the first `src.len()` elements).
    ///
    /// # Safety
    /// `dst` is written although it is borrowed shared: the caller owns the buffer
    /// exclusively (no tensor the user holds wraps it), so nothing observes the write
    /// except the work queued after it on this GPU's one stream.
    pub(crate) unsafe fn copy_over(&self, src: &CudaSlice<f32>, dst: &CudaSlice<f32>) -> Result<(), Error> {
        use cudarc::driver::DevicePtr;
        if dst.len() < src.len() {
            return Err(self.err(format!("copying {} f32s into a buffer of {}", src.len(), dst.len())));
        }
        let _gate = self.enter();
        let (from, _read) = src.device_ptr(&self.stream);
        let (to, _written) = dst.device_ptr(&self.stream);
        let bytes = src.len() * std::mem::size_of::<f32>();
        // SAFETY: both pointers address live buffers of at least `bytes` (checked above),
        // queued on the stream that does all of this GPU's work.
        unsafe { cudarc::driver::result::memcpy_dtod_async(to, from, bytes, self.stream.cu_stream()) }
            .map_err(|e| self.err(e))
    }

    /// A new buffer holding a copy of `src` (queued on the stream).
    pub fn copy_of(&self, src: &CudaSlice<f32>) -> Result<CudaSlice<f32>, Error> {
        let mut b = self.alloc_f32(src.len())?;
        let _gate = self.enter();
        self.stream.memcpy_dtod(src, &mut b).map_err(|e| self.err(e))?;
        Ok(b)
    }

    /// The entry `entry` of the module `render()` makes, loaded once per `key` (the
    /// driver JIT-compiles the PTX for this GPU).
    fn function(&self, key: &str, entry: &str, render: impl FnOnce() -> String) -> Result<CudaFunction, Error> {
        let mut cache = self.functions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = cache.get(key) {
            return Ok(f.clone());
        }
        let module =
            self.ctx.load_module(Ptx::from_src(render())).map_err(|e| self.err(format!("loading {entry}: {e}")))?;
        let f = module.load_function(entry).map_err(|e| self.err(format!("{entry}: {e}")))?;
        cache.insert(key.to_string(), f.clone());
        Ok(f)
    }

    /// The loaded entry of fused kernel `k`, found by its fingerprint (no text rendered
    /// on a cache hit: this is on every launch's path).
    fn kernel_function(&self, k: &Kernel) -> Result<CudaFunction, Error> {
        let key = k.fingerprint();
        let mut cache = self.kernels.lock().unwrap_or_else(|p| p.into_inner());
        let same = cache.entry(key).or_default();
        if let Some((_, f)) = same.iter().find(|(known, _)| known.same_as(k)) {
            return Ok(f.clone());
        }
        let name = "tensorjit_kernel";
        let module = self
            .ctx
            .load_module(Ptx::from_src(ptx::render_kernel(k, name)))
            .map_err(|e| self.err(format!("loading {name}: {e}")))?;
        let f = module.load_function(name).map_err(|e| self.err(format!("{name}: {e}")))?;
        same.push((k.clone(), f.clone()));
        Ok(f)
    }

    /// An f32 buffer of `n` elements whose contents the caller overwrites entirely
    /// before reading (recycled from the pool when one of that size is free).
    pub fn alloc_f32(&self, n: usize) -> Result<CudaSlice<f32>, Error> {
        let n = n.max(1);
        if let Some(b) = self.pool.lock().unwrap_or_else(|p| p.into_inner()).take(n) {
            return Ok(b);
        }
        if CAPTURING.with(Cell::get) {
            // A new allocation would be a node of the graph being captured.
            return Err(self.err(format!("capturing a CUDA graph: no pooled buffer of {n} f32s")));
        }
        let _gate = self.enter();
        // SAFETY: the buffer is uninitialised; every caller writes all `n` elements
        // (a kernel's outputs, a GEMM's C with beta = 0, a copy) before anything reads it.
        match unsafe { self.stream.alloc::<f32>(n) } {
            Ok(b) => Ok(b),
            Err(_) => {
                // Out of memory with buffers held for reuse: free them and retry.
                self.pool.lock().unwrap_or_else(|p| p.into_inner()).clear();
                // SAFETY: as above.
                unsafe { self.stream.alloc::<f32>(n) }.map_err(|e| self.err(format!("allocating {n} f32s: {e}")))
            }
        }
    }

    /// Returns a buffer to the pool (or frees it when the pool is full).
    pub fn recycle_f32(&self, b: CudaSlice<f32>) {
        let n = b.len();
        let rejected = self.pool.lock().unwrap_or_else(|p| p.into_inner()).give(n, b);
        drop(rejected);
    }

    /// Buffers freed from now on are withheld from reuse (a CUDA-graph capture owns
    /// them) until [`end_withholding`](Self::end_withholding).
    pub(crate) fn withhold(&self) {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).withhold();
    }

    /// The buffers freed since [`withhold`](Self::withhold); reuse resumes.
    pub(crate) fn end_withholding(&self) -> Vec<CudaSlice<f32>> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).end_withholding()
    }

    /// Runs `f` on a scratch buffer of `n` elements, returned to the pool afterwards.
    pub fn with_scratch<R>(
        &self,
        n: usize,
        f: impl FnOnce(&mut CudaSlice<f32>) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut b = self.alloc_f32(n)?;
        let r = f(&mut b);
        self.recycle_f32(b);
        r
    }

    /// A device copy of host elements.
    pub fn upload(&self, data: &[f32]) -> Result<CudaSlice<f32>, Error> {
        if CAPTURING.with(Cell::get) {
            // A graph would replay the copy from this host memory, long freed, with
            // this call's values: the run that needs an upload is not captured.
            return Err(self.err("capturing a CUDA graph: a copy from the host (a value computed on the host)"));
        }
        let mut b = self.alloc_f32(data.len())?;
        if !data.is_empty() {
            let _gate = self.enter();
            self.stream.memcpy_htod(data, &mut b).map_err(|e| self.err(e))?;
        }
        Ok(b)
    }

    /// The first `n` elements of `buf`, copied to the host.
    pub fn download(&self, buf: &CudaSlice<f32>, n: usize) -> Result<Vec<f32>, Error> {
        let _gate = self.enter();
        let mut v = self.stream.clone_dtoh(buf).map_err(|e| self.err(e))?;
        v.truncate(n);
        Ok(v)
    }

    /// Blocks for a grid-stride loop over `threads` work items.
    fn grid(&self, threads: usize) -> u32 {
        let wanted = threads.div_ceil(BLOCK as usize).max(1);
        wanted.min(self.multiprocessors as usize * 16) as u32
    }

    /// Launches kernel `k` over `rows × cols` on device buffers: `inputs` in the
    /// kernel's order (each holding what its access pattern reads), `outputs` one per
    /// kernel output, each of at least `rows × cols` elements.
    pub fn launch(
        &self,
        k: &Kernel,
        inputs: &[&CudaSlice<f32>],
        outputs: &mut [CudaSlice<f32>],
        rows: usize,
        cols: usize,
    ) -> Result<(), Error> {
        let n = rows * cols;
        let lens: smallvec::SmallVec<[usize; 8]> = inputs.iter().map(|d| d.len()).collect();
        k.check_input_lens(&lens, rows, cols).map_err(|e| self.err(e))?;
        if k.reduce.is_some() {
            // Row sums are rendered separately (`ptx::render_row_reduce`).
            return Err(self.err("a kernel ending in a row reduction has no single PTX entry yet"));
        }
        if outputs.len() != k.outputs.len() || outputs.iter().any(|o| o.len() < n) {
            return Err(self.err(format!("kernel needs {} output buffer(s) of {n} elements", k.outputs.len())));
        }
        if n == 0 {
            return Ok(());
        }
        let f = self.kernel_function(k)?;
        let (n64, cols64) = (n as u64, cols.max(1) as u64);
        let threads = if ptx::vectorized(k) { n.div_ceil(4) } else { n };
        let cfg = LaunchConfig { grid_dim: (self.grid(threads), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        for b in inputs {
            launch.arg(*b);
        }
        for b in outputs.iter_mut() {
            launch.arg(b);
        }
        launch.arg(&n64).arg(&cols64);
        // SAFETY: the arguments are exactly the entry's parameters as `render_kernel`
        // declares them (input pointers, output pointers, n, cols as u64); every input
        // buffer holds the values its access pattern reads over n elements (checked
        // above), every output holds n, and the borrow rules keep outputs distinct from
        // inputs.
        let _gate = self.enter();
        unsafe { launch.launch(cfg) }.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Reduces each row (`Lines::Rows`: into `out[r]`) or each column (`Lines::Cols`:
    /// into `out[c]`, rows in order) of the row-major `rows × cols` matrix `input`.
    pub fn reduce_into(
        &self,
        lines: Lines,
        op: RowReduce,
        input: &CudaSlice<f32>,
        out: &mut CudaSlice<f32>,
        rows: usize,
        cols: usize,
    ) -> Result<(), Error> {
        let results = match lines {
            Lines::Rows => rows,
            Lines::Cols => cols,
        };
        if input.len() < rows * cols || out.len() < results || results == 0 {
            return Err(self.err(format!(
                "a reduction of {lines:?} of {rows} × {cols} needs {} values and room for {results} results (at \
                 least one)",
                rows * cols
            )));
        }
        let (name, blocks) = match lines {
            // One block per row, blocks striding over the rows.
            Lines::Rows => ("tensorjit_row_reduce", rows.min(self.multiprocessors as usize * 16) as u32),
            // One thread per column.
            Lines::Cols => ("tensorjit_col_reduce", self.grid(cols)),
        };
        let f = self.function(&format!("{name} {op:?}"), name, || match lines {
            Lines::Rows => ptx::render_row_reduce(op, name),
            Lines::Cols => ptx::render_col_reduce(op, name),
        })?;
        let (rows64, cols64) = (rows as u64, cols as u64);
        let cfg = LaunchConfig { grid_dim: (blocks, 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 };
        let mut launch = self.stream.launch_builder(&f);
        launch.arg(input).arg(out).arg(&rows64).arg(&cols64);
        // SAFETY: parameters as `render_row_reduce` and `render_col_reduce` declare them
        // (in, out, rows, cols); `input` holds rows·cols values and `out` one per result
        // (checked above); blocks have exactly BLOCK threads (the row entry's `.reqntid`)
        // and the column entry's grid-stride loop keeps every thread within `cols`.
        let _gate = self.enter();
        unsafe { launch.launch(cfg) }.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Runs kernel `k` on host data (inputs in the kernel's order, each of the length
    /// its access pattern needs over `rows × cols`) and returns its outputs.
    pub fn run_kernel(&self, k: &Kernel, inputs: &[&[f32]], rows: usize, cols: usize) -> Result<Vec<Vec<f32>>, Error> {
        let n = rows * cols;
        let ins = inputs.iter().map(|d| self.upload(d)).collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&CudaSlice<f32>> = ins.iter().collect();
        let mut outs = (0..k.outputs.len()).map(|_| self.alloc_f32(n)).collect::<Result<Vec<_>, _>>()?;
        self.launch(k, &refs, &mut outs, rows, cols)?;
        let result = outs.iter().map(|b| self.download(b, n)).collect();
        for b in ins.into_iter().chain(outs) {
            self.recycle_f32(b);
        }
        result
    }

    /// Reduces each of `rows` rows of `cols` values (row-major host `data`).
    pub fn row_reduce(&self, op: RowReduce, data: &[f32], rows: usize, cols: usize) -> Result<Vec<f32>, Error> {
        if data.len() != rows * cols || rows == 0 {
            return Err(self.err(format!(
                "row_reduce needs rows × cols = {} values and rows > 0, got {}",
                rows * cols,
                data.len()
            )));
        }
        let input = self.upload(data)?;
        let mut out = self.alloc_f32(rows)?;
        self.reduce_into(Lines::Rows, op, &input, &mut out, rows, cols)?;
        let v = self.download(&out, rows);
        self.recycle_f32(input);
        self.recycle_f32(out);
        v
    }
}

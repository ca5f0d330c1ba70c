//! The executor of traced functions, pluggable: the runtime defines `Backend` (compile a
//! concrete function's graph) and `Executable` (run it); the JIT crate implements them
//! and the `tensorjit` facade installs it. Without one — or with
//! `TENSORJIT_BACKEND=interp` — traced functions run on the interpreter, the reference
//! every backend must match bit for bit. The choice never changes results, only speed.
//!
//! Backends build on a few entry points of the runtime: [`run_kernel`] (the eager
//! kernel of one op, no tracing or tape), variable access and `tf_print!` formatting.

use std::sync::{Arc, OnceLock};

use crate::device::Device;
use crate::error::Error;
use crate::ir::{Graph, ValueType};
use crate::ops::Op;
use crate::tensor::Tensor;
pub use crate::trace::args::Outputs;
use crate::variable::Variable;

/// A compiled concrete function.
pub trait Executable: Send + Sync {
    /// Runs it on `inputs` (one per graph parameter) with `bound` variables for its
    /// variable parameters, returning fresh output tensors.
    fn run(&self, inputs: &[&Tensor], bound: &[&Variable]) -> Result<Outputs, Error>;
    /// What was compiled, as text (the optimised graph and its kernels), for users and
    /// golden tests.
    fn describe(&self) -> String {
        String::new()
    }
    /// The executor's name when it is not its backend's (`ConcreteFunction::backend`).
    fn name(&self) -> Option<&'static str> {
        None
    }
}

/// Compiles traced graphs.
pub trait Backend: Send + Sync {
    /// A short name (`"cranelift"`), shown by `ConcreteFunction::backend`.
    fn name(&self) -> &'static str;
    /// Compiles `graph`; `Ok(None)` when it holds something this backend does not
    /// compile (the interpreter runs it instead); `Err` when compilation failed.
    fn compile(&self, graph: &Graph) -> Result<Option<Box<dyn Executable>>, Error>;
    /// Compiles `graph` traced for tensors on `device`; `Ok(None)` (the default for
    /// devices other than the CPU) leaves it to the interpreter, which runs each op on
    /// the device.
    fn compile_on(&self, graph: &Graph, device: Device) -> Result<Option<Box<dyn Executable>>, Error> {
        match device {
            Device::Cpu => self.compile(graph),
            _ => Ok(None),
        }
    }
}

static BACKEND: OnceLock<Arc<dyn Backend>> = OnceLock::new();

/// Installs the backend of traced functions (the first installation wins; returns
/// whether this one did). Traces made before keep their executor.
pub fn install_backend(backend: Arc<dyn Backend>) -> bool {
    BACKEND.set(backend).is_ok()
}

/// The backend new traces compile with: `None` for the interpreter (none installed, or
/// `TENSORJIT_BACKEND=interp`).
pub fn active_backend() -> Option<&'static dyn Backend> {
    static INTERP: OnceLock<bool> = OnceLock::new();
    let interp = *INTERP.get_or_init(|| std::env::var("TENSORJIT_BACKEND").is_ok_and(|v| v == "interp"));
    if interp {
        return None;
    }
    BACKEND.get().map(|b| &**b)
}

/// Runs the eager kernel of `op` on concrete `inputs`, producing a tensor of type `out`
/// (dims unknown in `out` are inferred from the inputs, and checked).
pub fn run_kernel(op: &Op, inputs: &[&Tensor], out: &ValueType) -> Result<Tensor, Error> {
    let (dtype, shape) = concrete_type(op, inputs, out)?;
    Ok(crate::device::run_op(op, inputs, dtype, shape)?)
}

/// `out` when its dims are all known, else the type `op` infers from `inputs`.
fn concrete_type(op: &Op, inputs: &[&Tensor], out: &ValueType) -> Result<(crate::DType, crate::Shape), Error> {
    if out.shape.is_fully_known() {
        return Ok((out.dtype, out.shape.clone()));
    }
    op.infer(inputs).map_err(|e| Error::Function(e.to_string()))
}

/// [`run_kernel`] on `device` whatever the inputs' devices (an op with no operands —
/// a random draw — made on a traced function's device instead of the host).
pub fn run_kernel_on(
    device: crate::device::Device,
    op: &Op,
    inputs: &[&Tensor],
    out: &ValueType,
) -> Result<Tensor, Error> {
    let (dtype, shape) = concrete_type(op, inputs, out)?;
    Ok(crate::device::run_op_on(device, op, inputs, dtype, shape)?)
}

/// A buffer of `n` f32s for an output the caller overwrites entirely, recycled from the
/// runtime's buffer pool when one of that size is free (a fresh large allocation costs
/// a page fault per 4 KiB on first touch).
pub fn alloc_f32(n: usize) -> Vec<f32> {
    crate::buffer::alloc::<f32>(n)
}

/// Room for `n` f32s an output will overwrite entirely: a pooled buffer (length `n`)
/// or a fresh allocation with capacity `n` and length 0, never zero-filled. The caller
/// writes all `n` elements through `as_mut_ptr` and then sets the length to `n`.
pub fn alloc_f32_for_overwrite(n: usize) -> Vec<f32> {
    crate::buffer::pooled_f32(n).unwrap_or_else(|| Vec::with_capacity(n))
}

/// The f32 buffer of `t` when `t` is its only owner (no clone, view or variable shares
/// it), for an executor to write a kernel's output over a dying input in place; else
/// `t` back, untouched.
pub fn take_f32_buffer(t: Tensor) -> Result<Vec<f32>, Tensor> {
    t.take_f32_buffer()
}

/// The dims of one 2-D f32 matmul: `op(a)` is m×k, `op(b)` k×n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatMulF32 {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    pub transpose_a: bool,
    pub transpose_b: bool,
}

/// `out = op(a)·op(b)` into a caller's buffer, bit for bit the eager 2-D `matmul`.
/// Errors (nothing is written) when a slice is shorter than the dims need.
pub fn matmul_f32_into(d: MatMulF32, a: &[f32], b: &[f32], out: &mut [f32]) -> Result<(), Error> {
    if a.len() < d.m * d.k || b.len() < d.k * d.n || out.len() < d.m * d.n {
        return Err(Error::Internal(format!(
            "matmul_f32_into: {d:?} given {} / {} / {} elements",
            a.len(),
            b.len(),
            out.len()
        )));
    }
    crate::kernels::linalg::matmul_f32_into(d, a, b, out);
    Ok(())
}

/// How an f32 reduction over `axes` of `shape` runs without a transposing copy:
/// `(outer, n, inner)` — the reduced run of length n between the kept dims — or `None`
/// (then only the eager op runs it).
pub fn reduce_dims(shape: &crate::shape::Shape, axes: &[usize]) -> Option<(usize, usize, usize)> {
    crate::kernels::reduce::reduce_dims(shape, axes)
}

/// The eager reduction `op` of f32 data laid out as `dims` (from [`reduce_dims`]) into
/// `out` (`outer × inner` values), bit for bit. Errors when the lengths disagree.
pub fn reduce_f32_into(
    op: crate::ops::ReduceOp,
    x: &[f32],
    dims: (usize, usize, usize),
    out: &mut [f32],
) -> Result<(), Error> {
    let (outer, n, inner) = dims;
    if x.len() != outer * n * inner || out.len() != outer * inner {
        return Err(Error::Internal(format!("reduce_f32_into: {dims:?} given {} → {} elements", x.len(), out.len())));
    }
    crate::kernels::reduce::reduce_f32_into(op, x, dims, out);
    Ok(())
}

/// The reduction `op` of all of `x`, bit for bit what the eager `reduce_*` kernel gives
/// for a whole f32 tensor (the canonical order), with no allocation.
pub fn reduce_all_f32(op: crate::ops::ReduceOp, x: &[f32]) -> f32 {
    crate::kernels::reduce::reduce_all_f32(op, x)
}

/// `out[i] = op(x[i])` for an f32 unary op, on the calling thread, bit for bit the eager
/// kernel (compiled code calls it for transcendentals, on cache-sized tiles, to use the
/// eager kernels' wider AVX2/AVX-512 vectors). `x` and `out` have the same length.
pub fn unary_f32_into(op: crate::ops::UnaryOp, x: &[f32], out: &mut [f32]) {
    crate::kernels::elementwise::unary_f32_into(op, x, out)
}

/// The value of a scalar bool predicate (of a `cond`, or a `while` condition).
pub fn predicate(t: &Tensor) -> Result<bool, Error> {
    if t.device() != crate::device::Device::Cpu {
        // A device's predicate is read back to the host to choose the branch.
        return predicate(&t.to(crate::device::Device::Cpu)?);
    }
    match t.buffer() {
        crate::buffer::Buffer::Bool(v) if v.len() == 1 => Ok(v[0]),
        _ => Err(Error::Internal(format!("a predicate must be a scalar bool, got {}{}", t.dtype(), t.shape()))),
    }
}

/// The current value of a variable, as a `read_variable` node reads it.
pub fn read_variable(v: &Variable) -> Tensor {
    v.value_untracked()
}

/// Stores a new value into a variable, as an `assign_variable` node does (copied to
/// the variable's device when it lives elsewhere).
pub fn assign_variable(v: &Variable, value: Tensor) -> Result<(), Error> {
    v.store_concrete(value)
}

/// Prints like a `print` node (`tf_print!`).
pub fn print(template: &str, args: &[&Tensor]) {
    println!("{}", super::format_print(template, args));
}

/// Runs `graph` on the interpreter (for backends that hand a graph back).
pub fn interpret(graph: &Graph, inputs: &[Tensor], bound: &[Variable]) -> Result<Vec<Tensor>, Error> {
    super::interp::execute(graph, inputs.iter().cloned(), bound)
}

/// [`interpret`] on borrowed inputs and variables, as an [`Executable`] receives them.
pub fn interpret_refs(graph: &Graph, inputs: &[&Tensor], bound: &[&Variable]) -> Result<Outputs, Error> {
    super::interp::execute(graph, inputs.iter().map(|t| (*t).clone()), bound.iter().copied()).map(Outputs::from_vec)
}

/// The window geometry of a conv2d or pooling over an NHWC input, for device backends:
/// a conv's im2col matrix is `[n·out_h·out_w, kh·kw·c]` (the runtime's CPU layout) and
/// its HWIO filter `[kh·kw·c, o]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowGeometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride_h: usize,
    pub stride_w: usize,
    pub pad_top: usize,
    pub pad_left: usize,
    pub out_h: usize,
    pub out_w: usize,
}

/// The [`WindowGeometry`] of a 2-D pooling of `x` (the op's own checks).
pub fn pool2d_geometry(x: &crate::shape::Shape, p: &crate::ops::PoolParams) -> Result<WindowGeometry, Error> {
    Ok(geometry(crate::ops::nn::window("pool", x, p.ksize, p.strides, p.padding)?))
}

fn geometry(g: crate::ops::nn::Window) -> WindowGeometry {
    WindowGeometry {
        n: g.n,
        c: g.c,
        h: g.h.input,
        w: g.w.input,
        kh: g.h.kernel,
        kw: g.w.kernel,
        stride_h: g.h.stride,
        stride_w: g.w.stride,
        pad_top: g.h.pad_before,
        pad_left: g.w.pad_before,
        out_h: g.h.out,
        out_w: g.w.out,
    }
}

/// The [`WindowGeometry`] of `conv2d(x, f)` (the op's own checks: `Err` where it would
/// refuse these shapes).
pub fn conv2d_geometry(
    x: &crate::shape::Shape,
    f: &crate::shape::Shape,
    p: &crate::ops::Conv2dParams,
) -> Result<WindowGeometry, Error> {
    Ok(geometry(crate::ops::nn::conv_window(x, f, p)?))
}

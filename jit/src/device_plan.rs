//! Traced functions on a device: the CPU's passes and fusion plan, run step by step on
//! the device. The plan is the device-independent part (the same graph passes, the same
//! fused kernels); only kernel steps differ, and a [`Launcher`] runs them — on CUDA GPUs
//! one PTX launch per fused kernel (`cuda::fused`), on any other device backend the
//! kernel's expressions as single device ops ([`OpByOp`]). Every other step — matmuls,
//! reshapes, control flow, variables — runs the device's eager op on the optimised graph,
//! as the interpreter would.
//!
//! A kernel ending in a row sum or mean writes the summed expression out as one more
//! output, and the device's eager reduction of the last axis reduces it: the same
//! reduction an eager `sum`/`mean` runs on that device, so a traced function and its
//! eager run agree bit for bit there too.

use smallvec::SmallVec;
use tensorjit_runtime::device::Device;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ir::{Graph, ValueId, ValueType};
use tensorjit_runtime::ops::{Op, ReduceOp};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::{self as rt, Executable, Outputs};
use tensorjit_runtime::{DType, Tensor, Variable};

use crate::kernel::{Expr, Kernel, RowReduce};
use crate::plan::Plan;
use crate::steps::{internal, used_constants, KernelStep, KernelSteps, Layout, Table};

/// Runs fused kernels (without a reduction) on one device.
pub trait Launcher: Send + Sync {
    /// The executor's name (`ConcreteFunction::backend`).
    fn name(&self) -> &'static str;
    /// Runs `k` over `rows × cols` elements on `inputs` (tensors on the device, in the
    /// kernel's order, each of the length its access pattern reads); returns one tensor
    /// per kernel output, of the given `shapes` (each of `rows × cols` elements).
    fn launch(
        &self,
        k: &Kernel,
        inputs: &[&Tensor],
        rows: usize,
        cols: usize,
        shapes: &[&Shape],
    ) -> Result<Vec<Tensor>, Error>;
}

/// Runs `op` on `inputs` wherever they live, its output type inferred.
fn run_op(op: &Op, inputs: &[&Tensor]) -> Result<Tensor, Error> {
    let (dtype, shape) = op.infer(inputs).map_err(|e| Error::Function(e.to_string()))?;
    rt::run_kernel(op, inputs, &ValueType { dtype, shape })
}

/// A kernel's expressions as single ops on the device of its inputs (for device
/// backends without fused kernels of their own): each expression is the graph op it was
/// fused from, broadcasting as the kernel's access patterns do.
pub struct OpByOp {
    pub device: Device,
}

impl Launcher for OpByOp {
    fn name(&self) -> &'static str {
        "device ops"
    }

    fn launch(
        &self,
        k: &Kernel,
        inputs: &[&Tensor],
        _rows: usize,
        _cols: usize,
        shapes: &[&Shape],
    ) -> Result<Vec<Tensor>, Error> {
        let mut vals: Vec<Tensor> = Vec::with_capacity(k.exprs.len());
        for e in &k.exprs {
            let get = |i: usize| vals.get(i).ok_or_else(|| internal("a kernel expression reads a later one"));
            let t = match *e {
                Expr::Input(i) => (*inputs.get(i).ok_or_else(|| internal("a kernel input is missing"))?).clone(),
                Expr::Const(c) => Tensor::scalar(c),
                Expr::Unary(u, a) => run_op(&Op::Unary(u), &[get(a)?])?,
                Expr::Binary(b, x, y) | Expr::Cmp(b, x, y) => run_op(&Op::Binary(b), &[get(x)?, get(y)?])?,
                Expr::Select(m, a, b) => run_op(&Op::Select, &[get(m)?, get(a)?, get(b)?])?,
            };
            vals.push(t);
        }
        let mut out = Vec::with_capacity(k.outputs.len());
        for (&o, shape) in k.outputs.iter().zip(shapes) {
            let mut t = vals.get(o).cloned().ok_or_else(|| internal("a kernel output names no expression"))?;
            if t.shape() != *shape {
                t = run_op(&Op::BroadcastTo((*shape).clone()), &[&t])?;
            }
            // An output that is a constant was computed on the host.
            out.push(t.to(self.device)?);
        }
        Ok(out)
    }
}

/// A plan kernel as launched: a row reduction becomes one more full output.
struct Launch {
    kernel: Kernel,
    reduce: Option<RowReduce>,
}

impl Launch {
    fn new(k: &Kernel) -> Launch {
        let (kernel, reduce) = k.reduce_as_output();
        Launch { kernel, reduce }
    }
}

/// A concrete function traced on a device, compiled to its fusion plan.
pub struct DevicePlan {
    device: Device,
    plan: Plan,
    launches: Vec<Launch>,
    layout: Layout,
    /// The constants steps read, copied to the device once.
    constants: Vec<(ValueId, Tensor)>,
    graph_text: String,
    launcher: Box<dyn Launcher>,
}

impl DevicePlan {
    /// `g` is the optimised graph `plan` was made from.
    pub fn new(g: &Graph, plan: Plan, device: Device, launcher: Box<dyn Launcher>) -> Result<DevicePlan, Error> {
        let constants = used_constants(g, &plan)
            .into_iter()
            .map(|(v, t)| Ok((v, t.to(device)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        let layout = Layout::new(g, &plan, &constants);
        let launches = plan.kernels.iter().map(Launch::new).collect();
        Ok(DevicePlan { device, launches, layout, constants, graph_text: g.to_string(), plan, launcher })
    }
}

impl KernelSteps for DevicePlan {
    fn device(&self) -> Device {
        self.device
    }

    fn kernel(&self, step: KernelStep<'_>, vals: &mut Table<'_>) -> Result<(), Error> {
        let KernelStep { index, inputs, outputs, rows, cols, .. } = step;
        let l = self.launches.get(index).ok_or_else(|| internal("a kernel step names no kernel"))?;
        // Rank-0 host tensors (Rust scalars passed as arguments) are copied over.
        let mut ins: SmallVec<[Tensor; 8]> = SmallVec::new();
        for v in inputs {
            ins.push(vals.get(*v)?.to(self.device)?);
        }
        let refs: SmallVec<[&Tensor; 8]> = ins.iter().collect();
        let full = outputs.len() - usize::from(l.reduce.is_some());
        let summed = Shape::new(&[rows, cols]);
        let mut shapes: SmallVec<[&Shape; 4]> = outputs[..full].iter().map(|(_, s)| s).collect();
        if l.reduce.is_some() {
            shapes.push(&summed);
        }
        let mut outs = self.launcher.launch(&l.kernel, &refs, rows, cols, &shapes)?;
        if outs.len() != shapes.len() {
            return Err(internal("a launcher returned the wrong number of outputs"));
        }
        if let (Some(r), Some((v, shape))) = (l.reduce, outputs.last()) {
            let x = outs.pop().ok_or_else(|| internal("the summed output is missing"))?;
            let op = if r.mean { ReduceOp::Mean } else { ReduceOp::Sum };
            let reduced = run_op(&Op::Reduce { op, axes: [1].into_iter().collect(), keepdims: false }, &[&x])?;
            let t = rt::run_kernel(
                &Op::Reshape(shape.clone()),
                &[&reduced],
                &ValueType { dtype: DType::F32, shape: shape.clone() },
            )?;
            vals.set(*v, t);
        }
        for ((v, _), t) in outputs.iter().zip(outs) {
            vals.set(*v, t);
        }
        Ok(())
    }
}

impl Executable for DevicePlan {
    fn run(&self, inputs: &[&Tensor], bound: &[&Variable]) -> Result<Outputs, Error> {
        let vars = self.layout.vars(bound)?;
        self.layout.run(self, &self.plan, inputs, &self.constants, &vars)
    }

    fn describe(&self) -> String {
        format!("{}\non {} ({}):\n{}", self.graph_text, self.device, self.launcher.name(), self.plan)
    }

    fn name(&self) -> Option<&'static str> {
        Some(self.launcher.name())
    }
}

//! Traced functions on a device: the CPU's passes and fusion plan, run step by step on
//! the device. The plan is the device-independent part (the same graph passes, the same
//! fused kernels); only kernel steps differ, and a [`Launcher`] runs them — on CUDA GPUs
//! one PTX launch per fused kernel (`cuda::fused`), on any other device backend the
//! kernel's expressions as single device ops ([`OpByOp`]). A `while` loop whose regions
//! are fused kernels, whole-tensor reductions and scalar comparisons (an arena loop)
//! runs, on a launcher that takes loops, as one launch from the first trip to the last
//! ([`LoopModule`], `ptx::render_loop`): no host round trip per trip. Every other step —
//! matmuls, reshapes, other control flow, variables — runs the device's eager op on the
//! optimised graph, as the interpreter would.
//!
//! A kernel ending in a row sum or mean writes the summed expression out as one more
//! output, and the device's eager reduction of the last axis reduces it: the same
//! reduction an eager `sum`/`mean` runs on that device, so a traced function and its
//! eager run agree bit for bit there too.

use std::sync::{Arc, Mutex};

use smallvec::SmallVec;
use tensorjit_runtime::device::Device;
use tensorjit_runtime::error::Error;
use tensorjit_runtime::ir::{Graph, ValueId, ValueType};
use tensorjit_runtime::ops::{Op, ReduceOp};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::{self as rt, Executable, Outputs};
use tensorjit_runtime::{DType, Tensor, Variable};

use crate::arena_loop::ArenaLoop;
use crate::cuda::graph::Recorded;
use crate::kernel::{Expr, Kernel, RowReduce};
use crate::plan::{Plan, Step};
use crate::steps::{internal, used_constants, KernelStep, KernelSteps, Layout, Table};

/// Runs fused kernels (without a reduction) on one device.
pub trait Launcher: Send + Sync {
    /// The executor's name (`ConcreteFunction::backend`).
    fn name(&self) -> &'static str;

    /// The GPU whose stream the plan's work goes to, when it can be captured into a
    /// CUDA graph and replayed.
    fn gpu(&self) -> Option<Arc<crate::cuda::Gpu>> {
        None
    }

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

    /// Whether this launcher runs whole `while` loops as one launch
    /// ([`launch_loop`](Self::launch_loop)).
    fn runs_loops(&self) -> bool {
        false
    }

    /// Runs loop `l` in one launch from the loop variables' initial values `init`, its
    /// regions reading `outer` (tensors on the device, by the loop's outer index), for
    /// at most `max` trips; returns the final loop variables.
    fn launch_loop(
        &self,
        _l: &LoopModule,
        _init: &[&Tensor],
        _outer: &[&Tensor],
        _max: Option<u64>,
    ) -> Result<Vec<Tensor>, Error> {
        Err(internal("this launcher runs no loops"))
    }
}

/// A `while` loop rendered as one PTX entry (`ptx::render_loop`): the entry's
/// name (unique in the process: loaded modules are cached by it), its module text, the
/// arena it needs, and the loop variables' shapes.
pub struct LoopModule {
    pub name: String,
    pub ptx: String,
    pub arena_len: usize,
    pub shapes: Vec<Shape>,
}

impl LoopModule {
    /// The module of `l` (its kernel steps indexing `kernels`), if it qualifies.
    fn new(l: &ArenaLoop, kernels: &[Kernel]) -> Option<LoopModule> {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let name = format!("tensorjit_loop_{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let (ptx, arena_len) = crate::ptx::render_loop(l, kernels, &name)?;
        Some(LoopModule { name, ptx, arena_len, shapes: l.shapes.clone() })
    }
}

/// Every arena loop of `steps`, nested ones included.
fn arena_loops(steps: &[Step], out: &mut Vec<Arc<ArenaLoop>>) {
    for s in steps {
        match s {
            Step::While { cond, body, arena, .. } => {
                out.extend(arena.iter().cloned());
                arena_loops(&cond.steps, out);
                arena_loops(&body.steps, out);
            }
            Step::Cond { branches, .. } => branches.iter().for_each(|b| arena_loops(&b.steps, out)),
            _ => {}
        }
    }
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
    /// The `while` loops that run as one launch each (when the launcher runs loops).
    loops: Vec<(Arc<ArenaLoop>, LoopModule)>,
    /// Replaying the whole function as one CUDA graph (`cuda::graph`).
    graph: Mutex<Replay>,
}

/// Where a device plan stands with CUDA-graph replay.
enum Replay {
    /// Not tried yet: the first call runs step by step (kernels get loaded, cuBLAS its
    /// workspace); the second captures.
    Untried {
        called: bool,
    },
    Replaying(Box<Recorded>),
    /// Step by step for good, and why.
    Off(String),
}

/// Plans with fewer kernel and op steps run them directly: measured on an H100
/// (BENCHMARKS.md, "CUDA graphs"), a one-kernel function (W1, W2, W3) is slower replayed,
/// since its arguments and results are copied in and out, and a nine-step one (W4) faster.
const MIN_GRAPH_STEPS: usize = 4;

/// Arguments and variables larger than this (bytes, together) are not copied into a
/// graph's buffers: the copies would cost more than the launches saved (W3, W8 moved
/// 16–32 MiB per call and ran 1.3–2.4× slower replayed).
const MAX_GRAPH_COPY_BYTES: usize = 8 << 20;

/// `TENSORJIT_CUDA_GRAPHS=0` keeps device plans from being replayed as CUDA graphs (a
/// performance switch: results are the same bits either way).
fn graphs_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("TENSORJIT_CUDA_GRAPHS").map_or(true, |v| v != "0"))
}

/// `TENSORJIT_DEVICE_LOOPS=0` runs `while` loops step by step on the device, reading
/// each condition on the host, instead of as one launch (a performance switch: results
/// are the same bits either way).
fn device_loops_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("TENSORJIT_DEVICE_LOOPS").map_or(true, |v| v != "0"))
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
        let mut loops = Vec::new();
        if launcher.runs_loops() && device_loops_enabled() {
            let mut all = Vec::new();
            arena_loops(&plan.steps, &mut all);
            loops = all.into_iter().filter_map(|l| LoopModule::new(&l, &plan.kernels).map(|m| (l, m))).collect();
        }
        // A loop run as one launch is a device step like a kernel; others read their
        // conditions on the host.
        let on_device = |s: &Step| match s {
            Step::While { arena: Some(a), .. } => loops.iter().any(|(l, _)| Arc::ptr_eq(l, a)),
            _ => false,
        };
        let host_steps = plan.steps.iter().any(|s| {
            matches!(s, Step::Print { .. } | Step::Cond { .. }) || matches!(s, Step::While { .. }) && !on_device(s)
        });
        let launching =
            plan.steps.iter().filter(|s| matches!(s, Step::Kernel { .. } | Step::Op { .. }) || on_device(s)).count();
        // A draw that is not stateless takes a new key from the host on every call.
        let host_keys = plan.steps.iter().any(|s| matches!(s, Step::Op { op: Op::Random(p), .. } if !p.stateless));
        let replay = if launcher.gpu().is_none() {
            Replay::Off(String::new())
        } else if host_steps {
            Replay::Off("control flow or print reads values on the host".into())
        } else if host_keys {
            Replay::Off("a random draw takes a new key from the host on every call (stateless draws do not)".into())
        } else if launching < MIN_GRAPH_STEPS {
            Replay::Off(format!(
                "{launching} device step(s): launching them costs less than copying the arguments in and the \
                 results out of a graph"
            ))
        } else if !graphs_enabled() {
            Replay::Off("TENSORJIT_CUDA_GRAPHS=0".into())
        } else {
            Replay::Untried { called: false }
        };
        Ok(DevicePlan {
            device,
            launches,
            layout,
            constants,
            graph_text: g.to_string(),
            plan,
            launcher,
            loops,
            graph: Mutex::new(replay),
        })
    }

    /// The `while` loops this plan runs as one launch each.
    pub fn loop_modules(&self) -> impl Iterator<Item = &LoopModule> {
        self.loops.iter().map(|(_, m)| m)
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

    fn has_arena_loops(&self) -> bool {
        !self.loops.is_empty()
    }

    fn arena_loop(
        &self,
        arena: &ArenaLoop,
        inputs: &[&Tensor],
        vals: &Table<'_>,
        max: Option<u64>,
    ) -> Result<Option<Vec<Tensor>>, Error> {
        let Some((_, module)) = self.loops.iter().find(|(l, _)| std::ptr::eq(Arc::as_ptr(l), arena)) else {
            return Ok(None);
        };
        // Rank-0 host tensors (Rust scalars passed as arguments) are copied over.
        let init = inputs.iter().map(|t| t.to(self.device)).collect::<Result<SmallVec<[Tensor; 4]>, _>>()?;
        let mut outer: SmallVec<[Tensor; 8]> = SmallVec::new();
        for v in arena.outer_values() {
            outer.push(vals.get(*v)?.to(self.device)?);
        }
        let init: SmallVec<[&Tensor; 4]> = init.iter().collect();
        let outer: SmallVec<[&Tensor; 8]> = outer.iter().collect();
        self.launcher.launch_loop(module, &init, &outer, max).map(Some)
    }
}

impl Executable for DevicePlan {
    fn run(&self, inputs: &[&Tensor], bound: &[&Variable]) -> Result<Outputs, Error> {
        let vars = self.layout.vars(bound)?;
        let steps = |ins: &[&Tensor], vs: &[&Variable]| self.layout.run(self, &self.plan, ins, &self.constants, vs);
        let mut replay = self.graph.lock().unwrap_or_else(|p| p.into_inner());
        match &mut *replay {
            Replay::Replaying(r) => return r.replay(inputs, &vars),
            Replay::Untried { called: true } => {
                let gpu = self.launcher.gpu().ok_or_else(|| internal("a graph without a GPU"))?;
                let values = vars.iter().map(|v| v.shape().numel());
                let bytes = 4 * inputs.iter().map(|t| t.shape().numel()).chain(values).sum::<usize>();
                let captured = if bytes > MAX_GRAPH_COPY_BYTES {
                    Err(format!("{bytes} bytes of arguments and variables to copy in per call"))
                } else {
                    Recorded::capture(&gpu, inputs, &vars, &steps).map_err(|e| e.to_string())
                };
                match captured {
                    Ok(r) => {
                        let out = r.replay(inputs, &vars);
                        *replay = Replay::Replaying(Box::new(r));
                        return out;
                    }
                    Err(why) => *replay = Replay::Off(why),
                }
            }
            Replay::Untried { called } => *called = true,
            Replay::Off(_) => {}
        }
        drop(replay);
        steps(inputs, &vars)
    }

    fn describe(&self) -> String {
        let replay = match &*self.graph.lock().unwrap_or_else(|p| p.into_inner()) {
            _ if self.launcher.gpu().is_none() => String::new(),
            Replay::Untried { .. } => "; CUDA graph: captured on the second call".to_string(),
            Replay::Replaying(_) => "; CUDA graph: replayed (one launch per call)".to_string(),
            Replay::Off(why) => format!("; CUDA graph: off ({why})"),
        };
        let loops = match self.loops.len() {
            0 => String::new(),
            n => format!("; {n} while loop(s) run on the device, one launch each"),
        };
        format!("{}\non {} ({}{loops}{replay}):\n{}", self.graph_text, self.device, self.launcher.name(), self.plan)
    }

    fn name(&self) -> Option<&'static str> {
        Some(self.launcher.name())
    }
}

//! The executable of a compiled concrete function: runs its plan — compiled kernels for
//! fused elementwise runs, the runtime's eager kernels for everything else — over a
//! per-call value table, freeing each value after its last use.
//!
//! Kernels over many elements are split into fixed chunks run by rayon. An elementwise
//! kernel computes every element independently, so the split never changes a bit.

use smallvec::SmallVec;
use std::sync::Arc;
use tensorjit_runtime::error::Error;

use tensorjit_runtime::ir::{specialize, Graph, ValueId};
use tensorjit_runtime::shape::Shape;
use tensorjit_runtime::trace::backend::{self, Executable, Outputs};
use tensorjit_runtime::{Tensor, Variable};

use crate::arena_loop::ArenaLoop;
use crate::arena_plan::{ArenaPlan, Outer};
use crate::codegen::CompiledModule;
use crate::launch::{Kernels, Ptr};
use crate::plan::{Plan, Step};
use crate::steps::{internal, used_constants, KernelStep, KernelSteps, Layout, Table};

pub struct Compiled {
    plan: Plan,
    /// The optimised graph's text (for `describe`).
    graph_text: String,
    kernels: Kernels,
    /// Value slots, parameters, results and variables of a run.
    layout: Layout,
    /// Set when the plan is one kernel on parameters and constants.
    single: Option<Single>,
    /// Set when the plan runs over one arena (`arena_plan`), with where each of its
    /// outer values comes from.
    arena: Option<(ArenaPlan, Vec<Source>)>,
    constants: Vec<(ValueId, Tensor)>,
    /// Owns the machine code `fns` point into; dropped last.
    _module: CompiledModule,
}

impl Compiled {
    pub(crate) fn new(g: &Graph, plan: Plan, module: CompiledModule, kernels: Kernels) -> Compiled {
        let constants = used_constants(g, &plan);
        let layout = Layout::new(g, &plan, &constants);
        let single = Single::new(g, &plan, &constants);
        let arena = if single.is_some() { None } else { ArenaPlan::new(g, &plan, &kernels) }.and_then(|a| {
            let sources = a
                .outer
                .iter()
                .map(|o| match *o {
                    Outer::Value(v) => source(g, &constants, v),
                    Outer::Var(r) => Some(Source::Var(r)),
                })
                .collect::<Option<Vec<_>>>()?;
            Some((a, sources))
        });
        Compiled { single, arena, layout, graph_text: g.to_string(), plan, kernels, constants, _module: module }
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

impl Compiled {
    /// Runs compiled kernel `index` over `rows × cols` on `inputs`, returning its
    /// outputs (fresh buffers, every element written by the kernel).
    fn kernel(
        &self,
        index: usize,
        inputs: &[&Tensor],
        outputs: &[(ValueId, Shape)],
        rows: usize,
        cols: usize,
    ) -> Result<SmallVec<[Tensor; 2]>, Error> {
        let mut ptrs: SmallVec<[Ptr; 16]> = SmallVec::new();
        for t in inputs {
            ptrs.push(Ptr(t.as_slice::<f32>()?.as_ptr() as *mut f32));
        }
        self.launch(index, ptrs, outputs, rows, cols, None)
    }

    /// Runs kernel `index` with its input pointers `ptrs`; output 0 goes into `over`
    /// when given (the buffer of a dying input, whose pointer is among `ptrs`: the
    /// kernel was checked to allow it), the others into fresh buffers.
    fn launch(
        &self,
        index: usize,
        mut ptrs: SmallVec<[Ptr; 16]>,
        outputs: &[(ValueId, Shape)],
        rows: usize,
        cols: usize,
        over: Option<Vec<f32>>,
    ) -> Result<SmallVec<[Tensor; 2]>, Error> {
        let n = rows * cols;
        let mut bufs: SmallVec<[Vec<f32>; 2]> = SmallVec::new();
        if over.as_ref().is_some_and(|b| b.len() != n) {
            return Err(internal("an in-place output buffer of the wrong size"));
        }
        let mut over = over;
        for (_, shape) in outputs {
            // Full outputs hold n values; a row reduction's, one per row.
            let mut b = over.take().unwrap_or_else(|| backend::alloc_f32_for_overwrite(shape.numel()));
            ptrs.push(Ptr(b.as_mut_ptr()));
            bufs.push(b);
        }
        // SAFETY: inputs were checked against the access patterns when the plan was
        // made (shapes are static); outputs have room for n elements; an output over
        // an input is one the kernel allows (`Kernels::may_alias`).
        unsafe { self.kernels.launch(index, &ptrs, rows, cols) };
        let mut out = SmallVec::new();
        for ((_, shape), mut b) in outputs.iter().zip(bufs) {
            // SAFETY: the kernel wrote every element of every output.
            unsafe { b.set_len(shape.numel()) };
            out.push(Tensor::from_vec(b, shape.clone())?);
        }
        Ok(out)
    }

    /// The whole function as one kernel on its parameters and constants (the common
    /// elementwise function): run without a value table.
    fn run_single(&self, single: &Single, inputs: &[&Tensor]) -> Result<Outputs, Error> {
        let Step::Kernel { index, outputs, rows, cols, .. } = &self.plan.steps[0] else {
            return Err(internal("a single-kernel plan without its kernel"));
        };
        let mut ins: SmallVec<[&Tensor; 8]> = SmallVec::new();
        for src in &single.inputs {
            ins.push(match *src {
                Source::Param(i) => inputs.get(i).copied().ok_or_else(|| internal("an input is missing"))?,
                Source::Const(k) => &self.constants[k].1,
                Source::Var(_) => return Err(internal("a single-kernel plan reads no variable")),
            });
        }
        let outs = self.kernel(*index, &ins, outputs, *rows, *cols)?;
        if single.results.iter().enumerate().all(|(i, &j)| i == j) {
            return Ok(outs);
        }
        let mut outs: SmallVec<[Option<Tensor>; 2]> = outs.into_iter().map(Some).collect();
        let mut out = Outputs::new();
        for &j in &single.results {
            out.push(outs[j].take().ok_or_else(|| internal("a result is returned twice"))?);
        }
        Ok(out)
    }
}

/// Where a parameter or constant `v` is found at run time.
fn source(g: &Graph, constants: &[(ValueId, Tensor)], v: ValueId) -> Option<Source> {
    match g.params.iter().position(|p| *p == v) {
        Some(i) => Some(Source::Param(i)),
        None => constants.iter().position(|(c, _)| *c == v).map(Source::Const),
    }
}

/// Where a single-kernel plan's input or an arena plan's outer value comes from.
#[derive(Clone, Copy)]
enum Source {
    Param(usize),
    Const(usize),
    /// Variable (by resource) read when the call starts (arena plans only).
    Var(usize),
}

/// A plan that is one kernel reading parameters and constants, whose outputs are the
/// results (each once).
struct Single {
    inputs: Vec<Source>,
    /// For each result, which kernel output it is.
    results: Vec<usize>,
}

impl Single {
    fn new(g: &Graph, plan: &Plan, constants: &[(ValueId, Tensor)]) -> Option<Single> {
        let [Step::Kernel { inputs, outputs, .. }] = plan.steps.as_slice() else { return None };
        let inputs = inputs.iter().map(|v| source(g, constants, *v)).collect::<Option<Vec<_>>>()?;
        let results = g.results.iter().map(|r| outputs.iter().position(|(v, _)| v == r)).collect::<Option<Vec<_>>>()?;
        let distinct = results.iter().enumerate().all(|(i, r)| !results[..i].contains(r));
        (distinct && results.len() == outputs.len()).then_some(Single { inputs, results })
    }
}

impl KernelSteps for Compiled {
    fn kernel(&self, step: KernelStep<'_>, vals: &mut Table<'_>) -> Result<(), Error> {
        let KernelStep { index, inputs, outputs, rows, cols, donor } = step;
        // A dying input the kernel may overwrite, when nothing else holds
        // its buffer: taken out of the table (it is freed here anyway).
        let over = match donor {
            Some(d) if self.kernels.may_alias(index, d) => {
                let v = inputs[d];
                match backend::take_f32_buffer(vals.take(v)?) {
                    Ok(b) => Some((d, b)),
                    Err(t) => {
                        vals.set(v, t);
                        None
                    }
                }
            }
            _ => None,
        };
        // Inputs are borrowed in place: the table is not written until the
        // kernel has run.
        let mut ptrs: SmallVec<[Ptr; 16]> = SmallVec::new();
        for (i, v) in inputs.iter().enumerate() {
            ptrs.push(match &over {
                Some((d, b)) if *d == i => Ptr(b.as_ptr() as *mut f32),
                _ => Ptr(vals.get(*v)?.as_slice::<f32>()?.as_ptr() as *mut f32),
            });
        }
        let outs = self.launch(index, ptrs, outputs, rows, cols, over.map(|(_, b)| b))?;
        for ((v, _), t) in outputs.iter().zip(outs) {
            vals.set(*v, t);
        }
        Ok(())
    }

    fn has_arena_loops(&self) -> bool {
        true
    }

    fn arena_loop(
        &self,
        arena: &ArenaLoop,
        inputs: &[&Tensor],
        vals: &Table<'_>,
        max: Option<u64>,
    ) -> Result<Option<Vec<Tensor>>, Error> {
        arena.run(&self.kernels, inputs, vals, max).map(Some)
    }
}

impl Executable for Compiled {
    fn describe(&self) -> String {
        match &self.arena {
            Some((a, _)) => format!("{}\n{}{a}\n", self.graph_text, self.plan),
            None => format!("{}\n{}", self.graph_text, self.plan),
        }
    }

    fn run(&self, inputs: &[&Tensor], bound: &[&Variable]) -> Result<Outputs, Error> {
        if let Some(single) = &self.single {
            return self.run_single(single, inputs);
        }
        let vars = self.layout.vars(bound)?;
        if let Some((a, sources)) = &self.arena {
            // One variable bound to two resources sees the other's assignment only on
            // the general executor (the arena reads variables when the call starts).
            let aliased = a.assigns && vars.iter().enumerate().any(|(i, v)| vars[..i].iter().any(|w| w.id() == v.id()));
            if !aliased {
                let mut read: SmallVec<[Tensor; 8]> = SmallVec::new();
                for src in sources {
                    if let Source::Var(r) = *src {
                        let v = vars.get(r).ok_or_else(|| internal("a variable is missing"))?;
                        read.push(backend::read_variable(v));
                    }
                }
                let mut outer: SmallVec<[&Tensor; 8]> = SmallVec::new();
                let mut next_read = read.iter();
                for src in sources {
                    outer.push(match *src {
                        Source::Param(i) => inputs.get(i).copied().ok_or_else(|| internal("an input is missing"))?,
                        Source::Const(k) => &self.constants[k].1,
                        Source::Var(_) => next_read.next().ok_or_else(|| internal("a variable read is missing"))?,
                    });
                }
                return a.run(&self.kernels, &outer, &vars);
            }
        }
        self.layout.run(self, &self.plan, inputs, &self.constants, &vars)
    }
}

/// Specialisations kept per concrete function (oldest dropped beyond).
const MAX_SPECIALIZATIONS: usize = 32;

/// A trace with dims unknown until called: compiled once per set of input shapes (the
/// interpreter runs shapes it cannot specialise, e.g. a loop variable that grows).
pub struct Specializing {
    graph: Graph,
    cache: std::sync::RwLock<Vec<Specialization>>,
}

/// Input shapes → their compiled graph (`None`: the interpreter runs them).
type Specialization = (Vec<Shape>, Option<Arc<Compiled>>);

impl Specializing {
    pub fn new(graph: Graph) -> Specializing {
        Specializing { graph, cache: std::sync::RwLock::new(Vec::new()) }
    }

    fn compiled(&self, inputs: &[&Tensor]) -> Result<Option<Arc<Compiled>>, Error> {
        let same = |k: &[Shape]| k.len() == inputs.len() && k.iter().zip(inputs).all(|(s, t)| s == t.shape());
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        if let Some((_, c)) = cache.iter().find(|(k, _)| same(k)) {
            return Ok(c.clone());
        }
        drop(cache);
        let shapes: Vec<Shape> = inputs.iter().map(|t| t.shape().clone()).collect();
        let c = match specialize(&self.graph, &shapes) {
            Ok(g) => crate::compile_concrete(&g)?.map(Arc::new),
            Err(_) => None,
        };
        let mut cache = self.cache.write().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= MAX_SPECIALIZATIONS {
            cache.remove(0);
        }
        cache.push((shapes, c.clone()));
        Ok(c)
    }
}

impl Executable for Specializing {
    fn run(&self, inputs: &[&Tensor], bound: &[&Variable]) -> Result<Outputs, Error> {
        match self.compiled(inputs)? {
            Some(c) => c.run(inputs, bound),
            None => backend::interpret_refs(&self.graph, inputs, bound),
        }
    }

    fn describe(&self) -> String {
        let cache = self.cache.read().unwrap_or_else(|p| p.into_inner());
        let mut s = format!("specialised per input shapes ({} so far)\n", cache.len());
        for (k, c) in cache.iter() {
            let shapes: Vec<String> = k.iter().map(|s| s.to_string()).collect();
            let what = c.as_ref().map_or("interpreter".to_string(), |c| c.describe());
            s.push_str(&format!("-- inputs {}:\n{what}\n", shapes.join(", ")));
        }
        s
    }
}

//! Keras' functional API: models as graphs of layers, with several inputs, shared
//! layers, skip connections and merges.
//!
//! [`Input`] makes a [`SymbolicTensor`], a placeholder with a shape and no data;
//! [`SymbolicTensor::apply`] calls a layer on it (Keras' `Dense(8)(x)`), and
//! [`SymbolicTensor::merge`] a merge layer on several (`Add()([a, b])`, also `&a + &b`).
//! [`Functional::new`] takes the inputs and the output (or [`Functional::with_outputs`]
//! several), checks that the outputs are made from those inputs only, and is a model: a [`Module`] (a layer of other models too)
//! with `compile`, `fit`, `evaluate`, `predict`, `summary` and weight files. Its layers
//! create their weights on the first call or at `compile`'s first step, under the model's
//! name (`functional/dense/kernel`), so `on_device` can still move the model first.
//!
//! ```
//! use tensorjit_nn::functional::{Functional, Input};
//! use tensorjit_nn::prelude::*;
//! use tensorjit_runtime::{random, DType};
//!
//! let (a, b) = (Input::new(&[4]), Input::new(&[4]));
//! let shared = Dense::new(8).activation(Activation::Relu); // one layer, used twice
//! let h = &a.apply(shared.clone()) + &b.apply(shared);
//! let model = Functional::new(&[&a, &b], &h.apply(Dense::new(1)));
//! let x = random::normal([3, 4], 0.0, 1.0, DType::F32, Some(1));
//! let y = model.call_inputs(&[x.clone(), x], false);
//! assert_eq!(y.dims(), &[3, 1]);
//! assert_eq!(model.trainable_variables().len(), 4); // the shared Dense counts once
//! ```

use std::collections::{HashMap, HashSet};
use std::panic::Location;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use tensorjit_runtime::{DType, Device, Tensor, Variable};

use crate::activity::ActivityLosses;
use crate::error::{raise, Error, Result};
use crate::layers::merge;
use crate::model::Compiled;
use crate::module::{build_device, building_on, fits_spec, fmt_spec, Module, ModuleRef, ShapeSpec};
use crate::naming;

/// A node of the graph: an input or a layer applied to earlier nodes.
struct Node {
    op: NodeOp,
    /// The output shape, batch first.
    spec: ShapeSpec,
    /// Where the user made it (for errors about the graph).
    at: &'static Location<'static>,
}

enum NodeOp {
    /// A model input; `dtype` (when set) is checked against what the model is given.
    Input {
        name: String,
        dtype: Option<DType>,
    },
    Layer {
        layer: ModuleRef,
        inputs: Vec<SymbolicTensor>,
    },
}

/// A placeholder for a tensor in a functional model: a shape (batch first, `None` where
/// unknown) and the layers that make it, no data (Keras' `KerasTensor`).
#[derive(Clone)]
pub struct SymbolicTensor {
    node: Arc<Node>,
}

/// Makes the inputs of a functional model (Keras' `keras.Input`): its constructors
/// return the [`SymbolicTensor`] a model starts from.
pub struct Input;

#[allow(clippy::new_ret_no_self)] // Keras' spelling: `Input(shape=…)` is a tensor.
impl Input {
    /// An input whose examples have shape `shape` (the batch axis is not part of it):
    /// `Input::new(&[64])` is Keras' `Input(shape=(64,))`.
    #[track_caller]
    pub fn new(shape: &[usize]) -> SymbolicTensor {
        Input::with_dims(&shape.iter().map(|&d| Some(d)).collect::<Vec<_>>())
    }

    /// An input with unknown axes (`None`): `Input::with_dims(&[None, Some(16)])` is
    /// Keras' `Input(shape=(None, 16))`, sequences of any length.
    #[track_caller]
    pub fn with_dims(dims: &[Option<usize>]) -> SymbolicTensor {
        Input::named(&naming::unique("input_layer"), dims)
    }

    /// [`with_dims`](Self::with_dims) with its own name (shown in errors).
    #[track_caller]
    pub fn named(name: &str, dims: &[Option<usize>]) -> SymbolicTensor {
        let spec = std::iter::once(None).chain(dims.iter().copied()).collect();
        let op = NodeOp::Input { name: name.to_string(), dtype: None };
        SymbolicTensor { node: Arc::new(Node { op, spec, at: Location::caller() }) }
    }
}

impl SymbolicTensor {
    /// This input with a dtype the model checks (Keras' `Input(shape, dtype=…)`):
    /// `Input::new(&[20]).with_dtype(DType::I64)` for token ids. Calling the model with
    /// another dtype is an error naming the input. Panics at the caller's line when
    /// `self` is not an [`Input`] (make the input typed before applying layers to it).
    #[track_caller]
    pub fn with_dtype(&self, dtype: DType) -> SymbolicTensor {
        let NodeOp::Input { name, .. } = &self.node.op else {
            raise(&self.describe(), "only an Input takes a dtype; give it to the Input the graph starts from")
        };
        let op = NodeOp::Input { name: name.clone(), dtype: Some(dtype) };
        SymbolicTensor { node: Arc::new(Node { op, spec: self.node.spec.clone(), at: Location::caller() }) }
    }

    /// The dtype an input was given with [`with_dtype`](Self::with_dtype) (`None`: any).
    pub fn dtype(&self) -> Option<DType> {
        match &self.node.op {
            NodeOp::Input { dtype, .. } => *dtype,
            NodeOp::Layer { .. } => None,
        }
    }

    /// The shape, batch first (`[None, 64]`).
    pub fn shape(&self) -> &[Option<usize>] {
        &self.node.spec
    }

    /// `layer` called on this tensor (Keras' `layer(x)`). A layer applied twice, or a
    /// clone of it, shares its weights. Merge layers take several inputs: use
    /// [`merge`](Self::merge).
    #[track_caller]
    pub fn apply(&self, layer: impl Module + 'static) -> SymbolicTensor {
        self.apply_ref(&layer.boxed())
    }

    /// [`apply`](Self::apply) with a layer held as a [`ModuleRef`].
    #[track_caller]
    pub fn apply_ref(&self, layer: &ModuleRef) -> SymbolicTensor {
        SymbolicTensor::merge_ref(layer, &[self])
    }

    /// A layer of several inputs called on `inputs` (Keras' `Concatenate()([a, b])`).
    #[track_caller]
    pub fn merge(layer: impl Module + 'static, inputs: &[&SymbolicTensor]) -> SymbolicTensor {
        SymbolicTensor::merge_ref(&layer.boxed(), inputs)
    }

    /// [`merge`](Self::merge) with a layer held as a [`ModuleRef`].
    #[track_caller]
    pub fn merge_ref(layer: &ModuleRef, inputs: &[&SymbolicTensor]) -> SymbolicTensor {
        let specs: Vec<ShapeSpec> = inputs.iter().map(|t| t.node.spec.clone()).collect();
        if let Some(n) = layer.input_count() {
            if n != inputs.len() {
                raise(
                    &format!("{} '{}'", layer.kind(), layer.name()),
                    format!("takes {n} input(s), got {}", inputs.len()),
                )
            }
        }
        let spec = layer.output_shape_inputs(&specs);
        let op = NodeOp::Layer { layer: layer.clone(), inputs: inputs.iter().map(|&t| t.clone()).collect() };
        SymbolicTensor { node: Arc::new(Node { op, spec, at: Location::caller() }) }
    }

    fn id(&self) -> *const Node {
        Arc::as_ptr(&self.node)
    }

    fn describe(&self) -> String {
        match &self.node.op {
            NodeOp::Input { name, .. } => format!("Input '{name}' {}", fmt_spec(&self.node.spec)),
            NodeOp::Layer { layer, .. } => format!("the output of {} '{}'", layer.kind(), layer.name()),
        }
    }
}

macro_rules! symbolic_operators {
    ($($trait:ident $method:ident => $merge:ident),*) => {$(
        /// The merge layer of the same name on two symbolic tensors.
        impl std::ops::$trait for &SymbolicTensor {
            type Output = SymbolicTensor;
            #[track_caller]
            fn $method(self, rhs: &SymbolicTensor) -> SymbolicTensor {
                SymbolicTensor::merge(merge::$merge::new(), &[self, rhs])
            }
        }
    )*};
}

symbolic_operators!(Add add => Add, Sub sub => Subtract, Mul mul => Multiply);

/// The nodes `outputs` depend on, each after its inputs.
fn topological(outputs: &[&SymbolicTensor]) -> Vec<SymbolicTensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    // Iterative post-order: deep graphs must not overflow the stack.
    let mut stack: Vec<(SymbolicTensor, bool)> = outputs.iter().rev().map(|&t| (t.clone(), false)).collect();
    while let Some((t, expanded)) = stack.pop() {
        if expanded {
            order.push(t);
            continue;
        }
        if !seen.insert(t.id()) {
            continue;
        }
        stack.push((t.clone(), true));
        if let NodeOp::Layer { inputs, .. } = &t.node.op {
            stack.extend(inputs.iter().rev().filter(|i| !seen.contains(&i.id())).map(|i| (i.clone(), false)));
        }
    }
    order
}

/// A model made of layers applied to [`Input`]s (Keras' functional `Model`). Cloning
/// shares the model.
#[derive(Clone)]
pub struct Functional {
    pub(crate) inner: Arc<FunInner>,
}

pub(crate) struct FunInner {
    name: String,
    inputs: Vec<SymbolicTensor>,
    outputs: Vec<SymbolicTensor>,
    /// Every node the outputs need, each after its inputs.
    order: Vec<SymbolicTensor>,
    built: OnceLock<()>,
    pub(crate) compiled: Mutex<Option<Arc<Compiled>>>,
    device: Mutex<Option<Device>>,
    warned_mask: AtomicBool,
    /// The penalties on layers' outputs of the latest call.
    activity: ActivityLosses,
}

impl Functional {
    /// The model from `inputs` to `output`, named automatically (`functional`,
    /// `functional_1`). Panics at the caller's line when `output` needs an input that is
    /// not in `inputs`, or when an entry of `inputs` is not an [`Input`].
    #[track_caller]
    pub fn new(inputs: &[&SymbolicTensor], output: &SymbolicTensor) -> Functional {
        Functional::named(&naming::unique("functional"), inputs, output)
    }

    /// A model with its own name.
    #[track_caller]
    pub fn named(name: &str, inputs: &[&SymbolicTensor], output: &SymbolicTensor) -> Functional {
        Functional::named_with_outputs(name, inputs, &[output])
    }

    /// A model of several outputs (Keras' `Model(inputs, [a, b])`): heads of a
    /// multi-task model, each with its own loss at
    /// [`compile_outputs`](Self::compile_outputs), its targets in `fit`, its logs
    /// (`<layer>_loss`, `<layer>_<metric>`) and its predictions from
    /// [`predict_outputs`](Self::predict_outputs). Such a model is not a layer of
    /// another (a layer has one output).
    #[track_caller]
    pub fn with_outputs(inputs: &[&SymbolicTensor], outputs: &[&SymbolicTensor]) -> Functional {
        Functional::named_with_outputs(&naming::unique("functional"), inputs, outputs)
    }

    /// [`with_outputs`](Self::with_outputs) with its own name.
    #[track_caller]
    pub fn named_with_outputs(name: &str, inputs: &[&SymbolicTensor], outputs: &[&SymbolicTensor]) -> Functional {
        let what = format!("Functional '{name}'");
        if inputs.is_empty() || outputs.is_empty() {
            raise(&what, "needs at least one Input and one output")
        }
        let mut ids = HashSet::new();
        for t in inputs {
            if !matches!(t.node.op, NodeOp::Input { .. }) {
                raise(&what, format!("its inputs must be made by Input::new, got {}", t.describe()))
            }
            if !ids.insert(t.id()) {
                raise(&what, format!("{} is given twice", t.describe()))
            }
        }
        let order = topological(outputs);
        for t in &order {
            if matches!(t.node.op, NodeOp::Input { .. }) && !ids.contains(&t.id()) {
                raise(
                    &what,
                    format!(
                        "the outputs need {} (made at {}), which is not among the model's inputs (graph disconnected)",
                        t.describe(),
                        t.node.at
                    ),
                )
            }
        }
        let used: HashSet<_> = order.iter().map(SymbolicTensor::id).collect();
        for t in inputs.iter().filter(|t| !used.contains(&t.id())) {
            tracing::warn!("{what}: no output depends on {}", t.describe());
        }
        Functional {
            inner: Arc::new(FunInner {
                name: name.to_string(),
                inputs: inputs.iter().map(|&t| t.clone()).collect(),
                outputs: outputs.iter().map(|&t| t.clone()).collect(),
                order,
                built: OnceLock::new(),
                compiled: Mutex::new(None),
                device: Mutex::new(None),
                warned_mask: AtomicBool::new(false),
                activity: ActivityLosses::default(),
            }),
        }
    }

    /// The shapes of the inputs, batch first.
    pub fn input_shapes(&self) -> Vec<ShapeSpec> {
        self.inner.inputs.iter().map(|t| t.node.spec.clone()).collect()
    }

    /// The shapes of the outputs, batch first.
    pub fn output_shapes(&self) -> Vec<ShapeSpec> {
        self.inner.outputs.iter().map(|t| t.node.spec.clone()).collect()
    }

    /// The names of the outputs: the layers (or inputs) that make them, as Keras names
    /// the outputs' losses and metrics in the logs (`head_loss`).
    pub fn output_names(&self) -> Vec<String> {
        self.inner.outputs.iter().map(node_label).collect()
    }

    /// The only output's shape, or the error of a layer asked for one of several.
    #[track_caller]
    fn single_output(&self) -> &SymbolicTensor {
        match self.inner.outputs.as_slice() {
            [one] => one,
            many => raise(
                &format!("Functional '{}'", self.inner.name),
                format!(
                    "has {} outputs, and a layer has one: call call_outputs, or train it with compile_outputs",
                    many.len()
                ),
            ),
        }
    }

    /// Puts the model on `device` before it is built (see
    /// [`Sequential::on_device`](crate::layers::Sequential::on_device)).
    pub fn on_device(self, device: Device) -> Result<Self> {
        if self.is_built() {
            return Err(Error::invalid(
                "on_device",
                format!("Functional '{}' is built: its weights are on {}", self.inner.name, self.device()),
            ));
        }
        tensorjit_jit::install();
        Tensor::scalar(0.0f32).to(device)?;
        *self.inner.device.lock().unwrap_or_else(|p| p.into_inner()) = Some(device);
        Ok(self)
    }

    /// The device the model's weights live on (the CPU unless `on_device` said).
    pub fn device(&self) -> Device {
        self.inner.device.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(build_device)
    }

    /// Builds the model now (its weights exist and `summary` shows parameter counts).
    pub fn built(self) -> Self {
        self.build("", &[]);
        self
    }

    /// The output for one tensor per input, in the order of `new`'s `inputs`; builds
    /// the model on its first call.
    #[track_caller]
    pub fn call_inputs(&self, xs: &[Tensor], training: bool) -> Tensor {
        let masks = vec![None; xs.len()];
        self.forward_inputs(xs, &masks, training).0
    }

    /// Every output (and its mask) for one tensor per input; builds the model on its
    /// first call.
    #[track_caller]
    pub fn call_outputs(
        &self,
        xs: &[Tensor],
        masks: &[Option<Tensor>],
        training: bool,
    ) -> Vec<(Tensor, Option<Tensor>)> {
        if !self.is_built() {
            self.build("", &[]);
        }
        self.run(xs, masks, training)
    }

    /// Keras' summary table: each layer once (in the order data reaches it), its output
    /// shape and parameter count, and the inputs it is connected to.
    pub fn summary(&self) -> String {
        let rows = self.inner.order.iter().map(|t| {
            let (label, params, from) = match &t.node.op {
                NodeOp::Input { name, .. } => (format!("{name} (InputLayer)"), 0, Vec::new()),
                NodeOp::Layer { layer, inputs } => (
                    format!("{} ({})", layer.name(), layer.kind()),
                    crate::summary::count(&layer.variables()),
                    inputs.iter().map(node_label).collect(),
                ),
            };
            crate::summary::Row { label, shape: fmt_spec(&t.node.spec), params, connected: from }
        });
        crate::summary::render_rows(self, &rows.collect::<Vec<_>>())
    }

    /// The outputs for `xs`, running the graph once.
    #[track_caller]
    fn run(&self, xs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> Vec<(Tensor, Option<Tensor>)> {
        let what = format!("Functional '{}'", self.inner.name);
        if xs.len() != self.inner.inputs.len() || masks.len() != xs.len() {
            raise(
                &what,
                format!("takes {} input(s), got {} (and {} mask(s))", self.inner.inputs.len(), xs.len(), masks.len()),
            )
        }
        self.inner.activity.clear();
        let mut values: HashMap<*const Node, (Tensor, Option<Tensor>)> = HashMap::new();
        for (i, (t, (x, m))) in self.inner.inputs.iter().zip(xs.iter().zip(masks)).enumerate() {
            if let Err(msg) = check_input(i, t, x) {
                raise(&what, msg)
            }
            values.insert(t.id(), (x.clone(), m.clone()));
        }
        for t in &self.inner.order {
            let NodeOp::Layer { layer, inputs } = &t.node.op else { continue };
            let (args, arg_masks): (Vec<Tensor>, Vec<Option<Tensor>>) =
                inputs.iter().map(|i| values[&i.id()].clone()).unzip();
            if arg_masks.iter().any(Option::is_some)
                && !layer.supports_masking()
                && !self.inner.warned_mask.swap(true, Ordering::Relaxed)
            {
                tracing::warn!(
                    "{} '{}' in '{}' does not support masking: the mask of padded steps ends there",
                    layer.kind(),
                    layer.name(),
                    self.inner.name
                );
            }
            let out = layer.forward_inputs(&args, &arg_masks, training);
            self.inner.activity.record(layer.as_ref(), &out.0);
            values.insert(t.id(), out);
        }
        // Every output is in `order`, so each has a value.
        self.inner.outputs.iter().map(|t| values[&t.id()].clone()).collect()
    }
}

/// `dense (Dense)`-style name of the layer (or input) that makes `t`, for the summary.
fn node_label(t: &SymbolicTensor) -> String {
    match &t.node.op {
        NodeOp::Input { name, .. } => name.clone(),
        NodeOp::Layer { layer, .. } => layer.name().to_string(),
    }
}

/// Refuses an input whose dtype (when the `Input` has one), rank or known axes differ
/// from its `Input`'s (Keras' input spec check), naming the input and both types.
fn check_input(i: usize, input: &SymbolicTensor, x: &Tensor) -> std::result::Result<(), String> {
    if let Some(want) = input.dtype().filter(|&d| d != x.dtype()) {
        return Err(format!("input {i} ({}) takes {want} values, got {}", input.describe(), x.type_string()));
    }
    let spec = &input.node.spec;
    if !fits_spec(spec, x.dims()) {
        return Err(format!(
            "input {i} is incompatible with the model: expected shape {}, got {}",
            fmt_spec(spec),
            x.type_string()
        ));
    }
    Ok(())
}

impl Module for Functional {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &'static str {
        "Functional"
    }

    fn is_built(&self) -> bool {
        self.inner.built.get().is_some()
    }

    /// The layers' weight penalties, and the penalties on layers' outputs of the latest
    /// call ([activity regularizers](Module::output_regularizer)).
    fn losses(&self) -> Vec<Tensor> {
        let weights = self.layers().iter().flat_map(|l| l.losses()).collect::<Vec<_>>();
        weights.into_iter().chain(self.inner.activity.current()).collect()
    }

    /// Builds every layer for the shapes its inputs have in the graph (`input` is not
    /// needed: the `Input`s give the shapes).
    fn build(&self, scope: &str, _input: &[Option<usize>]) {
        self.inner.built.get_or_init(|| {
            let scope = if scope.is_empty() { self.inner.name.clone() } else { format!("{scope}/{}", self.inner.name) };
            building_on(self.device(), || {
                for t in &self.inner.order {
                    if let NodeOp::Layer { layer, inputs } = &t.node.op {
                        let specs: Vec<ShapeSpec> = inputs.iter().map(|i| i.node.spec.clone()).collect();
                        layer.build_inputs(&scope, &specs);
                    }
                }
            });
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        self.forward_inputs(std::slice::from_ref(x), &[None], training).0
    }

    #[track_caller]
    fn output_shape(&self, _input: &[Option<usize>]) -> ShapeSpec {
        self.single_output().node.spec.clone()
    }

    /// Every layer's variables once each, in the order data reaches the layers (a layer
    /// used twice, or its clone, shares them).
    fn variables(&self) -> Vec<Variable> {
        let mut seen = HashSet::new();
        self.inner
            .order
            .iter()
            .filter_map(|t| match &t.node.op {
                NodeOp::Layer { layer, .. } => Some(layer.variables()),
                NodeOp::Input { .. } => None,
            })
            .flatten()
            .filter(|v| seen.insert(v.id()))
            .collect()
    }

    /// Each layer once (a shared layer, or clones of it, once), in the order data
    /// reaches it.
    fn layers(&self) -> Vec<ModuleRef> {
        let mut seen = HashSet::new();
        self.inner
            .order
            .iter()
            .filter_map(|t| match &t.node.op {
                NodeOp::Layer { layer, .. } if seen.insert(layer.name().to_string()) => Some(layer.clone()),
                _ => None,
            })
            .collect()
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, x: &Tensor, mask: Option<&Tensor>) -> Option<Tensor> {
        self.forward_and_mask(x, mask, false).1
    }

    #[track_caller]
    fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> Tensor {
        self.forward_and_mask(x, mask, training).0
    }

    #[track_caller]
    fn forward_and_mask(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> (Tensor, Option<Tensor>) {
        self.forward_inputs(std::slice::from_ref(x), &[mask.cloned()], training)
    }

    fn input_count(&self) -> Option<usize> {
        Some(self.inner.inputs.len())
    }

    fn check_inputs(&self, xs: &[Tensor]) -> std::result::Result<(), String> {
        let name = &self.inner.name;
        for (i, (t, x)) in self.inner.inputs.iter().zip(xs).enumerate() {
            check_input(i, t, x).map_err(|msg| format!("Functional '{name}': {msg}"))?;
        }
        Ok(())
    }

    fn build_inputs(&self, scope: &str, _inputs: &[ShapeSpec]) {
        self.build(scope, &[]);
    }

    #[track_caller]
    fn output_shape_inputs(&self, _inputs: &[ShapeSpec]) -> ShapeSpec {
        self.single_output().node.spec.clone()
    }

    #[track_caller]
    fn forward_inputs(&self, xs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> (Tensor, Option<Tensor>) {
        self.single_output();
        let mut outputs = self.call_outputs(xs, masks, training);
        outputs.swap_remove(0)
    }
}

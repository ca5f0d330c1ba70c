//! The `Module` trait (Keras' `Layer`) and the weight bookkeeping every layer shares.

use std::sync::{Arc, OnceLock};

use tensorjit_runtime::shape::UNKNOWN;
use tensorjit_runtime::{init_scope, DType, Device, Tensor, Variable};

use crate::error::raise;
use crate::initializers::Initializer;
use crate::naming;
use crate::regularizers::Regularizer;

/// A shape with unknown dims (`None`), batch first: `[None, 64]` is Keras' `(None, 64)`.
pub type ShapeSpec = Vec<Option<usize>>;

/// A shared handle to a module, as containers hold them.
pub type ModuleRef = Arc<dyn Module>;

/// A layer or a model: weights created on the first call, a forward computation with a
/// `training` flag, and the variables it owns.
///
/// Layers are handles: cloning one (or using the same instance twice) shares its
/// weights, which is how Keras shares variables between models.
pub trait Module: Send + Sync {
    /// The layer's name (`dense_1`); automatic unless set with `with_name`.
    fn name(&self) -> &str;
    /// The layer's type as Keras names it (`Dense`).
    fn kind(&self) -> &'static str;
    /// Creates the weights for inputs of shape `input` (batch first) if not built yet;
    /// `scope` prefixes variable names (`sequential` → `sequential/dense/kernel`).
    fn build(&self, scope: &str, input: &[Option<usize>]);
    /// Whether the weights exist.
    fn is_built(&self) -> bool;
    /// The computation, on a built module.
    fn forward(&self, x: &Tensor, training: bool) -> Tensor;
    /// The output shape for an input shape (for `summary` and for containers).
    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec;
    /// Every variable, trainable first in creation order as Keras lists them.
    fn variables(&self) -> Vec<Variable>;
    /// The sub-layers of a container (empty for a layer).
    fn layers(&self) -> Vec<ModuleRef> {
        Vec::new()
    }

    /// The penalties of the weights' regularizers (Keras' `layer.losses`), computed now
    /// from the weights' values: scalars that `fit` and `evaluate` add to the loss, and
    /// that a custom training step adds itself (under its tape, inside a traced
    /// function too). A container returns those of its layers, then the activity
    /// penalties its latest call recorded (after that call, in the same trace when it
    /// was traced); empty when nothing is regularised or before the build.
    fn losses(&self) -> Vec<Tensor> {
        self.layers().iter().flat_map(|l| l.losses()).collect()
    }

    /// The penalty on this layer's output (set with its `activity_regularizer`), if any: the
    /// model that calls the layer adds it, divided by the batch size, to its
    /// [`losses`](Self::losses) for that call.
    fn output_regularizer(&self) -> Option<Regularizer> {
        None
    }

    /// Whether the layer takes a mask of padded steps into account or passes it on
    /// (Keras' `supports_masking`). A layer that does not drops the mask: the layers
    /// after it see none, and [`Sequential`](crate::layers::Sequential) warns once.
    fn supports_masking(&self) -> bool {
        false
    }

    /// The mask of the output for input `x` with mask `mask` (Keras' `compute_mask`):
    /// a bool tensor `[batch, steps]`, true where a step holds data. By default the input's
    /// mask if the layer [supports masking](Self::supports_masking), none otherwise.
    /// `Embedding::mask_zero` and `Masking` make one from their input.
    fn compute_mask(&self, x: &Tensor, mask: Option<&Tensor>) -> Option<Tensor> {
        let _ = x;
        if self.supports_masking() {
            mask.cloned()
        } else {
            None
        }
    }

    /// [`forward`](Self::forward) for inputs whose padded steps `mask` marks false
    /// (Keras' `call(x, mask=…)`): recurrent layers skip them, pooling averages the others.
    /// By default the mask does not change the computation.
    #[track_caller]
    fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> Tensor {
        let _ = mask;
        self.forward(x, training)
    }

    /// The output and its mask from one pass: [`forward_masked`](Self::forward_masked)
    /// and [`compute_mask`](Self::compute_mask), which containers override to thread
    /// the mask through their layers.
    #[track_caller]
    fn forward_and_mask(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> (Tensor, Option<Tensor>) {
        (self.forward_masked(x, mask, training), self.compute_mask(x, mask))
    }

    /// How many inputs the layer takes: 1 for most layers, the number of `Input`s of a
    /// functional model, `None` for merge layers (two or more).
    fn input_count(&self) -> Option<usize> {
        Some(1)
    }

    /// Checks inputs `xs` against what the model declares (a functional model's `Input`
    /// shapes and dtypes), before any step runs: `Err` with the message. Nothing to
    /// check by default.
    fn check_inputs(&self, xs: &[Tensor]) -> std::result::Result<(), String> {
        let _ = xs;
        Ok(())
    }

    /// [`build`](Self::build) for the shapes of several inputs (merge layers, functional
    /// models). A layer of one input builds for `inputs[0]`.
    #[track_caller]
    fn build_inputs(&self, scope: &str, inputs: &[ShapeSpec]) {
        match inputs {
            [one] => self.build(scope, one),
            _ => raise(&format!("{} '{}'", self.kind(), self.name()), one_input(inputs.len())),
        }
    }

    /// [`output_shape`](Self::output_shape) for the shapes of several inputs; refuses
    /// shapes a merge layer cannot combine, naming the layer and the shapes.
    #[track_caller]
    fn output_shape_inputs(&self, inputs: &[ShapeSpec]) -> ShapeSpec {
        match inputs {
            [one] => self.output_shape(one),
            _ => raise(&format!("{} '{}'", self.kind(), self.name()), one_input(inputs.len())),
        }
    }

    /// The output and its mask for several inputs and their masks (`masks[i]` is the
    /// mask of `xs[i]`, or `None`): how functional models call their layers. A layer of
    /// one input runs [`forward_and_mask`](Self::forward_and_mask) on `xs[0]`.
    #[track_caller]
    fn forward_inputs(&self, xs: &[Tensor], masks: &[Option<Tensor>], training: bool) -> (Tensor, Option<Tensor>) {
        match xs {
            [x] => self.forward_and_mask(x, masks.first().and_then(Option::as_ref), training),
            _ => raise(&format!("{} '{}'", self.kind(), self.name()), one_input(xs.len())),
        }
    }

    /// Variables the optimizer updates.
    fn trainable_variables(&self) -> Vec<Variable> {
        self.variables().into_iter().filter(|v| v.trainable()).collect()
    }

    /// Variables updated otherwise (BatchNormalization's moving statistics).
    fn non_trainable_variables(&self) -> Vec<Variable> {
        self.variables().into_iter().filter(|v| !v.trainable()).collect()
    }

    /// Builds on the first call (from `x`'s shape) and runs `forward`.
    #[track_caller]
    fn call(&self, x: &Tensor, training: bool) -> Tensor {
        if !self.is_built() {
            self.build("", &shape_spec(x));
        }
        self.forward(x, training)
    }

    /// This layer as a [`ModuleRef`] for containers (shares the weights).
    fn boxed(self) -> ModuleRef
    where
        Self: Sized + 'static,
    {
        Arc::new(self)
    }
}

fn one_input(n: usize) -> String {
    format!("takes 1 input, got {n}")
}

/// The shape of `x` with its batch dim unknown (what a layer is built for).
pub(crate) fn shape_spec(x: &Tensor) -> ShapeSpec {
    x.dims().iter().enumerate().map(|(i, &d)| if i == 0 || d == UNKNOWN { None } else { Some(d) }).collect()
}

/// Whether tensor dims `got` fit shape spec `spec` (batch first): the same rank, and every
/// axis after the batch equal where both are known.
pub(crate) fn fits_spec(spec: &[Option<usize>], got: &[usize]) -> bool {
    got.len() == spec.len() && spec.iter().zip(got).skip(1).all(|(s, &g)| s.is_none_or(|s| g == UNKNOWN || s == g))
}

/// Formats a shape spec as Keras does: `(None, 28, 28, 1)`.
pub(crate) fn fmt_spec(s: &[Option<usize>]) -> String {
    let parts: Vec<String> = s.iter().map(|d| d.map_or("None".to_string(), |d| d.to_string())).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Name, kind and weights of a layer; shared by clones of the layer.
pub(crate) struct LayerCore {
    pub(crate) name: String,
    pub(crate) kind: &'static str,
    weights: OnceLock<Vec<Variable>>,
    penalties: OnceLock<Vec<(Variable, Regularizer)>>,
    /// The penalty on the layer's output (`activity_regularizer`).
    pub(crate) activity: Option<Regularizer>,
}

impl LayerCore {
    pub(crate) fn new(kind: &'static str) -> Arc<LayerCore> {
        LayerCore::named(kind, &naming::unique(&naming::snake(kind)))
    }

    /// An unbuilt core of this kind with this name.
    pub(crate) fn named(kind: &'static str, name: &str) -> Arc<LayerCore> {
        Arc::new(LayerCore {
            name: name.to_string(),
            kind,
            weights: OnceLock::new(),
            penalties: OnceLock::new(),
            activity: None,
        })
    }

    /// A core with the given name (before the layer is built).
    #[track_caller]
    pub(crate) fn renamed(self: &Arc<LayerCore>, name: &str) -> Arc<LayerCore> {
        if self.is_built() {
            raise(&format!("{} '{}'", self.kind, self.name), "cannot be renamed after its weights exist")
        }
        let mut core = LayerCore::named(self.kind, name);
        if let Some(c) = Arc::get_mut(&mut core) {
            c.activity = self.activity;
        }
        core
    }

    /// A core whose layer's output is penalised by `r` (before the layer is built).
    #[track_caller]
    pub(crate) fn with_activity(self: &Arc<LayerCore>, r: Regularizer) -> Arc<LayerCore> {
        let what = format!("{} '{}'", self.kind, self.name);
        if self.is_built() {
            raise(&what, "cannot take an activity regularizer after its weights exist")
        }
        let mut core = LayerCore::named(self.kind, &self.name);
        if let Some(c) = Arc::get_mut(&mut core) {
            c.activity = Some(r.checked(&format!("{what}.activity_regularizer")));
        }
        core
    }

    pub(crate) fn is_built(&self) -> bool {
        self.weights.get().is_some()
    }

    /// Creates the weights once, outside any trace and tape.
    pub(crate) fn build(&self, scope: &str, make: impl FnOnce(&mut Weights)) {
        self.weights.get_or_init(|| {
            let prefix = if scope.is_empty() { self.name.clone() } else { format!("{scope}/{}", self.name) };
            init_scope(|| {
                let mut w = Weights { prefix, vars: Vec::new(), penalties: Vec::new() };
                make(&mut w);
                // Set once, with the weights (this closure runs once).
                let _ = self.penalties.set(w.penalties);
                w.vars
            })
        });
    }

    /// The regularizers' penalties on the weights' current values.
    pub(crate) fn losses(&self) -> Vec<Tensor> {
        let Some(penalties) = self.penalties.get() else { return Vec::new() };
        penalties.iter().map(|(v, r)| r.penalty(&v.read())).collect()
    }

    /// The weights in creation order (empty before the build).
    pub(crate) fn weights(&self) -> Vec<Variable> {
        self.weights.get().cloned().unwrap_or_default()
    }

    /// Weight `i`, on a built layer.
    #[track_caller]
    pub(crate) fn weight(&self, i: usize) -> &Variable {
        match self.weights.get().and_then(|w| w.get(i)) {
            Some(v) => v,
            None => raise(
                &format!("{} '{}'", self.kind, self.name),
                "forward called before the layer was built; use call(), which builds it on the first input",
            ),
        }
    }

    /// Raises a Keras-style input-compatibility error at the user's call.
    #[track_caller]
    pub(crate) fn incompatible(&self, x: &Tensor, expected: &str) -> ! {
        raise(
            &format!("{} '{}'", self.kind, self.name),
            format!("input {} is incompatible with the layer: expected {expected}", x.type_string()),
        )
    }
}

thread_local! {
    /// The device the weights of the model being built are created on.
    static BUILD_DEVICE: std::cell::Cell<Device> = const { std::cell::Cell::new(Device::Cpu) };
}

/// Runs `f` (a model's build) with new weights created on `device`.
pub(crate) fn building_on<R>(device: Device, f: impl FnOnce() -> R) -> R {
    struct Restore(Device);
    impl Drop for Restore {
        fn drop(&mut self) {
            BUILD_DEVICE.with(|d| d.set(self.0));
        }
    }
    let _restore = Restore(BUILD_DEVICE.with(|d| d.replace(device)));
    f()
}

/// The device weights created now go to (the CPU outside a model's build).
pub(crate) fn build_device() -> Device {
    BUILD_DEVICE.with(|d| d.get())
}

/// Collects the weights a layer creates while it is built.
pub(crate) struct Weights {
    prefix: String,
    vars: Vec<Variable>,
    penalties: Vec<(Variable, Regularizer)>,
}

impl Weights {
    /// A new variable `prefix/name` initialised by `init`.
    pub(crate) fn add(&mut self, name: &str, dims: &[usize], init: &Initializer, trainable: bool) -> Variable {
        let name = format!("{}/{name}", self.prefix);
        let value = init.make(dims, DType::F32);
        let device = build_device();
        // `Sequential::on_device` checked that the device is there.
        let value = value.to(device).unwrap_or_else(|e| raise(&format!("weight '{name}'"), e));
        let v = Variable::with_trainable(value, name, trainable);
        self.vars.push(v.clone());
        v
    }

    /// [`add`](Self::add), with `regularizer`'s penalty on the new weight (if any).
    pub(crate) fn add_regularized(
        &mut self,
        name: &str,
        dims: &[usize],
        init: &Initializer,
        regularizer: Option<Regularizer>,
    ) -> Variable {
        let v = self.add(name, dims, init, true);
        if let Some(r) = regularizer {
            self.penalties.push((v.clone(), r));
        }
        v
    }
}

/// Builds `layers` one after another from `input` under `scope`; returns the final shape.
pub(crate) fn build_chain(scope: &str, layers: &[ModuleRef], input: &[Option<usize>]) -> ShapeSpec {
    let mut shape = input.to_vec();
    for l in layers {
        l.build(scope, &shape);
        shape = l.output_shape(&shape);
    }
    shape
}

//! `Sequential`: a stack of layers, itself a layer, with Keras' training methods.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tensorjit_runtime::{Device, Tensor, Variable};

use crate::activity::ActivityLosses;
use crate::error::{raise, Error, Result};
use crate::model::Compiled;
use crate::module::{build_chain, build_device, building_on, Module, ModuleRef, ShapeSpec};
use crate::naming;

/// Layers applied one after another (Keras' `Sequential`). Built from the first input
/// (or from [`with_input_shape`](Self::with_input_shape)); variables are named under
/// the model's name (`sequential/dense/kernel`). Cloning shares the model.
#[derive(Clone)]
pub struct Sequential {
    pub(crate) inner: Arc<SeqInner>,
}

pub(crate) struct SeqInner {
    name: String,
    layers: RwLock<Vec<ModuleRef>>,
    /// The input shape the model was built for (batch first, batch unknown).
    built: OnceLock<ShapeSpec>,
    pub(crate) compiled: Mutex<Option<Arc<Compiled>>>,
    /// Where the weights live (`on_device`); `None`: where the enclosing model's do.
    device: Mutex<Option<Device>>,
    /// Whether a layer that drops a mask was already warned about.
    warned_mask: AtomicBool,
    /// The penalties on layers' outputs of the latest call.
    activity: ActivityLosses,
    /// Whether `built` was declared (`with_input_shape`), not taken from a first call:
    /// then inputs must fit it.
    declared: AtomicBool,
}

impl Sequential {
    /// A model of `layers` (in order), named automatically (`sequential`, `sequential_1`).
    pub fn new(layers: Vec<ModuleRef>) -> Sequential {
        Sequential::named(&naming::unique("sequential"), layers)
    }

    /// A model with its own name.
    pub fn named(name: &str, layers: Vec<ModuleRef>) -> Sequential {
        Sequential {
            inner: Arc::new(SeqInner {
                name: name.to_string(),
                layers: RwLock::new(layers),
                built: OnceLock::new(),
                compiled: Mutex::new(None),
                device: Mutex::new(None),
                warned_mask: AtomicBool::new(false),
                activity: ActivityLosses::default(),
                declared: AtomicBool::new(false),
            }),
        }
    }

    /// The output and its mask: each layer runs on the previous one's output and mask
    /// (Keras' mask propagation). A mask starts at an `Embedding` with `mask_zero` or a
    /// `Masking` layer, or is given here (`[batch, steps]`, true where a step holds
    /// data); `fit` and `evaluate` leave the output's padded steps out of the loss and
    /// the metrics. A layer that does not [support masking](Module::supports_masking)
    /// drops the mask, with a warning the first time. Builds the model on its first call.
    #[track_caller]
    pub fn forward_with_mask(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> (Tensor, Option<Tensor>) {
        if !self.is_built() {
            self.build("", &crate::module::shape_spec(x));
        }
        let mut mask = mask.cloned();
        let mut y = x.clone();
        self.inner.activity.clear();
        for l in self.layer_list() {
            if mask.is_some() && !l.supports_masking() && !self.inner.warned_mask.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "{} '{}' in '{}' does not support masking: the mask of padded steps ends there",
                    l.kind(),
                    l.name(),
                    self.inner.name
                );
            }
            (y, mask) = l.forward_and_mask(&y, mask.as_ref(), training);
            self.inner.activity.record(l.as_ref(), &y);
        }
        (y, mask)
    }

    /// Appends a layer (before the model is built).
    #[track_caller]
    pub fn add(&self, layer: ModuleRef) -> &Self {
        if self.is_built() {
            raise(&format!("Sequential '{}'", self.inner.name), "cannot add layers after the model is built")
        }
        self.inner.layers.write().unwrap_or_else(|p| p.into_inner()).push(layer);
        self
    }

    /// Puts the model on `device` (before it is built): its weights and the optimizer's
    /// slots are created there, and `fit`, `evaluate` and `predict` copy each batch
    /// there, so the traced train step runs on that device. `Err` naming the device when
    /// it is not there; `Err` once the weights exist (they stay where they were made).
    ///
    /// ```no_run
    /// # use tensorjit_nn::prelude::*;
    /// # use tensorjit_runtime::Device;
    /// let model = Sequential::new(vec![Dense::new(10).boxed()]).on_device(Device::Cuda(0))?.with_input_shape(&[64]);
    /// # Ok::<(), tensorjit_nn::Error>(())
    /// ```
    pub fn on_device(self, device: Device) -> Result<Self> {
        if self.is_built() {
            return Err(Error::invalid(
                "on_device",
                format!(
                    "Sequential '{}' is built: its weights are on {}; call on_device before the model is built",
                    self.inner.name,
                    self.device()
                ),
            ));
        }
        // The JIT crate's device backends (CUDA), as `compile` installs its compiler.
        tensorjit_jit::install();
        Tensor::scalar(0.0f32).to(device)?;
        *self.inner.device.lock().unwrap_or_else(|p| p.into_inner()) = Some(device);
        Ok(self)
    }

    /// The device the model's weights live on (the CPU unless `on_device` said).
    pub fn device(&self) -> Device {
        self.inner.device.lock().unwrap_or_else(|p| p.into_inner()).unwrap_or_else(build_device)
    }

    /// Declares the input shape of one example (Keras' `Input(shape=…)`) and builds the
    /// model now: weights exist and `summary` shows shapes before any data is seen.
    /// `fit`, `evaluate` and `predict` then refuse inputs of another shape before any
    /// step (a model built by its first call takes what its layers take).
    #[track_caller]
    pub fn with_input_shape(self, example: &[usize]) -> Self {
        let mut s: ShapeSpec = vec![None];
        s.extend(example.iter().map(|&d| Some(d)));
        let fresh = !self.is_built();
        self.build("", &s);
        if fresh {
            self.inner.declared.store(true, Ordering::Relaxed);
        }
        self
    }

    /// The Keras-like table of layers, output shapes and parameter counts.
    pub fn summary(&self) -> String {
        crate::summary::render(self, self.inner.built.get().map(|s| s.as_slice()))
    }

    fn layer_list(&self) -> Vec<ModuleRef> {
        self.inner.layers.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The input shape the model was built for.
    pub fn input_shape(&self) -> Option<ShapeSpec> {
        self.inner.built.get().cloned()
    }
}

impl Module for Sequential {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn kind(&self) -> &'static str {
        "Sequential"
    }

    fn is_built(&self) -> bool {
        self.inner.built.get().is_some()
    }

    /// Refuses an input that does not fit the declared input shape
    /// ([`with_input_shape`](Sequential::with_input_shape)).
    fn check_inputs(&self, xs: &[Tensor]) -> std::result::Result<(), String> {
        let declared = self.inner.declared.load(Ordering::Relaxed).then(|| self.inner.built.get()).flatten();
        let (Some(spec), [x]) = (declared, xs) else { return Ok(()) };
        if crate::module::fits_spec(spec, x.dims()) {
            return Ok(());
        }
        Err(format!(
            "Sequential '{}' takes inputs {} (its input shape), got {}",
            self.inner.name,
            crate::module::fmt_spec(spec),
            x.type_string()
        ))
    }

    /// The layers' weight penalties, and the penalties on layers' outputs of the latest
    /// call ([activity regularizers](Module::output_regularizer)).
    fn losses(&self) -> Vec<Tensor> {
        let weights = self.layer_list().iter().flat_map(|l| l.losses()).collect::<Vec<_>>();
        weights.into_iter().chain(self.inner.activity.current()).collect()
    }

    fn build(&self, scope: &str, input: &[Option<usize>]) {
        self.inner.built.get_or_init(|| {
            let scope = if scope.is_empty() { self.inner.name.clone() } else { format!("{scope}/{}", self.inner.name) };
            building_on(self.device(), || build_chain(&scope, &self.layer_list(), input));
            input.to_vec()
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        self.forward_with_mask(x, None, training).0
    }

    fn supports_masking(&self) -> bool {
        true
    }

    /// The last layer's mask. A layer's mask may depend on its input (an `Embedding`'s
    /// ids), so the layers run: [`forward_and_mask`](Module::forward_and_mask) gives the
    /// output and the mask from one pass.
    fn compute_mask(&self, x: &Tensor, mask: Option<&Tensor>) -> Option<Tensor> {
        self.forward_with_mask(x, mask, false).1
    }

    #[track_caller]
    fn forward_and_mask(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> (Tensor, Option<Tensor>) {
        self.forward_with_mask(x, mask, training)
    }

    #[track_caller]
    fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> Tensor {
        self.forward_with_mask(x, mask, training).0
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        self.layer_list().iter().fold(input.to_vec(), |s, l| l.output_shape(&s))
    }

    /// Every layer's variables once each (a layer used twice shares them).
    fn variables(&self) -> Vec<Variable> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for l in self.layer_list() {
            for v in l.variables() {
                if seen.insert(v.id()) {
                    out.push(v);
                }
            }
        }
        out
    }

    fn layers(&self) -> Vec<ModuleRef> {
        self.layer_list()
    }
}

//! `Sequential`: a stack of layers, itself a layer, with Keras' training methods.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use tensorjit_runtime::{Tensor, Variable};

use crate::error::raise;
use crate::model::Compiled;
use crate::module::{build_chain, Module, ModuleRef, ShapeSpec};
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
            }),
        }
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

    /// Declares the input shape of one example (Keras' `Input(shape=…)`) and builds the
    /// model now: weights exist and `summary` shows shapes before any data is seen.
    #[track_caller]
    pub fn with_input_shape(self, example: &[usize]) -> Self {
        let mut s: ShapeSpec = vec![None];
        s.extend(example.iter().map(|&d| Some(d)));
        self.build("", &s);
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

    fn build(&self, scope: &str, input: &[Option<usize>]) {
        self.inner.built.get_or_init(|| {
            let scope = if scope.is_empty() { self.inner.name.clone() } else { format!("{scope}/{}", self.inner.name) };
            build_chain(&scope, &self.layer_list(), input);
            input.to_vec()
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, training: bool) -> Tensor {
        // `build` (run by `call`) built every layer.
        self.layer_list().iter().fold(x.clone(), |y, l| l.forward(&y, training))
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

//! Keras-style neural networks on tensorjit: layers, `Sequential` and functional
//! ([`functional::Functional`]) models, optimizers,
//! losses, metrics, `compile`/`fit`/`evaluate`/`predict`, datasets and weight files.
//!
//! Everything is built from the runtime's public ops, so a model runs the same code
//! eagerly and inside a traced function. Layers create their weights lazily on the first
//! call (under [`init_scope`](tensorjit_runtime::init_scope), so a first call inside a
//! traced function works as in Keras); optimizers keep their slots in variables, so a
//! whole training step traces into one graph; BatchNormalization updates its moving
//! statistics itself with variable assignments, which are effects of the graph, so they
//! happen in traced mode exactly as in eager mode (no "update ops" to collect).
//!
//! A separate crate (not a runtime module) because it is a client of the runtime's
//! public API only and brings its own dependencies (progress bars, safetensors, gzip)
//! that the runtime does not need.
//!
//! ```
//! use tensorjit_nn::prelude::*;
//! use tensorjit_runtime::{random, DType};
//!
//! let model = Sequential::new(vec![
//!     Dense::new(8).activation(Activation::Relu).boxed(),
//!     Dense::new(1).boxed(),
//! ]);
//! let x = random::normal([4, 3], 0.0, 1.0, DType::F32, Some(1));
//! let y = model.call(&x, false);
//! assert_eq!(y.dims(), &[4, 1]);
//! assert_eq!(model.trainable_variables().len(), 4);
//! assert!(model.variables()[0].name().ends_with("/kernel"));
//! ```

pub mod activations;
mod activity;
pub mod callbacks;
pub mod data;
mod error;
pub mod functional;
pub mod initializers;
pub mod io;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod model;
mod module;
mod naming;
pub mod optimizers;
pub mod regularizers;
mod summary;

pub use activations::Activation;
pub use error::{Error, Result};
pub use initializers::Initializer;
pub use module::{Module, ModuleRef, ShapeSpec};
pub use naming::reset_names;

/// The names most programs use.
pub mod prelude {
    pub use crate::activations::Activation;
    pub use crate::callbacks::{
        Callback, Control, CsvLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau,
    };
    pub use crate::data::Dataset;
    pub use crate::functional::{Functional, Input, SymbolicTensor};
    pub use crate::initializers::Initializer;
    pub use crate::layers::{
        ActivityRegularization, Add, Average, AvgPool1D, AvgPool2D, BatchNormalization, Bidirectional, Concatenate,
        Conv1D, Conv2D, Conv2DTranspose, Cropping1D, Cropping2D, Dense, DepthwiseConv2D, Dot, Dropout, Embedding,
        Flatten, GaussianDropout, GaussianNoise, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
        GlobalMaxPooling2D, GroupNormalization, Lambda, LayerNormalization, Masking, MaxPool1D, MaxPool2D, Maximum,
        Minimum, MultiHeadAttention, Multiply, Normalization, Permute, RepeatVector, Rescaling, Reshape,
        SeparableConv2D, Sequential, SimpleRNN, SpatialDropout1D, SpatialDropout2D, Subtract, TimeDistributed,
        UnitNormalization, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D, GRU, LSTM,
    };
    pub use crate::losses::Loss;
    pub use crate::metrics::{Accuracy, Mean, Metric};
    pub use crate::model::{FitOptions, History, Model, Tensors};
    pub use crate::module::{Module, ModuleRef};
    pub use crate::optimizers::{
        Adadelta, Adagrad, Adam, AdamW, Adamax, Clipping, LearningRateSchedule, Lion, Nadam, Optimizer, RMSprop, SGD,
    };
    pub use crate::regularizers::Regularizer;
    pub use tensorjit_runtime::Padding;
}

//! The layers: Dense, Conv2D, pooling, Flatten, Dropout, BatchNormalization,
//! LayerNormalization, Embedding, Masking, recurrent and attention layers, ActivationLayer,
//! Lambda, Conv2DTranspose, upsampling, zero padding and cropping, and the `Sequential`
//! container.

mod arrange;
mod attention;
mod basic;
mod batchnorm;
mod bidirectional;
mod conv;
mod conv1d;
mod dense;
mod depthwise;
mod draws;
mod embedding;
mod masking;
pub(crate) mod merge;
mod noise;
mod preprocessing;
mod recurrent;
mod reshaping;
mod sequential;
mod spatial;
mod time_distributed;

pub use arrange::{GroupNormalization, Permute, RepeatVector, UnitNormalization};
pub use attention::MultiHeadAttention;
pub use basic::{ActivationLayer, ActivityRegularization, Dropout, Flatten, Lambda};
pub use batchnorm::BatchNormalization;
pub use bidirectional::Bidirectional;
pub use conv::{AvgPool2D, Conv2D, Conv2DTranspose, MaxPool2D};
pub use conv1d::{AvgPool1D, Conv1D, MaxPool1D};
pub use dense::Dense;
pub use depthwise::{DepthwiseConv2D, SeparableConv2D};
pub use embedding::{Embedding, LayerNormalization};
pub use masking::Masking;
pub use merge::{Add, Average, Concatenate, Dot, ElementwiseMerge, Maximum, Minimum, Multiply, Subtract};
pub use noise::{GaussianDropout, GaussianNoise, SpatialDropout1D, SpatialDropout2D};
pub use preprocessing::{Normalization, Rescaling};
pub use recurrent::{RecurrentLayer, SimpleRNN, GRU, LSTM};
pub use reshaping::{GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, Reshape};
pub use sequential::Sequential;
pub use spatial::{Cropping1D, Cropping2D, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D};
pub use time_distributed::TimeDistributed;

/// The length of the inputs' last axis, which a layer's weights need (an error naming
/// the layer when the shape leaves it unknown).
#[track_caller]
pub(crate) fn known_last_axis(core: &crate::module::LayerCore, input: &[Option<usize>]) -> usize {
    match input.last() {
        Some(&Some(c)) => c,
        _ => crate::error::raise(
            &format!("{} '{}'", core.kind, core.name),
            format!("needs inputs with a known last axis, got shape {}", crate::module::fmt_spec(input)),
        ),
    }
}

/// `centred·(γ/√(var + ε)) + β`: the affine step of BatchNormalization and
/// LayerNormalization.
pub(crate) fn scale_and_shift(
    centred: &tensorjit_runtime::Tensor,
    var: &tensorjit_runtime::Tensor,
    epsilon: f64,
    gamma: &tensorjit_runtime::Variable,
    beta: &tensorjit_runtime::Variable,
) -> tensorjit_runtime::Tensor {
    let scale = (var + epsilon).rsqrt() * &gamma.read();
    centred * &scale + &beta.read()
}

/// Implements the naming/weights part of `Module` for a layer with a `core` field.
macro_rules! core_methods {
    () => {
        fn name(&self) -> &str {
            &self.core.name
        }
        fn kind(&self) -> &'static str {
            self.core.kind
        }
        fn is_built(&self) -> bool {
            self.core.is_built()
        }
        fn variables(&self) -> Vec<tensorjit_runtime::Variable> {
            self.core.weights()
        }
        fn losses(&self) -> Vec<tensorjit_runtime::Tensor> {
            self.core.losses()
        }
        fn output_regularizer(&self) -> Option<$crate::regularizers::Regularizer> {
            self.core.activity
        }
    };
}
pub(crate) use core_methods;

/// `with_name` for a layer with a `core` field.
macro_rules! with_name {
    () => {
        /// This layer with its own name instead of the automatic one (before it is built).
        #[track_caller]
        pub fn with_name(mut self, name: &str) -> Self {
            self.core = self.core.renamed(name);
            self
        }

        /// A penalty on the layer's output (Keras' `activity_regularizer`): the model
        /// that calls the layer adds it, divided by the batch size, to the loss `fit`
        /// and `evaluate` compute (before the layer is built).
        #[track_caller]
        pub fn activity_regularizer(mut self, r: $crate::regularizers::Regularizer) -> Self {
            self.core = self.core.with_activity(r);
            self
        }
    };
}
pub(crate) use with_name;

/// `build` for a layer without weights (a `core` field, built with nothing in it).
macro_rules! no_weights {
    () => {
        fn build(&self, scope: &str, _input: &[Option<usize>]) {
            self.core.build(scope, |_| {});
        }
    };
}
pub(crate) use no_weights;

/// A dropout-like rate in `[0, 1)`, or an error naming the layer and the setting.
#[track_caller]
pub(crate) fn checked_rate(kind: &str, what: &str, rate: f64) -> f64 {
    if !(0.0..1.0).contains(&rate) {
        crate::error::raise(kind, format!("{what} must be in [0, 1), got {rate}"))
    }
    rate
}

/// Builder setters `fn field(mut self, value) -> Self` for configuration fields.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    )*};
    // Fields of a configuration struct held in field `$within`.
    (in $within:ident; $($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: $ty) -> Self {
            self.$within.$field = value;
            self
        }
    )*};
}
pub(crate) use setters;

/// Builder setters `fn field(mut self, r: Regularizer) -> Self` for `Option<Regularizer>`
/// fields (the factors checked, the error naming the layer and setter).
macro_rules! regularizer_setters {
    ($($field:ident),* $(,)?) => {$(
        #[doc = concat!("A penalty on the weight (Keras' `", stringify!($field), "`), added to the loss by `fit`.")]
        #[track_caller]
        pub fn $field(mut self, r: $crate::regularizers::Regularizer) -> Self {
            let what = format!("{}.{}", self.core.kind, stringify!($field));
            self.$field = Some(r.checked(&what));
            self
        }
    )*};
    // Fields of a configuration struct held in field `$within`.
    (in $within:ident; $($field:ident),* $(,)?) => {$(
        #[doc = concat!("A penalty on the weight (Keras' `", stringify!($field), "`), added to the loss by `fit`.")]
        #[track_caller]
        pub fn $field(mut self, r: $crate::regularizers::Regularizer) -> Self {
            let what = format!("{}.{}", self.core.kind, stringify!($field));
            self.$within.$field = Some(r.checked(&what));
            self
        }
    )*};
}
pub(crate) use regularizer_setters;

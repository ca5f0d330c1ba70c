//! The layers: Dense, Conv2D, pooling, Flatten, Dropout, BatchNormalization,
//! ActivationLayer, Lambda, and the `Sequential` container.

mod basic;
mod batchnorm;
mod conv;
mod dense;
mod sequential;

pub use basic::{ActivationLayer, Dropout, Flatten, Lambda};
pub use batchnorm::BatchNormalization;
pub use conv::{AvgPool2D, Conv2D, MaxPool2D};
pub use dense::Dense;
pub use sequential::Sequential;

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
    };
}
pub(crate) use with_name;

/// Builder setters `fn field(mut self, value) -> Self` for configuration fields.
macro_rules! setters {
    ($($(#[$doc:meta])* $field:ident: $ty:ty),* $(,)?) => {$(
        $(#[$doc])*
        pub fn $field(mut self, value: $ty) -> Self {
            self.$field = value;
            self
        }
    )*};
}
pub(crate) use setters;

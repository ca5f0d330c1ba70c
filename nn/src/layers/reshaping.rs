//! Weightless layers that reduce or rearrange axes: the global poolings
//! (`GlobalAveragePooling1D/2D`, `GlobalMaxPooling1D/2D`) and `Reshape`.

use std::sync::Arc;

use tensorjit_runtime::Tensor;

use super::{core_methods, with_name};
use crate::error::raise;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec};

/// One global pooling layer per Keras class: the mean or max over the spatial axes.
macro_rules! global_pooling {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $rank:literal, $axes:expr, $reduce:ident, $masked:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            keepdims: bool,
            core: Arc<LayerCore>,
        }

        impl $name {
            pub fn new() -> $name {
                $name { keepdims: false, core: LayerCore::new($kind) }
            }

            /// Keeps the pooled axes with length 1 (Keras' `keepdims=True`).
            pub fn keepdims(mut self, on: bool) -> Self {
                self.keepdims = on;
                self
            }

            with_name!();
        }

        impl Default for $name {
            fn default() -> Self {
                $name::new()
            }
        }

        impl Module for $name {
            core_methods!();

            fn build(&self, scope: &str, _input: &[Option<usize>]) {
                self.core.build(scope, |_| {});
            }

            #[track_caller]
            fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
                if x.rank() != $rank {
                    self.core.incompatible(x, concat!("rank ", $rank, " (batch, spatial axes, channels)"));
                }
                x.$reduce($axes.to_vec(), self.keepdims)
            }

            /// Whether the pooling skips padded steps (it consumes the mask: none after).
            fn supports_masking(&self) -> bool {
                let masked: Option<MaskedPool> = $masked;
                masked.is_some()
            }

            fn compute_mask(&self, _x: &Tensor, _mask: Option<&Tensor>) -> Option<Tensor> {
                None
            }

            #[track_caller]
            fn forward_masked(&self, x: &Tensor, mask: Option<&Tensor>, training: bool) -> Tensor {
                let masked: Option<MaskedPool> = $masked;
                match (mask, masked) {
                    (Some(m), Some(pool)) => {
                        if x.rank() != $rank {
                            self.core.incompatible(x, concat!("rank ", $rank, " (batch, spatial axes, channels)"));
                        }
                        pool(x, m, self.keepdims)
                    }
                    _ => self.forward(x, training),
                }
            }

            fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
                let pooled: &[i64] = &$axes;
                input
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &d)| match pooled.contains(&(i as i64)) {
                        false => Some(d),
                        true => self.keepdims.then_some(Some(1)),
                    })
                    .collect()
            }
        }
    };
}

/// A pooling over steps that skips the padded ones: `(x, mask, keepdims)`.
type MaskedPool = fn(&Tensor, &Tensor, bool) -> Tensor;

/// The mean over each sequence's unmasked steps (0 for a sequence with none, where
/// Keras gives NaN).
fn masked_mean(x: &Tensor, mask: &Tensor, keepdims: bool) -> Tensor {
    let w = mask.cast(x.dtype()).expand_dims(-1);
    (x * &w).sum(1, keepdims) / w.sum(1, keepdims).maximum(1.0)
}

global_pooling!(
    /// The mean over the steps of `[batch, steps, channels]` (Keras' `GlobalAveragePooling1D`);
    /// over the unmasked steps only when the input carries a mask.
    GlobalAveragePooling1D, "GlobalAveragePooling1D", 3, [1i64], mean, Some(masked_mean)
);
global_pooling!(
    /// The max over the steps of `[batch, steps, channels]` (Keras' `GlobalMaxPooling1D`).
    GlobalMaxPooling1D, "GlobalMaxPooling1D", 3, [1i64], max, None
);
global_pooling!(
    /// The mean over height and width of `[batch, height, width, channels]` (Keras'
    /// `GlobalAveragePooling2D`).
    GlobalAveragePooling2D, "GlobalAveragePooling2D", 4, [1i64, 2], mean, None
);
global_pooling!(
    /// The max over height and width of `[batch, height, width, channels]` (Keras'
    /// `GlobalMaxPooling2D`).
    GlobalMaxPooling2D, "GlobalMaxPooling2D", 4, [1i64, 2], max, None
);

/// Reshapes every example to `target` (the batch axis kept; Keras' `Reshape`): one
/// entry may be `None`, inferred from the example's size.
#[derive(Clone)]
pub struct Reshape {
    target: Vec<Option<usize>>,
    core: Arc<LayerCore>,
}

impl Reshape {
    #[track_caller]
    pub fn new(target: &[Option<usize>]) -> Reshape {
        if target.iter().filter(|d| d.is_none()).count() > 1 {
            raise("Reshape", format!("at most one dim of the target may be None, got {}", fmt_spec(target)))
        }
        Reshape { target: target.to_vec(), core: LayerCore::new("Reshape") }
    }

    with_name!();
}

impl Module for Reshape {
    core_methods!();

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let size: Option<usize> = input.iter().skip(1).try_fold(1usize, |acc, d| d.map(|d| acc * d));
        let known: usize = self.target.iter().flatten().product();
        let fits = match (size, self.target.contains(&None)) {
            (Some(n), false) => n == known,
            (Some(n), true) => known > 0 && n.is_multiple_of(known),
            (None, _) => true,
        };
        if !fits {
            raise(
                &format!("Reshape '{}'", self.core.name),
                format!(
                    "cannot reshape examples of shape {} to {}",
                    fmt_spec(&input[1.min(input.len())..]),
                    fmt_spec(&self.target)
                ),
            )
        }
        self.core.build(scope, |_| {});
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        use tensorjit_runtime::shape::UNKNOWN;
        let rest = x.dims().get(1..).unwrap_or(&[]);
        let size = rest.iter().try_fold(1usize, |acc, &d| (d != UNKNOWN).then(|| acc * d));
        let known: usize = self.target.iter().flatten().product();
        // One -1 at most: the batch axis, or the target's None when the batch size is
        // what is known.
        let (batch, none) = match (size, x.dims().first()) {
            (Some(n), _) => (-1, n.checked_div(known).unwrap_or(0) as i64),
            (None, Some(&b)) if b != UNKNOWN => (b as i64, -1),
            _ => self.core.incompatible(x, "a known batch size or known example dims"),
        };
        let dims: Vec<i64> =
            std::iter::once(batch).chain(self.target.iter().map(|d| d.map_or(none, |d| d as i64))).collect();
        x.reshape(dims)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        let size: Option<usize> = input.iter().skip(1).try_fold(1usize, |acc, d| d.map(|d| acc * d));
        let known: usize = self.target.iter().flatten().product();
        let inferred = size.and_then(|n| n.checked_div(known));
        let mut out = vec![input.first().copied().flatten()];
        out.extend(self.target.iter().map(|d| d.or(inferred)));
        out
    }
}

//! `RepeatVector` and `Permute` (axes rearranged), `GroupNormalization` and
//! `UnitNormalization` (normalisations over the feature axis).

use std::sync::Arc;

use tensorjit_runtime::shape::UNKNOWN;
use tensorjit_runtime::Tensor;

use super::{core_methods, known_last_axis, no_weights, setters, with_name};
use crate::error::raise;
use crate::initializers::Initializer;
use crate::module::{LayerCore, Module, ShapeSpec};

/// Repeats `[batch, features]` `n` times along a new axis 1: `[batch, n, features]`
/// (Keras' `RepeatVector`, the bridge from an encoder's last state to a decoder's steps).
#[derive(Clone)]
pub struct RepeatVector {
    n: usize,
    core: Arc<LayerCore>,
}

impl RepeatVector {
    pub fn new(n: usize) -> RepeatVector {
        RepeatVector { n, core: LayerCore::new("RepeatVector") }
    }

    with_name!();
}

impl Module for RepeatVector {
    core_methods!();
    no_weights!();

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        if x.rank() != 2 {
            self.core.incompatible(x, "rank 2 (batch, features)");
        }
        x.expand_dims(1).repeat(self.n, 1)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        match input {
            [b, f] => vec![*b, Some(self.n), *f],
            _ => input.to_vec(),
        }
    }
}

/// Permutes the axes after the batch axis (Keras' `Permute`, 1-based:
/// `Permute::new(&[2, 1])` swaps steps and features of `[batch, steps, features]`).
#[derive(Clone)]
pub struct Permute {
    dims: Vec<usize>,
    core: Arc<LayerCore>,
}

impl Permute {
    /// `dims` is a permutation of `1..=dims.len()`.
    #[track_caller]
    pub fn new(dims: &[usize]) -> Permute {
        let mut sorted = dims.to_vec();
        sorted.sort_unstable();
        if sorted != (1..=dims.len()).collect::<Vec<_>>() {
            raise("Permute", format!("dims must be a permutation of 1..={}, got {dims:?}", dims.len()))
        }
        Permute { dims: dims.to_vec(), core: LayerCore::new("Permute") }
    }

    with_name!();
}

impl Module for Permute {
    core_methods!();
    no_weights!();

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        if x.rank() != self.dims.len() + 1 {
            self.core.incompatible(x, &format!("rank {} (batch first)", self.dims.len() + 1));
        }
        let perm: Vec<i64> = std::iter::once(0).chain(self.dims.iter().map(|&d| d as i64)).collect();
        x.permute(&perm)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        if input.len() != self.dims.len() + 1 {
            return input.to_vec();
        }
        std::iter::once(input[0]).chain(self.dims.iter().map(|&d| input[d])).collect()
    }
}

/// Normalises each example over groups of channels (Keras' `GroupNormalization`,
/// `axis=-1`): the last axis split into `groups` groups, each standardised with the mean
/// and biased variance over its channels and every spatial position, then scaled and
/// shifted per channel by gamma (ones) and beta (zeros). The same in training and
/// inference; independent of the batch size. `groups = channels` is instance
/// normalisation, `groups = 1` layer normalisation over all non-batch axes.
#[derive(Clone)]
pub struct GroupNormalization {
    groups: usize,
    epsilon: f64,
    core: Arc<LayerCore>,
}

impl GroupNormalization {
    /// `groups` groups (Keras' default 32), epsilon 0.001.
    #[track_caller]
    pub fn new(groups: usize) -> GroupNormalization {
        if groups == 0 {
            raise("GroupNormalization", "groups must be at least 1")
        }
        GroupNormalization { groups, epsilon: 1e-3, core: LayerCore::new("GroupNormalization") }
    }

    setters! {
        epsilon: f64,
    }

    with_name!();
}

impl Module for GroupNormalization {
    core_methods!();

    fn supports_masking(&self) -> bool {
        true
    }

    #[track_caller]
    fn build(&self, scope: &str, input: &[Option<usize>]) {
        let c = known_last_axis(&self.core, input);
        if !c.is_multiple_of(self.groups) {
            raise(
                &format!("GroupNormalization '{}'", self.core.name),
                format!("{c} channels cannot be split into {} groups of equal size", self.groups),
            )
        }
        self.core.build(scope, |w| {
            w.add("gamma", &[c], &Initializer::Ones, true);
            w.add("beta", &[c], &Initializer::Zeros, true);
        });
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        let [gamma, beta] = [0, 1].map(|i| self.core.weight(i));
        let c = gamma.shape().dims()[0];
        let dims = x.dims();
        if x.rank() < 2 || dims[x.rank() - 1] != c || dims[1..].contains(&UNKNOWN) {
            self.core.incompatible(x, &format!("rank >= 2 with known example dims and a last axis of {c}"));
        }
        // [batch, positions, groups, channels per group]: statistics over axes 1 and 3.
        let positions: usize = dims[1..x.rank() - 1].iter().product();
        let grouped = x.reshape([-1, positions as i64, self.groups as i64, (c / self.groups) as i64]);
        let mean = grouped.mean(vec![1i64, 3], true);
        let centred = &grouped - &mean;
        let var = centred.square().mean(vec![1i64, 3], true);
        let normed = &centred * &(var + self.epsilon).rsqrt();
        let back_dims: Vec<i64> = std::iter::once(-1).chain(dims[1..].iter().map(|&d| d as i64)).collect();
        let back = normed.reshape(back_dims);
        &back * &gamma.read() + &beta.read()
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}

/// Scales each example's last axis to unit L2 norm, `x/√max(Σx², 1e-12)` (Keras'
/// `UnitNormalization`).
#[derive(Clone)]
pub struct UnitNormalization {
    core: Arc<LayerCore>,
}

impl UnitNormalization {
    pub fn new() -> UnitNormalization {
        UnitNormalization { core: LayerCore::new("UnitNormalization") }
    }

    with_name!();
}

impl Default for UnitNormalization {
    fn default() -> Self {
        UnitNormalization::new()
    }
}

impl Module for UnitNormalization {
    core_methods!();
    no_weights!();

    fn supports_masking(&self) -> bool {
        true
    }

    #[track_caller]
    fn forward(&self, x: &Tensor, _training: bool) -> Tensor {
        if x.rank() < 1 || !x.dtype().is_float() {
            self.core.incompatible(x, "a float tensor with a feature axis");
        }
        x.l2_normalize(-1, 1e-12)
    }

    fn output_shape(&self, input: &[Option<usize>]) -> ShapeSpec {
        input.to_vec()
    }
}

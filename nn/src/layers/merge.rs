//! Merge layers (Keras' `Add`, `Subtract`, `Multiply`, `Average`, `Maximum`, `Minimum`,
//! `Concatenate`, `Dot`): layers of several inputs and no weights, for functional models
//! ([`SymbolicTensor::merge`](crate::functional::SymbolicTensor::merge)) or called directly
//! with [`Module::forward_inputs`].
//!
//! A merged mask (Keras' `compute_mask` of a merge) is true where every input's mask is;
//! inputs without a mask count as all true.

use std::sync::Arc;

use tensorjit_runtime::Tensor;

use super::{core_methods, no_weights, with_name};
use crate::error::raise;
use crate::module::{fmt_spec, LayerCore, Module, ShapeSpec};

impl Combine {
    fn apply(self, xs: &[Tensor]) -> Tensor {
        // The callers counted at least two inputs.
        let folded = xs[1..].iter().fold(xs[0].clone(), |acc, x| match self {
            Combine::Add | Combine::Average => &acc + x,
            Combine::Subtract => &acc - x,
            Combine::Multiply => &acc * x,
            Combine::Maximum => acc.maximum(x),
            Combine::Minimum => acc.minimum(x),
        });
        if self == Combine::Average {
            folded / xs.len() as f64
        } else {
            folded
        }
    }
}

/// `r`'s value, or the error raised at the user's call naming the layer. The checks
/// return their message so that the raise happens in a `#[track_caller]` frame (a
/// closure would report this file's line).
#[track_caller]
fn or_raise<T>(core: &LayerCore, r: Result<T, String>) -> T {
    match r {
        Ok(v) => v,
        Err(message) => raise(&format!("{} '{}'", core.kind, core.name), message),
    }
}

/// Refuses a wrong number of inputs, on shapes (symbolic inputs) and on tensors (direct
/// calls) alike.
fn count_inputs(n: usize, exactly_two: bool) -> Result<(), String> {
    let ok = if exactly_two { n == 2 } else { n >= 2 };
    let wanted = if exactly_two { "exactly 2" } else { "at least 2" };
    if ok {
        Ok(())
    } else {
        Err(format!("takes {wanted} inputs, got {n}"))
    }
}

#[track_caller]
fn single_input(core: &LayerCore) -> ! {
    raise(
        &format!("{} '{}'", core.kind, core.name),
        "merges several inputs: apply it with SymbolicTensor::merge in a functional model, or call forward_inputs",
    )
}

/// The `Module` methods every merge layer shares: its name and (no) weights, the
/// error of a call on one input, and the build for several (after checking their shapes).
macro_rules! merge_methods {
    () => {
        core_methods!();
        no_weights!();

        #[track_caller]
        fn forward(&self, _x: &Tensor, _training: bool) -> Tensor {
            single_input(&self.core)
        }

        #[track_caller]
        fn output_shape(&self, _input: &[Option<usize>]) -> ShapeSpec {
            single_input(&self.core)
        }

        #[track_caller]
        fn build_inputs(&self, scope: &str, inputs: &[ShapeSpec]) {
            self.output_shape_inputs(inputs);
            self.build(scope, &[]);
        }
    };
}

/// `a` and `b` broadcast (unknown dims match anything), or `None` where they cannot.
fn broadcast_specs(a: &[Option<usize>], b: &[Option<usize>]) -> Option<ShapeSpec> {
    let rank = a.len().max(b.len());
    let at = |s: &[Option<usize>], i: usize| if i + s.len() < rank { Some(1) } else { s[i + s.len() - rank] };
    (0..rank)
        .map(|i| match (at(a, i), at(b, i)) {
            (Some(1), d) | (d, Some(1)) => Some(d),
            (Some(x), Some(y)) if x != y => None,
            (Some(x), _) | (_, Some(x)) => Some(Some(x)),
            (None, None) => Some(None),
        })
        .collect()
}

fn specs_text(inputs: &[ShapeSpec]) -> String {
    inputs.iter().map(|s| fmt_spec(s)).collect::<Vec<_>>().join(", ")
}

/// The merged mask: true where every given mask is.
fn and_masks(masks: &[Option<Tensor>]) -> Option<Tensor> {
    masks.iter().flatten().cloned().reduce(|a, b| a.logical_and(&b))
}

/// An all-true mask `[batch, steps]` for `x` (`[batch, steps, …]`), made from `x` so that
/// an unknown batch in a trace is no obstacle.
fn all_steps(x: &Tensor) -> Tensor {
    let features: Vec<i64> = (2..x.rank() as i64).collect();
    Tensor::ones_like(&x.sum(features, false)).cast(tensorjit_runtime::DType::Bool)
}

/// An elementwise merge of inputs of broadcastable shapes, made by [`Add::new`],
/// [`Subtract::new`], [`Multiply::new`], [`Average::new`], [`Maximum::new`] or
/// [`Minimum::new`].
#[derive(Clone)]
pub struct ElementwiseMerge {
    combine: Combine,
    core: Arc<LayerCore>,
}

/// The elementwise merges: how each combines its inputs (`Combine`), and a unit struct
/// of Keras' class name whose `new` makes the layer.
macro_rules! elementwise_merges {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {
        /// How the inputs of an elementwise merge combine.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Combine {
            $($name),*
        }

        $(
            $(#[$doc])*
            ///
            /// A name for the constructor, as Keras' class: `new` makes an [`ElementwiseMerge`].
            pub struct $name;

            impl $name {
                #[allow(clippy::new_ret_no_self)]
                pub fn new() -> ElementwiseMerge {
                    ElementwiseMerge { combine: Combine::$name, core: LayerCore::new(stringify!($name)) }
                }
            }
        )*
    };
}

elementwise_merges! {
    /// The sum of the inputs (Keras' `Add`, a residual connection).
    Add,
    /// The first input minus the second (Keras' `Subtract`: exactly two inputs).
    Subtract,
    /// The elementwise product of the inputs (Keras' `Multiply`, a gate).
    Multiply,
    /// The mean of the inputs (Keras' `Average`).
    Average,
    /// The elementwise maximum of the inputs (Keras' `Maximum`).
    Maximum,
    /// The elementwise minimum of the inputs (Keras' `Minimum`).
    Minimum,
}

impl ElementwiseMerge {
    with_name!();
}

impl Module for ElementwiseMerge {
    merge_methods!();

    fn input_count(&self) -> Option<usize> {
        (self.combine == Combine::Subtract).then_some(2)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    #[track_caller]
    fn output_shape_inputs(&self, inputs: &[ShapeSpec]) -> ShapeSpec {
        let merged = count_inputs(inputs.len(), self.combine == Combine::Subtract).and_then(|()| {
            let merged = inputs[1..].iter().try_fold(inputs[0].clone(), |acc, s| broadcast_specs(&acc, s));
            merged.ok_or_else(|| format!("inputs of shapes {} cannot be broadcast together", specs_text(inputs)))
        });
        or_raise(&self.core, merged)
    }

    #[track_caller]
    fn forward_inputs(&self, xs: &[Tensor], masks: &[Option<Tensor>], _training: bool) -> (Tensor, Option<Tensor>) {
        or_raise(&self.core, count_inputs(xs.len(), self.combine == Combine::Subtract));
        (self.combine.apply(xs), and_masks(masks))
    }
}

/// Joins the inputs along `axis` (Keras' `Concatenate`, by default the last axis); the
/// other axes must agree.
#[derive(Clone)]
pub struct Concatenate {
    axis: i64,
    core: Arc<LayerCore>,
}

impl Concatenate {
    /// Along the last axis.
    pub fn new() -> Concatenate {
        Concatenate::along(-1)
    }

    /// Along `axis` (negative from the end; 0, the batch axis, is refused when merged).
    pub fn along(axis: i64) -> Concatenate {
        Concatenate { axis, core: LayerCore::new("Concatenate") }
    }

    with_name!();

    fn axis_for(&self, rank: usize) -> Result<usize, String> {
        let axis = if self.axis < 0 { self.axis + rank as i64 } else { self.axis };
        if axis < 1 || axis >= rank as i64 {
            return Err(format!("axis {} is not an axis after the batch axis of rank-{rank} inputs", self.axis));
        }
        Ok(axis as usize)
    }

    /// The joined shape: the axis summed, the others agreeing.
    fn joined(&self, inputs: &[ShapeSpec]) -> Result<ShapeSpec, String> {
        count_inputs(inputs.len(), false)?;
        let rank = inputs[0].len();
        let axis = self.axis_for(rank)?;
        let mismatch = || {
            format!(
                "inputs must agree on every axis but {} (of rank {rank}), got shapes {}",
                self.axis,
                specs_text(inputs)
            )
        };
        let mut out = inputs[0].clone();
        for s in &inputs[1..] {
            if s.len() != rank {
                return Err(mismatch());
            }
            for (i, (o, d)) in out.iter_mut().zip(s).enumerate() {
                *o = match (i == axis, *o, *d) {
                    (true, Some(a), Some(b)) => Some(a + b),
                    (true, _, _) => None,
                    (false, Some(a), Some(b)) if a != b => return Err(mismatch()),
                    (false, a, b) => a.or(b),
                };
            }
        }
        Ok(out)
    }
}

impl Default for Concatenate {
    fn default() -> Self {
        Concatenate::new()
    }
}

impl Module for Concatenate {
    merge_methods!();

    fn input_count(&self) -> Option<usize> {
        None
    }

    fn supports_masking(&self) -> bool {
        true
    }

    #[track_caller]
    fn output_shape_inputs(&self, inputs: &[ShapeSpec]) -> ShapeSpec {
        or_raise(&self.core, self.joined(inputs))
    }

    #[track_caller]
    fn forward_inputs(&self, xs: &[Tensor], masks: &[Option<Tensor>], _training: bool) -> (Tensor, Option<Tensor>) {
        let axis = or_raise(&self.core, count_inputs(xs.len(), false).and_then(|()| self.axis_for(xs[0].rank())));
        let refs: Vec<&Tensor> = xs.iter().collect();
        let y = Tensor::concat(&refs, axis as i64);
        // A mask covers `[batch, steps]`: joined along the steps axis when the inputs
        // are, otherwise the steps agree and every input's mask must hold.
        let mask = if axis == 1 && masks.iter().any(Option::is_some) {
            let full: Vec<Tensor> =
                xs.iter().zip(masks).map(|(x, m)| m.clone().unwrap_or_else(|| all_steps(x))).collect();
            let refs: Vec<&Tensor> = full.iter().collect();
            Some(Tensor::concat(&refs, 1))
        } else {
            and_masks(masks)
        };
        (y, mask)
    }
}

/// The dot product of two inputs along an axis of each (Keras' `Dot`): `[b, n]·[b, n]`
/// gives `[b, 1]`; `[b, m, k]` and `[b, n, k]` along axes (2, 2) give `[b, m, n]`.
/// With `normalize`, the inputs are L2-normalised along those axes first (the cosine
/// similarity).
#[derive(Clone)]
pub struct Dot {
    axes: (i64, i64),
    normalize: bool,
    core: Arc<LayerCore>,
}

impl Dot {
    /// Along `axes.0` of the first input and `axes.1` of the second (negative from the
    /// end; the batch axis 0 is refused).
    pub fn new(axes: (i64, i64)) -> Dot {
        Dot { axes, normalize: false, core: LayerCore::new("Dot") }
    }

    /// L2-normalise both inputs along the dot's axes first (Keras' `normalize=True`).
    pub fn normalize(mut self, on: bool) -> Self {
        self.normalize = on;
        self
    }

    with_name!();

    /// The contracted axes, each after the batch axis of an input of rank 2 or 3.
    fn axes_for(&self, inputs: &[ShapeSpec]) -> Result<(usize, usize), String> {
        count_inputs(inputs.len(), true)?;
        let (a, b) = (&inputs[0], &inputs[1]);
        if !(2..=3).contains(&a.len()) || !(2..=3).contains(&b.len()) {
            return Err(format!("takes inputs of rank 2 or 3, got shapes {}", specs_text(inputs)));
        }
        let resolve = |axis: i64, rank: usize| {
            let ax = if axis < 0 { axis + rank as i64 } else { axis };
            let ok = ax >= 1 && ax < rank as i64;
            ok.then_some(ax as usize).ok_or_else(|| {
                format!("axes {:?} do not name non-batch axes of shapes {}", self.axes, specs_text(inputs))
            })
        };
        let (ia, ib) = (resolve(self.axes.0, a.len())?, resolve(self.axes.1, b.len())?);
        match (a[ia], b[ib]) {
            (Some(x), Some(y)) if x != y => {
                Err(format!("axis {ia} of {} and axis {ib} of {} differ ({x} vs {y})", fmt_spec(a), fmt_spec(b)))
            }
            _ => Ok((ia, ib)),
        }
    }
}

impl Module for Dot {
    merge_methods!();

    fn input_count(&self) -> Option<usize> {
        Some(2)
    }

    #[track_caller]
    fn output_shape_inputs(&self, inputs: &[ShapeSpec]) -> ShapeSpec {
        let (ia, ib) = or_raise(&self.core, self.axes_for(inputs));
        let kept = |s: &ShapeSpec, skip: usize| -> ShapeSpec {
            s.iter().enumerate().skip(1).filter(|(i, _)| *i != skip).map(|(_, d)| *d).collect()
        };
        let mut out: ShapeSpec = vec![inputs[0][0].or(inputs[1][0])];
        out.extend(kept(&inputs[0], ia));
        out.extend(kept(&inputs[1], ib));
        if out.len() == 1 {
            out.push(Some(1));
        }
        out
    }

    #[track_caller]
    fn forward_inputs(&self, xs: &[Tensor], _masks: &[Option<Tensor>], _training: bool) -> (Tensor, Option<Tensor>) {
        let specs: Vec<ShapeSpec> = xs.iter().map(crate::module::shape_spec).collect();
        let (ia, ib) = or_raise(&self.core, self.axes_for(&specs));
        let (a, b) = (&xs[0], &xs[1]);
        let (a, b) = if self.normalize {
            (a.l2_normalize(ia as i64, 1e-12), b.l2_normalize(ib as i64, 1e-12))
        } else {
            (a.clone(), b.clone())
        };
        // [b, m, k] @ [b, k, n]: the contracted axis last in `a`, first after the batch in `b`.
        let a = if a.rank() == 2 {
            a.expand_dims(1)
        } else if ia == 1 {
            a.transpose(1, 2)
        } else {
            a
        };
        let b = if b.rank() == 2 {
            b.expand_dims(2)
        } else if ib == 2 {
            b.transpose(1, 2)
        } else {
            b
        };
        let y = a.matmul(&b);
        // Drop the unit axes the rank-2 inputs brought in ([b, 1, 1] → [b, 1]).
        let y = match (xs[0].rank(), xs[1].rank()) {
            (2, 3) => y.squeeze(&[1]),
            (_, 2) => y.squeeze(&[2]),
            _ => y,
        };
        (y, None)
    }
}

//! The update rules with moment estimates: Adam (and AMSGrad), AdamW, Adamax, Nadam
//! and Lion, in Keras 3's formulation.

use tensorjit_runtime::{DType, Tensor, Variable};

use super::{Optimizer, OptimizerState, Step};
use crate::error::raise;

/// `base^t` as a scalar of `t`'s dtype.
fn power(base: f64, t: &Tensor) -> Tensor {
    Tensor::full([], base, t.dtype()).pow(t)
}

/// Adam's moments and parameters, shared by [`Adam`] and [`AdamW`].
#[derive(Clone, Copy)]
struct Moments {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    amsgrad: bool,
}

impl Moments {
    const DEFAULT: Moments = Moments { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false };

    fn slot_names(self) -> &'static [(&'static str, f64)] {
        if self.amsgrad {
            &[("m", 0.0), ("v", 0.0), ("v_hat", 0.0)]
        } else {
            &[("m", 0.0), ("v", 0.0)]
        }
    }

    /// `m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²` (AMSGrad: `v̂ ← max(v̂, v)`, used for
    /// `v`); `w ← w − lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)`.
    fn update(self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let [m, v] = [&step.slots[0], &step.slots[1]];
        let (b1, b2) = (self.beta_1, self.beta_2);
        let alpha = step.lr * &(1.0f64 - power(b2, step.t)).sqrt() / &(1.0f64 - power(b1, step.t));
        let new_m = &m.read() * b1 + grad * (1.0 - b1);
        let mut new_v = &v.read() * b2 + grad.square() * (1.0 - b2);
        m.assign(&new_m);
        v.assign(&new_v);
        if let Some(v_hat) = step.slots.get(2) {
            new_v = v_hat.read().maximum(&new_v);
            v_hat.assign(&new_v);
        }
        var.assign_sub(&new_m * &alpha / &(new_v.sqrt() + self.epsilon));
    }
}

/// An optimizer on [`Moments`]: its struct, builders and `Optimizer` impl.
macro_rules! moments_optimizer {
    ($(#[$doc:meta])* $name:ident, $decay:expr) => {
        $(#[$doc])*
        pub struct $name {
            moments: Moments,
            state: OptimizerState,
        }

        impl $name {
            pub fn new(learning_rate: f64) -> $name {
                let opt = $name { moments: Moments::DEFAULT, state: OptimizerState::new(stringify!($name), learning_rate) };
                let decay: Option<f64> = $decay;
                match decay {
                    Some(rate) => opt.weight_decay(rate),
                    None => opt,
                }
            }

            pub fn betas(mut self, beta_1: f64, beta_2: f64) -> Self {
                (self.moments.beta_1, self.moments.beta_2) = (beta_1, beta_2);
                self
            }

            pub fn epsilon(mut self, e: f64) -> Self {
                self.moments.epsilon = e;
                self
            }

            /// AMSGrad (Reddi et al., 2018): the denominator uses the largest `v` seen so far.
            pub fn amsgrad(mut self, on: bool) -> Self {
                self.moments.amsgrad = on;
                self
            }
        }

        impl Optimizer for $name {
            fn name(&self) -> &'static str {
                stringify!($name)
            }

            fn slot_names(&self) -> &'static [(&'static str, f64)] {
                self.moments.slot_names()
            }

            fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
                self.moments.update(var, grad, step)
            }

            fn state(&self) -> &OptimizerState {
                &self.state
            }
        }
    };
}

moments_optimizer!(
    /// Adam: `m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
    /// w ← w − lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)`; AMSGrad divides by the running maximum
    /// of `v` instead. β₁ 0.9, β₂ 0.999, ε 1e-7 (Keras' defaults).
    Adam, None
);

moments_optimizer!(
    /// AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, 0.004 unless
    /// [`weight_decay`](Optimizer::weight_decay) says otherwise (Keras' defaults: β₁ 0.9,
    /// β₂ 0.999, ε 1e-7).
    AdamW, Some(0.004)
);

/// Adamax, Adam with the infinity norm: `m ← β₁m + (1−β₁)g; u ← max(β₂u, |g|);
/// w ← w − lr·m/((1−β₁ᵗ)(u + ε))`.
pub struct Adamax {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    state: OptimizerState,
}

impl Adamax {
    /// β₁ 0.9, β₂ 0.999, ε 1e-7 (Keras' defaults).
    pub fn new(learning_rate: f64) -> Adamax {
        Adamax { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, state: OptimizerState::new("Adamax", learning_rate) }
    }

    pub fn betas(mut self, beta_1: f64, beta_2: f64) -> Self {
        (self.beta_1, self.beta_2) = (beta_1, beta_2);
        self
    }

    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }
}

impl Optimizer for Adamax {
    fn name(&self) -> &'static str {
        "Adamax"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        &[("m", 0.0), ("u", 0.0)]
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let [m, u] = [&step.slots[0], &step.slots[1]];
        let new_m = &m.read() * self.beta_1 + grad * (1.0 - self.beta_1);
        let new_u = (&u.read() * self.beta_2).maximum(grad.abs());
        m.assign(&new_m);
        u.assign(&new_u);
        let bias = 1.0f64 - power(self.beta_1, step.t);
        var.assign_sub(step.lr * &new_m / &(&bias * &(new_u + self.epsilon)));
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

/// Nadam, Adam with Nesterov momentum and Dozat's momentum schedule
/// `μₜ = β₁(1 − ½·0.96ᵗ)`: `m̂ = μₜ₊₁m/(1 − ∏ᵗ⁺¹μ) + (1 − μₜ)g/(1 − ∏ᵗμ)`,
/// `v̂ = v/(1 − β₂ᵗ)`, `w ← w − lr·m̂/(√v̂ + ε)`. The product of the μ is one scalar
/// variable of the optimizer (`Nadam/u_product`), advanced once per update.
pub struct Nadam {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    state: OptimizerState,
}

impl Nadam {
    /// β₁ 0.9, β₂ 0.999, ε 1e-7 (Keras' defaults).
    pub fn new(learning_rate: f64) -> Nadam {
        let state = OptimizerState::with_scalars("Nadam", learning_rate, &[("u_product", 1.0)]);
        Nadam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, state }
    }

    pub fn betas(mut self, beta_1: f64, beta_2: f64) -> Self {
        (self.beta_1, self.beta_2) = (beta_1, beta_2);
        self
    }

    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }

    /// `μₜ` for the step number `t` (a scalar of any float dtype).
    fn mu(&self, t: &Tensor) -> Tensor {
        (1.0f64 - power(0.96, t) * 0.5) * self.beta_1
    }
}

impl Optimizer for Nadam {
    fn name(&self) -> &'static str {
        "Nadam"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        &[("m", 0.0), ("v", 0.0)]
    }

    fn begin_step(&self, t: &Tensor) {
        let u = self.state.scalar(0);
        u.assign(&u.read() * &self.mu(&t.cast(DType::F64)));
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let [m, v] = [&step.slots[0], &step.slots[1]];
        let (b1, b2) = (self.beta_1, self.beta_2);
        let u_t = self.mu(step.t);
        let u_next = self.mu(&(step.t + 1.0));
        let u_product = self.state.scalar(0).read().cast(step.t.dtype());
        let u_product_next = &u_product * &u_next;
        let new_m = &m.read() * b1 + grad * (1.0 - b1);
        let new_v = &v.read() * b2 + grad.square() * (1.0 - b2);
        m.assign(&new_m);
        v.assign(&new_v);
        let m_hat = &u_next * &new_m / &(1.0f64 - &u_product_next) + (1.0f64 - &u_t) * grad / &(1.0f64 - &u_product);
        let v_hat = new_v / &(1.0f64 - power(b2, step.t));
        var.assign_sub(m_hat * step.lr / &(v_hat.sqrt() + self.epsilon));
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

/// Lion (Chen et al., 2023), the sign of an interpolated momentum:
/// `w ← w − lr·sign(β₁m + (1−β₁)g); m ← β₂m + (1−β₂)g` (β₁ 0.9, β₂ 0.99). Its updates
/// have a larger norm than Adam's: learning rates 3–10× smaller are usual, with a weight
/// decay as much larger.
pub struct Lion {
    beta_1: f64,
    beta_2: f64,
    state: OptimizerState,
}

impl Lion {
    /// β₁ 0.9, β₂ 0.99 (Keras' defaults).
    pub fn new(learning_rate: f64) -> Lion {
        Lion { beta_1: 0.9, beta_2: 0.99, state: OptimizerState::new("Lion", learning_rate) }
    }

    /// `beta_1` in (0, 1] (0 would make it sign SGD).
    #[track_caller]
    pub fn betas(mut self, beta_1: f64, beta_2: f64) -> Self {
        if !(beta_1 > 0.0 && beta_1 <= 1.0) {
            raise("Lion", format!("beta_1 must be in (0, 1] (0 makes Lion sign SGD), got {beta_1}"));
        }
        (self.beta_1, self.beta_2) = (beta_1, beta_2);
        self
    }
}

impl Optimizer for Lion {
    fn name(&self) -> &'static str {
        "Lion"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        &[("momentum", 0.0)]
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let m = &step.slots[0];
        let old = m.read();
        var.assign_sub(step.lr * &(&old * self.beta_1 + grad * (1.0 - self.beta_1)).sign());
        m.assign(&old * self.beta_2 + grad * (1.0 - self.beta_2));
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

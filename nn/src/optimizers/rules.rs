//! The update rules, in Keras' formulation.

use tensorjit_runtime::{Tensor, Variable};

use super::{Optimizer, OptimizerState, Step};

/// Gradient descent, with optional momentum and Nesterov momentum:
/// `v ← μ·v − lr·g; w ← w + v` (Nesterov: `w ← w + μ·v − lr·g`).
pub struct SGD {
    momentum: f64,
    nesterov: bool,
    state: OptimizerState,
}

impl SGD {
    pub fn new(learning_rate: f64) -> SGD {
        SGD { momentum: 0.0, nesterov: false, state: OptimizerState::new("SGD", learning_rate) }
    }

    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }

    pub fn nesterov(mut self, on: bool) -> Self {
        self.nesterov = on;
        self
    }
}

impl Optimizer for SGD {
    fn name(&self) -> &'static str {
        "SGD"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        if self.momentum > 0.0 {
            &[("momentum", 0.0)]
        } else {
            &[]
        }
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let lr_g = step.lr * grad;
        let Some(v) = step.slots.first() else {
            var.assign_sub(&lr_g);
            return;
        };
        let new_v = &v.read() * self.momentum - &lr_g;
        v.assign(&new_v);
        if self.nesterov {
            var.assign_add(&new_v * self.momentum - &lr_g);
        } else {
            var.assign_add(&new_v);
        }
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

/// Adam: `m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// w ← w − lr·√(1−β₂ᵗ)/(1−β₁ᵗ) · m/(√v + ε)`.
pub struct Adam {
    beta_1: f64,
    beta_2: f64,
    epsilon: f64,
    state: OptimizerState,
}

impl Adam {
    /// β₁ 0.9, β₂ 0.999, ε 1e-7 (Keras' defaults).
    pub fn new(learning_rate: f64) -> Adam {
        Adam { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, state: OptimizerState::new("Adam", learning_rate) }
    }

    pub fn betas(mut self, beta_1: f64, beta_2: f64) -> Self {
        self.beta_1 = beta_1;
        self.beta_2 = beta_2;
        self
    }

    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }
}

impl Optimizer for Adam {
    fn name(&self) -> &'static str {
        "Adam"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        &[("m", 0.0), ("v", 0.0)]
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let [m, v] = [&step.slots[0], &step.slots[1]];
        let (b1, b2) = (self.beta_1, self.beta_2);
        let new_m = &m.read() * b1 + grad * (1.0 - b1);
        let new_v = &v.read() * b2 + grad.square() * (1.0 - b2);
        m.assign(&new_m);
        v.assign(&new_v);
        let bias1 = 1.0f64 - Tensor::full([], b1, step.t.dtype()).pow(step.t);
        let bias2 = 1.0f64 - Tensor::full([], b2, step.t.dtype()).pow(step.t);
        let lr_t = step.lr * &bias2.sqrt() / &bias1;
        var.assign_sub(&lr_t * &new_m / &(new_v.sqrt() + self.epsilon));
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

/// Adagrad: `a ← a + g²; w ← w − lr·g/(√a + ε)`, accumulators starting at 0.1.
pub struct Adagrad {
    epsilon: f64,
    state: OptimizerState,
}

impl Adagrad {
    pub fn new(learning_rate: f64) -> Adagrad {
        Adagrad { epsilon: 1e-7, state: OptimizerState::new("Adagrad", learning_rate) }
    }
}

impl Optimizer for Adagrad {
    fn name(&self) -> &'static str {
        "Adagrad"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        &[("accumulator", 0.1)]
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let acc = &step.slots[0];
        let new_acc = &acc.read() + &grad.square();
        acc.assign(&new_acc);
        var.assign_sub(step.lr * grad / &(new_acc.sqrt() + self.epsilon));
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

/// RMSprop: `v ← ρv + (1−ρ)g²; w ← w − lr·g/(√v + ε)` (ρ 0.9).
pub struct RMSprop {
    rho: f64,
    epsilon: f64,
    state: OptimizerState,
}

impl RMSprop {
    pub fn new(learning_rate: f64) -> RMSprop {
        RMSprop { rho: 0.9, epsilon: 1e-7, state: OptimizerState::new("RMSprop", learning_rate) }
    }

    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }
}

impl Optimizer for RMSprop {
    fn name(&self) -> &'static str {
        "RMSprop"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        &[("rms", 0.0)]
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let rms = &step.slots[0];
        let new_rms = &rms.read() * self.rho + grad.square() * (1.0 - self.rho);
        rms.assign(&new_rms);
        var.assign_sub(step.lr * grad / &(new_rms.sqrt() + self.epsilon));
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

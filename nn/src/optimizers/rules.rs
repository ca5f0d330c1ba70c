//! The update rules without moment estimates' bias corrections (SGD, Adagrad,
//! RMSprop, Adadelta), in Keras 3's formulation.

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

/// Adagrad: `a ← a + g²; w ← w − lr·g/√(a + ε)`, accumulators starting at 0.1.
pub struct Adagrad {
    epsilon: f64,
    state: OptimizerState,
}

impl Adagrad {
    /// ε 1e-7 (Keras' default).
    pub fn new(learning_rate: f64) -> Adagrad {
        Adagrad { epsilon: 1e-7, state: OptimizerState::new("Adagrad", learning_rate) }
    }

    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
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
        var.assign_sub(step.lr * grad / &(new_acc + self.epsilon).sqrt());
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

/// RMSprop: `v ← ρv + (1−ρ)g²; Δ = lr·g/√(v + ε)` (ρ 0.9, ε 1e-7); centered, the
/// mean gradient `ḡ ← ρḡ + (1−ρ)g` is taken out: `Δ = lr·g/√(v − ḡ² + ε)`; with
/// momentum μ, `s ← μs + Δ; w ← w − s`, else `w ← w − Δ`.
pub struct RMSprop {
    rho: f64,
    momentum: f64,
    centered: bool,
    epsilon: f64,
    state: OptimizerState,
}

impl RMSprop {
    pub fn new(learning_rate: f64) -> RMSprop {
        RMSprop {
            rho: 0.9,
            momentum: 0.0,
            centered: false,
            epsilon: 1e-7,
            state: OptimizerState::new("RMSprop", learning_rate),
        }
    }

    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    pub fn momentum(mut self, m: f64) -> Self {
        self.momentum = m;
        self
    }

    pub fn centered(mut self, on: bool) -> Self {
        self.centered = on;
        self
    }

    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }
}

impl Optimizer for RMSprop {
    fn name(&self) -> &'static str {
        "RMSprop"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &[("rms", 0.0)],
            (true, false) => &[("rms", 0.0), ("momentum", 0.0)],
            (false, true) => &[("rms", 0.0), ("average_gradient", 0.0)],
            (true, true) => &[("rms", 0.0), ("momentum", 0.0), ("average_gradient", 0.0)],
        }
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let rms = &step.slots[0];
        let rho = self.rho;
        let new_rms = &rms.read() * rho + grad.square() * (1.0 - rho);
        rms.assign(&new_rms);
        let denominator = match step.slots.get(1 + usize::from(self.momentum > 0.0)) {
            Some(avg) => {
                let new_avg = &avg.read() * rho + grad * (1.0 - rho);
                avg.assign(&new_avg);
                &new_rms - &new_avg.square() + self.epsilon
            }
            None => new_rms + self.epsilon,
        };
        let increment = step.lr * grad / &denominator.sqrt();
        if self.momentum > 0.0 {
            let s = &step.slots[1];
            let new_s = &s.read() * self.momentum + &increment;
            s.assign(&new_s);
            var.assign_sub(&new_s);
        } else {
            var.assign_sub(&increment);
        }
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

/// Adadelta: `a ← ρa + (1−ρ)g²; Δ = −√(d + ε)/√(a + ε) · g; d ← ρd + (1−ρ)Δ²;
/// w ← w + lr·Δ` (ρ 0.95, ε 1e-7; Keras' learning rate 0.001 by default, 1.0 in the
/// paper).
pub struct Adadelta {
    rho: f64,
    epsilon: f64,
    state: OptimizerState,
}

impl Adadelta {
    pub fn new(learning_rate: f64) -> Adadelta {
        Adadelta { rho: 0.95, epsilon: 1e-7, state: OptimizerState::new("Adadelta", learning_rate) }
    }

    pub fn rho(mut self, rho: f64) -> Self {
        self.rho = rho;
        self
    }

    pub fn epsilon(mut self, e: f64) -> Self {
        self.epsilon = e;
        self
    }
}

impl Optimizer for Adadelta {
    fn name(&self) -> &'static str {
        "Adadelta"
    }

    fn slot_names(&self) -> &'static [(&'static str, f64)] {
        &[("accumulated_grad", 0.0), ("accumulated_delta_var", 0.0)]
    }

    fn update(&self, var: &Variable, grad: &Tensor, step: &Step<'_>) {
        let [acc_g, acc_d] = [&step.slots[0], &step.slots[1]];
        let (rho, eps) = (self.rho, self.epsilon);
        let new_g = &acc_g.read() * rho + grad.square() * (1.0 - rho);
        acc_g.assign(&new_g);
        let old_d = acc_d.read();
        let delta = -((&old_d + eps).sqrt() * grad / &(new_g + eps).sqrt());
        acc_d.assign(&old_d * rho + delta.square() * (1.0 - rho));
        var.assign_add(step.lr * &delta);
    }

    fn state(&self) -> &OptimizerState {
        &self.state
    }
}

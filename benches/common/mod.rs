//! The deterministic data generator of shared/WORKLOADS.md, implemented exactly.
#![allow(dead_code)]

use tensorjit::prelude::*;

/// `uniform(seed, shape, lo, hi)`: splitmix64 of `(seed << 32) | i`, 24-bit uniform,
/// computed in f64 and rounded once to f32.
pub fn uniform(seed: u64, shape: &[usize], lo: f32, hi: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n as u64)
        .map(|i| {
            let mut z = (seed << 32) | i;
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let u = (z >> 40) as f64 / 16_777_216.0;
            (lo as f64 + (hi - lo) as f64 * u) as f32
        })
        .collect();
    Tensor::from_vec(v, shape).expect("shape matches")
}

/// W2/W3: `tanh(x*y + 0.5) * sigmoid(x - y) + relu(x)`.
pub fn chain(x: &Tensor, y: &Tensor) -> Tensor {
    (x * y + 0.5).tanh() * (x - y).sigmoid() + x.relu()
}

/// W1: `x*2 + 1`.
pub fn dispatch(x: &Tensor) -> Tensor {
    x * 2.0 + 1.0
}

pub fn checksum(t: &Tensor) -> f64 {
    let host = t.to(Device::Cpu).expect("the result copies to the host");
    host.to_vec::<f32>().expect("f32").iter().map(|&v| v as f64).sum()
}

/// MLP parameters of WORKLOADS.md: W1 `glorot(11, 784, 512)`, b1 `uniform(12, [512])`,
/// W2 `glorot(13, 512, 512)`, b2, W3 `glorot(15, 512, 10)`, b3.
pub fn mlp_params() -> Vec<Tensor> {
    let glorot = |seed, i: usize, o: usize| {
        let a = (6.0f64 / (i + o) as f64).sqrt() as f32;
        uniform(seed, &[i, o], -a, a)
    };
    vec![
        glorot(11, 784, 512),
        uniform(12, &[512], -0.1, 0.1),
        glorot(13, 512, 512),
        uniform(14, &[512], -0.1, 0.1),
        glorot(15, 512, 10),
        uniform(16, &[10], -0.1, 0.1),
    ]
}

/// The MLP's logits: two relu dense layers and a linear one.
pub fn mlp_logits(x: &Tensor, p: &[Tensor]) -> Tensor {
    let h = (x.matmul(&p[0]) + &p[1]).relu();
    let h = (h.matmul(&p[2]) + &p[3]).relu();
    h.matmul(&p[4]) + &p[5]
}

/// W5's labels: one-hot of `r mod 10` for row r of the batch of 128.
pub fn labels() -> Tensor {
    let idx = Tensor::from_vec((0..128).map(|r| r % 10).collect::<Vec<i64>>(), [128]).expect("128 labels");
    idx.one_hot(10, DType::F32)
}

/// W5's parameters as variables (`mlp/param_i`), wherever `params` live.
pub fn mlp_variables(params: &[Tensor]) -> Vec<Variable> {
    params.iter().enumerate().map(|(i, p)| Variable::new(p.clone(), format!("mlp/param_{i}"))).collect()
}

/// W5: one SGD step (lr 0.01) on the mean cross-entropy of the MLP; returns the loss.
pub fn mlp_train_step(vars: &[Variable], x: &Tensor, y: &Tensor) -> Tensor {
    let tape = GradientTape::new();
    let p: Vec<Tensor> = vars.iter().map(Variable::read).collect();
    let loss = (y * &mlp_logits(x, &p).log_softmax(-1)).sum(-1, false).neg().mean_all();
    for (v, g) in vars.iter().zip(tape.gradient(&loss, vars)) {
        if let Some(g) = g {
            v.assign_sub(&g * 0.01);
        }
    }
    loss
}

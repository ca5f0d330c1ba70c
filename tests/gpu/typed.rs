//! Eager GPU ops on bool, i32, i64 and f64 tensors, and f32 ops with a bool mask: on a GPU
//! they give the CPU's bytes, leave their results on the GPU, and none of them is
//! computed on the host (`host_fallbacks`). An eager training step (W5) and an accuracy
//! computation run without a host fallback. Without a GPU these tests say so and pass:
//! the same kernels' results are checked on every machine by tests/ptx_typed.rs.

use crate::common::gpu::{close_f64, first_gpu, same};
use crate::common::{self, rand_f32, rand_vec};
use crate::workloads;
use tensorjit::prelude::*;
use tensorjit_jit::cuda::backend::host_fallbacks;

/// Values on a half-unit grid (ties for comparisons and arg-reductions) with NaN, ±∞,
/// ±0 and values beyond i32's range mixed in.
fn grid(seed: u64, dims: &[usize]) -> Tensor {
    let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 3e9, -3e9, 2.5];
    let r = rand_vec(seed, dims.iter().product(), -3.0, 3.0);
    let v: Vec<f32> = r
        .iter()
        .enumerate()
        .map(|(i, x)| if i % 11 == 5 { specials[i / 11 % 8] } else { (x * 2.0).round() as f32 / 2.0 })
        .collect();
    Tensor::from_vec(v, dims.to_vec()).unwrap()
}

#[test]
fn typed_ops_on_the_gpu_give_the_cpus_bytes_without_the_host() {
    let Some(gpu) = first_gpu("typed GPU ops") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let (x, y) = (grid(1, &[37, 129]), grid(2, &[37, 129]));
    let (row, col) = (grid(3, &[129]), grid(4, &[37, 1]));
    let (gx, gy, grow, gcol) = (on(&x), on(&y), on(&row), on(&col));
    let before = host_fallbacks();

    same("x > y", &gx.gt(&gy), &x.gt(&y));
    same("x < 0", &gx.lt(0.0), &x.lt(0.0));
    same("x == row", &gx.eq(&grow), &x.eq(&row));
    same("x != col (NaN is unequal)", &gx.ne(&gcol), &x.ne(&col));
    same("x >= y", &gx.ge(&gy), &x.ge(&y));
    same("col <= x", &gcol.le(&gx), &col.le(&x));
    let (m, n) = (x.gt(&y), x.lt(&row));
    let (gm, gn) = (gx.gt(&gy), gx.lt(&grow));
    same("and", &gm.logical_and(&gn), &m.logical_and(&n));
    same("or", &gm.logical_or(&gn), &m.logical_or(&n));
    same("not", &gm.logical_not(), &m.logical_not());
    same("mask == mask", &gm.eq(&gn), &m.eq(&n));
    same("where", &Tensor::where_(&gm, &gx, &gy), &Tensor::where_(&m, &x, &y));
    same("where with a scalar", &gx.select(&gn, 0.0), &x.select(&n, 0.0));
    same("sign", &gx.sign(), &x.sign());
    same("pow", &gx.pow(&gy), &x.pow(&y));
    same("sin", &gx.sin(), &x.sin());
    same("cos", &gx.cos(), &x.cos());
    same("erf", &gx.erf(), &x.erf());
    same("floormod", &(&gx % &gy), &(&x % &y));
    let (x64, gx64) = (x.cast(DType::F64), gx.cast(DType::F64));
    same("erf of f64", &gx64.erf(), &x64.erf());
    same("floormod of f64", &gx64.floormod(gy.cast(DType::F64)), &x64.floormod(y.cast(DType::F64)));
    let (i, gi) = (x.cast(DType::I64), gx.cast(DType::I64));
    same("floormod of i64", &(&gi % &gy.cast(DType::I64)), &(&i % &y.cast(DType::I64)));
    // Large arguments: the kernels' branch to the exact (Payne–Hanek) reduction.
    let exps = rand_vec(9, 4099, 20.0, 127.9);
    let big: Vec<f64> = exps.iter().enumerate().map(|(i, e)| if i % 2 == 0 { e.exp2() } else { -e.exp2() }).collect();
    for t in [
        Tensor::from_vec(big.iter().map(|v| *v as f32).collect::<Vec<_>>(), [4099]).unwrap(),
        Tensor::from_vec(big.clone(), [4099]).unwrap(),
    ] {
        let g = on(&t);
        same(&format!("sin of large {}", t.dtype()), &g.sin(), &t.sin());
        same(&format!("cos of large {}", t.dtype()), &g.cos(), &t.cos());
    }
    same("pow of a scalar base", &Tensor::scalar(0.9f32).pow(gx.abs()), &Tensor::scalar(0.9f32).pow(x.abs()));
    same("floor", &gx.floor(), &x.floor());
    same("ceil", &gx.ceil(), &x.ceil());
    for to in [DType::I32, DType::I64, DType::Bool, DType::F32] {
        same(&format!("f32 as {to}"), &gx.cast(to), &x.cast(to));
        let (i, gi) = (x.cast(DType::I64), gx.cast(DType::I64));
        same(&format!("i64 as {to}"), &gi.cast(to), &i.cast(to));
        let (i, gi) = (x.cast(DType::I32), gx.cast(DType::I32));
        same(&format!("i32 as {to}"), &gi.cast(to), &i.cast(to));
        same(&format!("bool as {to}"), &gm.cast(to), &m.cast(to));
    }
    let ints = x.cast(DType::I32);
    same("i32 < i32", &on(&ints).lt(gy.cast(DType::I32)), &ints.lt(y.cast(DType::I32)));
    let (ia, ib) = (x.cast(DType::I64), y.cast(DType::I64));
    let (gia, gib) = (on(&ia), on(&ib));
    same("i64 + i64 (wrapping)", &(&gia + &gib), &(&ia + &ib));
    same("i64 * i64 (wrapping)", &(&gia * &gib), &(&ia * &ib));
    same("i64 floor division (by 0 too)", &gia.floordiv(&gib), &ia.floordiv(&ib));
    same("f32 floor division", &gx.floordiv(&gy), &x.floordiv(&y));
    same(
        "i32 maximum",
        &gia.cast(DType::I32).maximum(gib.cast(DType::I32)),
        &ia.cast(DType::I32).maximum(ib.cast(DType::I32)),
    );

    // Index ops: labels with out-of-range values, gathers along both axes, arg-reductions.
    let labels: Vec<i64> = rand_vec(5, 37, -2.0, 12.0).iter().map(|v| v.floor() as i64).collect();
    let labels = Tensor::from_vec(labels, [37]).unwrap();
    let gl = on(&labels);
    same("one_hot", &gl.one_hot(10, DType::F32), &labels.one_hot(10, DType::F32));
    same(
        "one_hot i32 → bool",
        &gl.cast(DType::I32).one_hot(10, DType::Bool),
        &labels.cast(DType::I32).one_hot(10, DType::Bool),
    );
    let idx = Tensor::from_vec(vec![3i64, -1, 36, 0, 40, 3], [2, 3]).unwrap();
    // Out-of-range indices on a device are not read back to be checked: they gather
    // zeros there (the CPU refuses them, the method too when they are host values).
    same("gather rows", &gx.gather(&on(&idx), 0), &common::gather_or_zeros(&x, &idx, 0));
    same("gather columns", &gx.gather(&on(&idx), 1), &common::gather_or_zeros(&x, &idx, 1));
    same("argmax rows", &gx.argmax(1), &x.argmax(1));
    same("argmin columns", &gx.argmin(0), &x.argmin(0));
    same("argmax of i64", &gx.cast(DType::I64).argmax(0), &x.cast(DType::I64).argmax(0));
    // Running sums in the CPU's order (finite values: the NaN an ∞ − ∞ makes has other
    // bits on a GPU).
    let r = rand_f32(7, &[37, 129], -1.0, 1.0);
    let gr = on(&r);
    let back = CumsumOptions { exclusive: true, reverse: true };
    same("cumsum rows", &gr.cumsum(1), &r.cumsum(1));
    same("cumsum columns, exclusive, reversed", &gr.cumsum_with(0, back), &r.cumsum_with(0, back));
    same("cumsum of f64", &gr.cast(DType::F64).cumsum(-1), &r.cast(DType::F64).cumsum(-1));
    same("cumsum of i64", &gx.cast(DType::I64).cumsum(1), &x.cast(DType::I64).cumsum(1));
    same("cumprod rows", &gr.cumprod(1), &r.cumprod(1));
    same("cumprod columns, exclusive, reversed", &gr.cumprod_with(0, back), &r.cumprod_with(0, back));
    same("cumprod of f64", &gr.cast(DType::F64).cumprod(-1), &r.cast(DType::F64).cumprod(-1));
    same("cumprod of i32", &gx.cast(DType::I32).cumprod(1), &x.cast(DType::I32).cumprod(1));
    // The gradient of a running product (zeros in the input: the exact rule's branches).
    let zeros = r.select(&r.abs().ge(0.1), 0.0);
    let grad = |t: &Tensor| {
        let tape = GradientTape::new();
        tape.watch(t);
        let loss = t.cumprod(1).sum_all();
        tape.gradient(&loss, &[t]).remove(0).expect("a gradient")
    };
    same("cumprod gradient", &grad(&on(&zeros)), &grad(&zeros));
    // Accuracy, as the examples compute it.
    let logits = rand_f32(6, &[37, 10], -1.0, 1.0);
    let acc = |l: &Tensor, y: &Tensor| l.argmax(1).eq(y).cast(DType::F32).mean_all();
    same("accuracy", &acc(&on(&logits), &gl), &acc(&logits, &labels));
    assert_eq!(host_fallbacks(), before, "every op above ran on the GPU");
}

#[test]
fn an_eager_training_step_on_the_gpu_runs_no_op_on_the_host() {
    let Some(gpu) = first_gpu("eager GPU training step") else { return };
    let params = workloads::mlp_params();
    let gpu_params: Vec<Tensor> = params.iter().map(|p| p.to(gpu).unwrap()).collect();
    let (cpu_vars, gpu_vars) = (workloads::mlp_variables(&params), workloads::mlp_variables(&gpu_params));
    let (y, gy) = (workloads::labels(), workloads::labels().to(gpu).unwrap());
    for seed in 0..2 {
        let x = rand_f32(20 + seed, &[128, 784], 0.0, 1.0);
        let gx = x.to(gpu).unwrap();
        let before = host_fallbacks();
        let loss = workloads::mlp_train_step(&gpu_vars, &gx, &gy);
        assert_eq!(host_fallbacks(), before, "step {seed}: the relu gradients' masks and selects ran on the GPU");
        let cpu_loss = workloads::mlp_train_step(&cpu_vars, &x, &y);
        let (g, c) = (common::f32s(&loss.to(Device::Cpu).unwrap())[0], common::f32s(&cpu_loss)[0]);
        assert!((g - c).abs() <= 1e-4 * c.abs(), "step {seed}: GPU loss {g} vs CPU {c}");
    }
}

#[test]
fn slices_concatenations_and_scatters_run_on_the_gpu_with_the_cpus_bytes() {
    let Some(gpu) = first_gpu("GPU data movement") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let x = grid(30, &[6, 9, 5]);
    let gx = on(&x);
    let before = host_fallbacks();
    let s = [SliceArg::new(Some(1), Some(5), 2), SliceArg::new(None, None, -1), SliceArg::new(Some(-3), None, 1)];
    same("slice", &gx.slice(&s), &x.slice(&s));
    same("narrow", &gx.narrow(1, 2, 4), &x.narrow(1, 2, 4));
    let i = x.cast(DType::I64);
    same("slice of i64", &on(&i).slice(&s), &i.slice(&s));
    same("permute of i64", &on(&i).permute(&[2, 0, 1]), &i.permute(&[2, 0, 1]));
    let m = x.gt(0.0);
    same(
        "broadcast of bool",
        &on(&m.narrow(0, 0, 1)).broadcast_to([4, 9, 5]),
        &m.narrow(0, 0, 1).broadcast_to([4, 9, 5]),
    );
    let (a, b) = (grid(31, &[6, 2, 5]), grid(32, &[6, 4, 5]));
    same("concat", &Tensor::concat(&[&on(&a), &gx, &on(&b)], 1), &Tensor::concat(&[&a, &x, &b], 1));
    same(
        "stack of bools",
        &Tensor::stack(&[&on(&m), &on(&m.logical_not())], 0),
        &Tensor::stack(&[&m, &m.logical_not()], 0),
    );
    // Gradients: a slice's (scatter into zeros) and a gather's (scatter_add of
    // duplicate indices, in the CPU's order).
    let idx = Tensor::from_vec(vec![2i64, 0, 2, 7, 2, 8, 5], [7]).unwrap();
    let grads = |x: &Tensor, idx: &Tensor| {
        let v = Variable::new(x.clone(), "x");
        let tape = GradientTape::new();
        let y = (v.read().slice(&s).square().sum_all()) + (v.read().gather(idx, 1).tanh().sum_all());
        tape.gradient(&y, &[&v]).remove(0).expect("a gradient")
    };
    same("slice and gather gradients", &grads(&gx, &on(&idx)), &grads(&x, &idx));
    // Segment sums and means (a scatter-add; negative ids dropped) and their gradient.
    let seg = Tensor::from_vec(vec![3i64, -1, 0, 3, 1, 3], [6]).unwrap();
    let pool = |x: &Tensor, seg: &Tensor| {
        let v = Variable::new(x.clone(), "x");
        let tape = GradientTape::new();
        let y = v.read().unsorted_segment_sum(seg, 5) + v.read().unsorted_segment_mean(seg, 5).exp();
        let g = tape.gradient(&y.sum_all(), &[&v]).remove(0).expect("a gradient");
        Tensor::concat(&[&y.reshape([-1]), &g.reshape([-1])], 0)
    };
    same("segment sum and mean with their gradient", &pool(&gx, &on(&seg)), &pool(&x, &seg));
    assert_eq!(host_fallbacks(), before, "every op above ran on the GPU");
}

#[test]
fn seeded_dropout_masks_are_drawn_on_the_gpu_with_the_cpus_bits() {
    let Some(gpu) = first_gpu("GPU random draws") else { return };
    let before = host_fallbacks();
    for (seed, counter, shape) in [(3u64, 0i64, vec![128, 64]), (11, 41, vec![7]), (u64::MAX, -5, vec![3, 5, 2])] {
        let c = Tensor::scalar(counter);
        let cpu = tensorjit::random::stateless_uniform(shape.clone(), -1.0, 2.0, DType::F32, seed, &c);
        let on_gpu = tensorjit::random::stateless_uniform(shape, -1.0, 2.0, DType::F32, seed, &c.to(gpu).unwrap());
        same(&format!("stateless uniform, seed {seed}, counter {counter}"), &on_gpu, &cpu);
    }
    assert_eq!(host_fallbacks(), before, "the draws ran on the GPU");
    // A seeded Dropout on a device model: its counter and masks stay there.
    use tensorjit::nn::prelude::*;
    let x = rand_f32(40, &[16, 32], -1.0, 1.0);
    let run = |device: Device| {
        tensorjit::nn::reset_names();
        let d = Dropout::new(0.3).with_seed(9);
        let x = x.to(device).unwrap();
        (0..3).map(|_| d.call(&x, true)).collect::<Vec<_>>()
    };
    let cpu = run(Device::Cpu);
    let before = host_fallbacks();
    let on_gpu = run(gpu);
    assert_eq!(host_fallbacks(), before, "dropout ran on the GPU: counter, draw, mask");
    for (i, (g, c)) in on_gpu.iter().zip(&cpu).enumerate() {
        same(&format!("dropout call {i}"), g, c);
    }
}

#[test]
fn a_keras_model_with_adam_and_dropout_trains_on_the_gpu_without_the_host() {
    let Some(gpu) = first_gpu("GPU model training") else { return };
    use tensorjit::nn::prelude::*;
    let x = rand_f32(50, &[64, 12], -1.0, 1.0);
    let y = Tensor::from_vec((0..64).map(|i| (i * 5 % 4) as i64).collect::<Vec<_>>(), [64]).unwrap();
    for run_eagerly in [true, false] {
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![
            Dense::new(16).activation(Activation::Relu).boxed(),
            Dropout::new(0.2).with_seed(4).boxed(),
            Dense::new(4).boxed(),
        ])
        .on_device(gpu)
        .unwrap()
        .with_input_shape(&[12]);
        model.compile(
            Adam::new(0.01),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &[Metric::Accuracy],
            run_eagerly,
        );
        let opts = FitOptions { epochs: 2, batch_size: 16, shuffle: Some(2), verbose: false, ..FitOptions::default() };
        let before = host_fallbacks();
        let history = model.fit(&x, &y, &opts).unwrap();
        assert_eq!(
            host_fallbacks(),
            before,
            "run_eagerly={run_eagerly}: Adam's bias corrections (pow), the dropout masks, the metrics all ran on the GPU"
        );
        let losses = history.get("loss");
        assert!(!losses.is_empty() && losses.iter().all(|v| v.is_finite()), "{losses:?}");
    }
}

#[test]
fn integer_reductions_powers_products_and_fills_run_on_the_gpu() {
    use tensorjit::ops::Op;
    let Some(gpu) = first_gpu("integer reductions, powers, products and fills") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let x = grid(7, &[6, 33, 5]);
    let before = host_fallbacks();
    for dtype in [DType::I32, DType::I64] {
        // Values at the types' limits mixed in (±∞ and 3e9 saturate): sums and products wrap.
        let (i, gi) = (x.cast(dtype), on(&x).cast(dtype));
        let what = |op: &str| format!("{op} of {dtype}");
        same(&what("neg"), &gi.neg(), &i.neg());
        same(&what("abs"), &gi.abs(), &i.abs());
        same(&what("sign"), &gi.sign(), &i.sign());
        same(&what("square"), &gi.square(), &i.square());
        same(&what("relu"), &gi.relu(), &i.relu());
        let e = grid(8, &[6, 33, 5]).cast(dtype);
        same(&what("pow"), &gi.pow(on(&e)), &i.pow(&e));
        for axes in [vec![2], vec![0], vec![1], vec![0, 2], vec![0, 1, 2]] {
            for keep in [false, true] {
                let a = axes.as_slice();
                same(&what(&format!("sum over {a:?}")), &gi.sum(a, keep), &i.sum(a, keep));
                same(&what(&format!("mean over {a:?}")), &gi.mean(a, keep), &i.mean(a, keep));
                same(&what(&format!("prod over {a:?}")), &gi.prod(a, keep), &i.prod(a, keep));
                same(&what(&format!("max over {a:?}")), &gi.max(a, keep), &i.max(a, keep));
                same(&what(&format!("min over {a:?}")), &gi.min(a, keep), &i.min(a, keep));
            }
        }
        let (idx, scatter) =
            (Tensor::from_vec(vec![2i64, 0, 2, 9, 1, 2], [6]).unwrap(), Op::ScatterAdd { axis: 1, size: 5 });
        let upd = (rand_f32(10, &[6, 6, 5], -1.0, 1.0) * 1000.0).cast(dtype);
        same(
            &what("scatter_add (duplicates, an index out of range)"),
            &common::run_op(&scatter, &[&on(&upd), &on(&idx)]),
            &common::run_op(&scatter, &[&upd, &idx]),
        );
        // A long line: several passes.
        let long = Tensor::from_vec((0..300_000).map(|k| (k % 1000) as i64 - 400).collect::<Vec<_>>(), [300_000])
            .unwrap()
            .cast(dtype);
        same(&what("sum of a long line"), &on(&long).sum_all(), &long.sum_all());
        same(&what("max of a long line"), &on(&long).max(0, false), &long.max(0, false));
    }
    // f32 products: another grouping than the CPU's, equal to rounding (factors near 1).
    let f = rand_f32(9, &[40, 700], 0.9, 1.1);
    for axis in [0i64, 1] {
        let (g, c) = (on(&f).prod(axis, false), f.prod(axis, false));
        assert_eq!(g.device(), gpu);
        let (g, c) = (g.to_vec::<f32>().unwrap(), c.to_vec::<f32>().unwrap());
        let n = f.dims()[axis as usize] as f32;
        for (a, b) in g.iter().zip(&c) {
            assert!((a - b).abs() <= 4.0 * n * f32::EPSILON * b.abs(), "f32 prod over {axis}: GPU {a} vs CPU {b}");
        }
    }
    // Fills of every dtype (`zeros_like`/`ones_like` inside a traced function).
    for dtype in [DType::F32, DType::F64, DType::I32, DType::I64, DType::Bool] {
        let like = Tensor::zeros([3, 7], dtype);
        for value in [0.0, 1.0, -2.5] {
            let fill = Op::Fill { value };
            same(
                &format!("fill of {dtype} with {value}"),
                &common::run_op(&fill, &[&on(&like)]),
                &common::run_op(&fill, &[&like]),
            );
        }
        same(&format!("ones_like of {dtype} on the GPU"), &Tensor::ones_like(&on(&like)), &Tensor::ones_like(&like));
    }
    assert_eq!(host_fallbacks(), before, "every op above ran on the GPU");
}

#[test]
fn random_draws_of_every_distribution_are_made_on_the_gpu_with_the_cpus_bits() {
    use tensorjit::ops::{Distribution, Op, RandomParams};
    let Some(gpu) = first_gpu("GPU random draws of every distribution") else { return };
    let before = host_fallbacks();
    let dists = [
        Distribution::Uniform { low: -1.0, high: 2.0 },
        Distribution::Normal { mean: 0.5, stddev: 2.0 },
        Distribution::TruncatedNormal { mean: 0.0, stddev: 1.0 },
    ];
    for dist in dists {
        for dtype in [DType::F32, DType::F64] {
            for (seed, counter) in [(3u64, 0i64), (u64::MAX, -5)] {
                let c = Tensor::scalar(counter);
                let p = RandomParams { dist, shape: Shape::new(&[64, 33]), dtype, seed: Some(seed), stateless: true };
                let (cpu, on_gpu) = (
                    common::run_op(&Op::Random(p.clone()), &[&c]),
                    common::run_op(&Op::Random(p), &[&c.to(gpu).unwrap()]),
                );
                same(&format!("stateless {dist:?} of {dtype}, seed {seed}, counter {counter}"), &on_gpu, &cpu);
            }
        }
    }
    assert_eq!(host_fallbacks(), before, "the stateless draws ran on the GPU");
    // Draws with no counter inside a traced function: made on the function's device, its
    // key resolved per call on the host — the CPU's values, and no CUDA graph.
    let noisy = tensorjit::function("noisy", |x: Tensor| {
        let n = tensorjit::random::normal(x.dims().to_vec(), 0.0, 0.1, DType::F32, Some(5));
        let t = tensorjit::random::truncated_normal(x.dims().to_vec(), 0.0, 1.0, DType::F32, Some(6));
        let u = tensorjit::random::uniform(x.dims().to_vec(), 0.0, 1.0, DType::F32, Some(7));
        (&x + &n) * &t + &u
    });
    let x = rand_f32(12, &[128, 40], -1.0, 1.0);
    let cpu = noisy.call(x.clone());
    let gx = x.to(gpu).unwrap();
    let before = host_fallbacks();
    for call in 0..3 {
        same(&format!("traced draws, call {call}"), &noisy.call(gx.clone()), &cpu);
    }
    assert_eq!(host_fallbacks(), before, "the traced draws ran on the GPU");
    let text = noisy.concrete_functions().iter().find(|c| c.device() == gpu).unwrap().compiled_text();
    assert!(text.contains("CUDA graph: off (a random draw takes a new key"), "{text}");
}

#[test]
fn max_pool_second_order_gradients_run_on_the_gpu_with_the_cpus_bits() {
    use tensorjit::ops::{Op, Padding, PoolParams};
    let Some(gpu) = first_gpu("max-pool second-order gradients") else { return };
    // Few distinct values: ties, where the first maximum decides.
    let x = grid(21, &[2, 9, 7, 3]);
    let g = rand_f32(22, &[2, 9, 7, 3], -1.0, 1.0);
    let (gx, gg) = (x.to(gpu).unwrap(), g.to(gpu).unwrap());
    let before = host_fallbacks();
    for padding in [Padding::Valid, Padding::Same] {
        let op = Op::MaxPool2dGradGrad(PoolParams { ksize: [3, 2], strides: [2, 1], padding });
        same(
            &format!("max_pool2d_grad_grad {padding:?}"),
            &common::run_op(&op, &[&gx, &gg]),
            &common::run_op(&op, &[&x, &g]),
        );
    }
    assert_eq!(host_fallbacks(), before, "the second-order gradients ran on the GPU");
}

#[test]
fn f64_tensors_are_computed_on_the_gpu() {
    use tensorjit::ops::{BinaryOp, Op, UnaryOp};
    let Some(gpu) = first_gpu("f64 GPU ops") else { return };
    let on = |t: &Tensor| t.to(gpu).unwrap();
    let x = grid(31, &[17, 3, 40]).cast(DType::F64);
    let y = common::rand_f64(32, &[17, 3, 40], -4.0, 4.0);
    let mid = common::rand_f64(33, &[17, 1, 40], -2.0, 2.0);
    let (gx, gy, gmid) = (on(&x), on(&y), on(&mid));
    let before = host_fallbacks();
    for u in UnaryOp::ALL.into_iter().filter(|u| *u != UnaryOp::LogicalNot) {
        same(
            &format!("{} of f64", u.name()),
            &common::run_op(&Op::Unary(u), &[&gx]),
            &common::run_op(&Op::Unary(u), &[&x]),
        );
    }
    use BinaryOp::*;
    for b in [Add, Sub, Mul, Div, FloorDiv, Pow, Maximum, Minimum, Lt, Eq, Ne, Ge] {
        let what = format!("{} of f64", b.name());
        same(&what, &common::run_op(&Op::Binary(b), &[&gx, &gy]), &common::run_op(&Op::Binary(b), &[&x, &y]));
        // A middle-axis broadcast: materialised on the GPU first.
        let (g, c) = (common::run_op(&Op::Binary(b), &[&gx, &gmid]), common::run_op(&Op::Binary(b), &[&x, &mid]));
        same(&format!("{what}, broadcast over the middle axis"), &g, &c);
    }
    same("where of f64", &Tensor::where_(&gx.gt(&gy), &gx, &gy), &Tensor::where_(&x.gt(&y), &x, &y));
    for to in [DType::F32, DType::I32, DType::I64, DType::Bool] {
        same(&format!("f64 as {to}"), &gx.cast(to), &x.cast(to));
        same(&format!("{to} as f64"), &gx.cast(to).cast(DType::F64), &x.cast(to).cast(DType::F64));
    }
    same("argmax of f64", &gx.argmax(2), &x.argmax(2));
    let idx = Tensor::from_vec(vec![3i64, 0, 3, 9, 1], [5]).unwrap();
    let scatter = Op::ScatterAdd { axis: 1, size: 4 };
    let upd = common::rand_f64(38, &[2, 5, 3], -1.0, 1.0);
    same(
        "scatter_add of f64 (duplicates, an index out of range)",
        &common::run_op(&scatter, &[&on(&upd), &on(&idx)]),
        &common::run_op(&scatter, &[&upd, &idx]),
    );
    let s = [SliceArg::new(Some(1), Some(16), 3), SliceArg::new(None, None, -1)];
    same("a slice of f64", &gx.slice(&s), &x.slice(&s));
    same("a permute of f64", &gx.permute(&[2, 0, 1]), &x.permute(&[2, 0, 1]));
    // Reductions: max and min exact, sums and means within rounding (another order).
    for axes in [vec![2], vec![0], vec![0, 2]] {
        let a = axes.as_slice();
        same(&format!("max of f64 over {a:?}"), &gx.max(a, false), &x.max(a, false));
        same(&format!("min of f64 over {a:?}"), &gx.min(a, false), &x.min(a, false));
        close_f64(&format!("sum of f64 over {a:?}"), &gy.sum(a, false), &y.sum(a, false), 1e-13);
        close_f64(&format!("mean of f64 over {a:?}"), &gy.mean(a, false), &y.mean(a, false), 1e-13);
    }
    // Matmul through dgemm, batched too.
    let (a, b) = (common::rand_f64(34, &[3, 20, 30], -1.0, 1.0), common::rand_f64(35, &[30, 9], -1.0, 1.0));
    close_f64("f64 matmul", &on(&a).matmul(&on(&b)), &a.matmul(&b), 1e-13);
    // conv2d (im2col + dgemm) and its gradients; pooling and its gradients (exact).
    let (img, filter) =
        (common::rand_f64(39, &[2, 9, 7, 3], -1.0, 1.0), common::rand_f64(40, &[3, 3, 3, 4], -1.0, 1.0));
    let (gi, gf) = (on(&img), on(&filter));
    close_f64("f64 conv2d", &gi.conv2d(&gf, [1, 1], Padding::Same), &img.conv2d(&filter, [1, 1], Padding::Same), 1e-13);
    let params = tensorjit::ops::Conv2dParams { strides: [2, 1], padding: Padding::Valid };
    let cdy = common::rand_f64(42, &[2, 4, 5, 4], -1.0, 1.0);
    let dx = Op::Conv2dBackpropInput { params, input: img.shape().clone() };
    let (g, c) = (common::run_op(&dx, &[&on(&cdy), &gf]), common::run_op(&dx, &[&cdy, &filter]));
    close_f64("f64 conv2d input gradient", &g, &c, 1e-12);
    let dw = Op::Conv2dBackpropFilter { params, filter: filter.shape().clone() };
    let (g, c) = (common::run_op(&dw, &[&gi, &on(&cdy)]), common::run_op(&dw, &[&img, &cdy]));
    close_f64("f64 conv2d filter gradient", &g, &c, 1e-12);
    let pool = tensorjit::ops::PoolParams { ksize: [3, 2], strides: [2, 1], padding: Padding::Same };
    let dy = common::rand_f64(41, &[2, 5, 7, 3], -1.0, 1.0);
    for op in [Op::MaxPool2d(pool), Op::AvgPool2d(pool)] {
        same(&format!("{} of f64", op.name()), &common::run_op(&op, &[&gi]), &common::run_op(&op, &[&img]));
    }
    let grad = Op::MaxPool2dGrad(pool);
    same("max_pool2d_grad of f64", &common::run_op(&grad, &[&gi, &on(&dy)]), &common::run_op(&grad, &[&img, &dy]));
    assert_eq!(host_fallbacks(), before, "every f64 op above ran on the GPU");
    // A traced f64 function: GPU-traced equals GPU-eager bit for bit.
    let f = tensorjit::function("f64_net", |(x, w): (Tensor, Tensor)| x.matmul(&w).tanh().sum(-1, false));
    let (xs, w) = (common::rand_f64(36, &[16, 30], -1.0, 1.0), common::rand_f64(37, &[30, 8], -1.0, 1.0));
    let traced = f.call((on(&xs), on(&w)));
    same(
        "traced f64 on the GPU vs eager",
        &traced,
        &on(&xs).matmul(&on(&w)).tanh().sum(-1, false).to(Device::Cpu).unwrap(),
    );
    close_f64("traced f64 on the GPU vs the CPU", &traced, &f.call((xs, w)), 1e-12);
}

#[test]
fn sorting_and_segment_extremes_run_on_the_gpu_with_the_cpus_bytes() {
    let Some(gpu) = first_gpu("GPU sorting") else { return };
    let x = grid(40, &[7, 33]);
    let gx = x.to(gpu).unwrap();
    let before = host_fallbacks();
    same("argsort", &gx.argsort(1, false), &x.argsort(1, false));
    same("argsort descending, columns", &gx.argsort(0, true), &x.argsort(0, true));
    same("argsort of f64", &gx.cast(DType::F64).argsort(1, true), &x.cast(DType::F64).argsort(1, true));
    let ints = (&x * 2.0).cast(DType::I32);
    same("argsort of i32 (ties)", &on_gpu(&ints, gpu).argsort(1, false), &ints.argsort(1, false));
    let seg = Tensor::from_vec(vec![3i64, -1, 0, 3, 1, 3, 2], [7]).unwrap();
    let gseg = seg.to(gpu).unwrap();
    same("segment max", &gx.unsorted_segment_max(&gseg, 5), &x.unsorted_segment_max(&seg, 5));
    same("segment min", &gx.unsorted_segment_min(&gseg, 5), &x.unsorted_segment_min(&seg, 5));
    let wide = x.cast(DType::I64);
    same("segment max of i64", &on_gpu(&wide, gpu).unsorted_segment_max(&gseg, 5), &wide.unsorted_segment_max(&seg, 5));
    let f64s = x.cast(DType::F64);
    same("segment min of f64", &on_gpu(&f64s, gpu).unsorted_segment_min(&gseg, 5), &f64s.unsorted_segment_min(&seg, 5));
    // Products of finite values (an ∞·0 NaN has other bits on a GPU).
    let finite = rand_f32(42, &[7, 33], -1.5, 1.5);
    same("segment prod", &on_gpu(&finite, gpu).unsorted_segment_prod(&gseg, 5), &finite.unsorted_segment_prod(&seg, 5));
    same("sort descending, columns", &gx.sort(0, true), &x.sort(0, true));
    let (gv, gp) = gx.top_k(5);
    let (v, p) = x.top_k(5);
    same("top_k values", &gv, &v);
    same("top_k positions", &gp, &p);
    // The gradient of a segment max (ties share it) on the GPU.
    let grad = |t: &Tensor, s: &Tensor| {
        let w = Variable::new(t.clone(), "w");
        let tape = GradientTape::new();
        let loss = w.read().unsorted_segment_max(s, 5).sum_all();
        tape.gradient(&loss, &[&w]).remove(0).expect("a gradient")
    };
    same("segment max gradient", &grad(&gx, &gseg), &grad(&x, &seg));
    assert_eq!(host_fallbacks(), before, "sorting and segment extremes ran on the host");
    // Lines longer than the ranking kernel takes are sorted on the host.
    let long = grid(41, &[2, tensorjit_jit::ptx::ARGSORT_MAX_LINE + 1]);
    same("argsort of long lines", &on_gpu(&long, gpu).argsort(1, false), &long.argsort(1, false));
    assert_eq!(host_fallbacks(), before + 1);
}

fn on_gpu(t: &Tensor, gpu: Device) -> Tensor {
    t.to(gpu).unwrap()
}

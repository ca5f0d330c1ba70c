//! `DepthwiseConv2D` and `SeparableConv2D`: outputs against the runtime ops by hand,
//! Keras' shapes, weight names and parameter counts, penalties, training eager ==
//! traced, and the errors.

mod common;

use common::panic_message;
use tensorjit::nn::prelude::*;
use tensorjit::{random, DType, Tensor};

fn normal(dims: &[usize], seed: u64) -> Tensor {
    random::normal(dims.to_vec(), 0.0, 1.0, DType::F32, Some(seed))
}

fn f32s(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

fn close(got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims());
    for (g, w) in f32s(got).iter().zip(f32s(want)) {
        assert!((g - w).abs() <= 1e-5 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[test]
fn depthwise_conv2d_is_the_op_plus_bias_and_activation() {
    let x = normal(&[2, 7, 6, 3], 1);
    let layer = DepthwiseConv2D::new([3, 2])
        .strides([2, 1])
        .padding(Padding::Same)
        .depth_multiplier(2)
        .activation(Activation::Relu)
        .with_name("dw");
    let y = layer.call(&x, false);
    assert_eq!(y.dims(), &[2, 4, 6, 6]);
    assert_eq!(layer.output_shape(&[None, Some(7), Some(6), Some(3)]), vec![None, Some(4), Some(6), Some(6)]);
    let vars = layer.variables();
    assert_eq!(vars[0].name(), "dw/kernel");
    assert_eq!(vars[0].shape().dims(), &[3, 2, 3, 2]);
    assert_eq!(vars[1].shape().dims(), &[6]);
    vars[1].assign(normal(&[6], 2));
    let want = (x.depthwise_conv2d(&vars[0].read(), [2, 1], Padding::Same) + vars[1].read()).relu();
    close(&layer.call(&x, false), &want);
}

#[test]
fn separable_conv2d_is_depthwise_then_pointwise() {
    let x = normal(&[2, 6, 6, 4], 3);
    let layer = SeparableConv2D::new(5, [3, 3]).depth_multiplier(2).with_name("sep");
    let y = layer.call(&x, false);
    assert_eq!(y.dims(), &[2, 4, 4, 5]);
    let vars = layer.variables();
    let names: Vec<&str> = vars.iter().map(|v| v.name()).collect();
    assert_eq!(names, ["sep/depthwise_kernel", "sep/pointwise_kernel", "sep/bias"]);
    let params: usize = vars.iter().map(|v| v.shape().numel()).sum();
    assert_eq!(params, 3 * 3 * 4 * 2 + 4 * 2 * 5 + 5);
    vars[2].assign(normal(&[5], 4));
    let depthwise = x.depthwise_conv2d(&vars[0].read(), [1, 1], Padding::Valid);
    let pointwise = vars[1].read().reshape([8, 5]);
    let want = depthwise.reshape([-1, 8]).matmul(&pointwise).reshape([2, 4, 4, 5]) + vars[2].read();
    close(&layer.call(&x, false), &want);
}

#[test]
fn penalties_and_training_eager_and_traced() {
    let x = normal(&[16, 8, 8, 2], 5);
    let y = x.mean(vec![1, 2, 3], false).gt(0.0).cast(DType::F32).reshape([16, 1]);
    let run = |run_eagerly: bool| {
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![
            SeparableConv2D::new(4, [3, 3])
                .activation(Activation::Relu)
                .depthwise_regularizer(Regularizer::L2(0.01))
                .boxed(),
            DepthwiseConv2D::new([3, 3]).strides([2, 2]).padding(Padding::Same).boxed(),
            GlobalAveragePooling2D::new().boxed(),
            Dense::new(1).boxed(),
        ])
        .with_input_shape(&[8, 8, 2]);
        for (i, v) in model.variables().iter().enumerate().filter(|(_, v)| v.shape().rank() >= 2) {
            v.assign(random::glorot_uniform(v.shape().clone(), DType::F32, Some(50 + i as u64)));
        }
        let penalty = model.losses()[0].to_scalar::<f32>().unwrap();
        let k = f32s(&model.variables()[0].read());
        let by_hand: f32 = 0.01 * k.iter().map(|w| w * w).sum::<f32>();
        assert!((penalty - by_hand).abs() < 1e-5 * by_hand.max(1.0), "{penalty} vs {by_hand}");
        model.compile(Adam::new(0.01), Loss::BinaryCrossentropy { from_logits: true }, &[], run_eagerly);
        let opts = FitOptions { epochs: 5, batch_size: 8, verbose: false, ..FitOptions::default() };
        model.fit(&x, &y, &opts).unwrap().get("loss")
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced, "run_eagerly does not change results");
    assert!(traced[4] < traced[0], "{traced:?}");
}

#[test]
fn bad_settings_and_inputs_name_the_layer_and_line() {
    let msg = panic_message(|| {
        DepthwiseConv2D::new([3, 3]).depth_multiplier(0);
    });
    assert!(msg.contains("DepthwiseConv2D") && msg.contains("depth_multiplier must be at least 1"), "{msg}");
    assert!(msg.contains("nn_depthwise.rs"), "{msg}");
    let layer = SeparableConv2D::new(2, [2, 2]);
    layer.call(&normal(&[1, 4, 4, 3], 6), false);
    let msg = panic_message(|| {
        layer.call(&normal(&[1, 4, 4, 2], 7), false);
    });
    assert!(msg.contains("SeparableConv2D") && msg.contains("NHWC (rank 4) with 3 channels"), "{msg}");
}

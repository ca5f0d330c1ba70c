//! Conv2DTranspose, UpSampling, ZeroPadding and Cropping: values against host loops,
//! declared output shapes against real ones, a convolutional autoencoder on the digits
//! trained eager and traced alike, and the errors.

use std::path::PathBuf;

use tensorjit::nn::data::load_digits;
use tensorjit::nn::prelude::*;
use tensorjit::nn::Module;
use tensorjit::{random, DType, Padding, Tensor};

/// `[b, h, w, c]` values of an NHWC tensor at one position.
fn at(v: &[f32], dims: &[usize], b: usize, y: usize, x: usize, c: usize) -> f32 {
    v[((b * dims[1] + y) * dims[2] + x) * dims[3] + c]
}

/// The layer's output, checked against its declared shape.
fn run(layer: &dyn Module, x: &Tensor) -> Tensor {
    let y = layer.call(x, false);
    let mut spec: Vec<Option<usize>> = x.dims().iter().map(|&d| Some(d)).collect();
    spec[0] = None;
    let want = layer.output_shape(&spec);
    assert_eq!(&want[1..], &y.dims()[1..].iter().map(|&d| Some(d)).collect::<Vec<_>>()[..], "{}", layer.name());
    y
}

#[test]
fn resizing_layers_move_pixels_as_keras() {
    let x = random::normal([2, 3, 4, 2], 0.0, 1.0, DType::F32, Some(1));
    let xv = x.to_vec::<f32>().unwrap();
    let xd = [2, 3, 4, 2];
    let up = run(&UpSampling2D::new([2, 3]), &x);
    assert_eq!(up.dims(), &[2, 6, 12, 2]);
    let (uv, ud) = (up.to_vec::<f32>().unwrap(), up.dims().to_vec());
    for (b, y, xx, c) in [(0, 0, 0, 0), (1, 5, 11, 1), (0, 3, 7, 1), (1, 2, 5, 0)] {
        assert_eq!(at(&uv, &ud, b, y, xx, c), at(&xv, &xd, b, y / 2, xx / 3, c));
    }
    let padded = run(&ZeroPadding2D::new([(1, 2), (0, 3)]), &x);
    assert_eq!(padded.dims(), &[2, 6, 7, 2]);
    let (pv, pd) = (padded.to_vec::<f32>().unwrap(), padded.dims().to_vec());
    assert_eq!(at(&pv, &pd, 1, 2, 3, 1), at(&xv, &xd, 1, 1, 3, 1));
    assert_eq!(at(&pv, &pd, 0, 0, 2, 0), 0.0);
    assert_eq!(at(&pv, &pd, 0, 5, 1, 1), 0.0);
    assert_eq!(at(&pv, &pd, 0, 2, 6, 1), 0.0);
    let cropped = run(&Cropping2D::new([(1, 1), (2, 0)]), &padded);
    assert_eq!(cropped.dims(), &[2, 4, 5, 2]);
    let (cv, cd) = (cropped.to_vec::<f32>().unwrap(), cropped.dims().to_vec());
    assert_eq!(at(&cv, &cd, 1, 1, 1, 0), at(&pv, &pd, 1, 2, 3, 0));
    // The 1-D layers on [batch, steps, channels].
    let s = random::normal([2, 5, 3], 0.0, 1.0, DType::F32, Some(2));
    let sv = s.to_vec::<f32>().unwrap();
    let u = run(&UpSampling1D::new(2), &s).to_vec::<f32>().unwrap();
    assert_eq!(&u[3 * 3..3 * 4], &sv[3..6], "step 3 of the output is step 1 of the input");
    let p = run(&ZeroPadding1D::new((2, 1)), &s);
    assert_eq!(p.dims(), &[2, 8, 3]);
    let back = run(&Cropping1D::new((2, 1)), &p);
    assert_eq!(back.to_vec::<f32>().unwrap(), sv);
}

#[test]
fn conv2d_transpose_layer_is_the_op_plus_bias() {
    let x = random::normal([2, 3, 4, 3], 0.0, 1.0, DType::F32, Some(3));
    for (strides, padding, out) in
        [([1, 1], Padding::Valid, [5, 6]), ([2, 2], Padding::Same, [6, 8]), ([2, 3], Padding::Valid, [7, 12])]
    {
        let layer = Conv2DTranspose::new(4, [3, 3]).strides(strides).padding(padding).activation(Activation::Relu);
        let y = run(&layer, &x);
        assert_eq!(y.dims(), &[2, out[0], out[1], 4]);
        let bias = &layer.variables()[1];
        bias.assign(random::normal([4], 0.0, 1.0, DType::F32, Some(4)));
        let want = (x.conv2d_transpose(&layer.kernel().unwrap().read(), strides, padding) + &bias.read()).relu();
        assert_eq!(layer.call(&x, false).to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
        assert_eq!(layer.kernel().unwrap().shape().dims(), &[3, 3, 4, 3], "Keras' [kh, kw, filters, in]");
    }
}

fn digits() -> Tensor {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits.csv.gz");
    let (x, _) = load_digits(path).unwrap();
    (x.narrow(0, 0, 256) / 16.0).reshape([256, 8, 8, 1])
}

#[test]
fn a_convolutional_autoencoder_trains_eager_and_traced_alike() {
    let x = digits();
    let run = |eager: bool| {
        tensorjit::nn::reset_names();
        let model = Sequential::new(vec![
            Conv2D::new(8, [3, 3]).strides([2, 2]).padding(Padding::Same).activation(Activation::Relu).boxed(),
            ZeroPadding2D::new([(1, 1), (1, 1)]).boxed(),
            Conv2DTranspose::new(8, [3, 3]).strides([2, 2]).activation(Activation::Relu).boxed(),
            Cropping2D::new([(2, 3), (2, 3)]).boxed(),
            UpSampling2D::new([2, 2]).boxed(),
            Conv2D::new(1, [2, 2]).strides([2, 2]).boxed(),
        ])
        .with_input_shape(&[8, 8, 1]);
        assert_eq!(model.output_shape(&[None, Some(8), Some(8), Some(1)]), [None, Some(8), Some(8), Some(1)]);
        model.call(&x, false);
        for (i, v) in model.trainable_variables().iter().enumerate() {
            v.assign(random::normal(v.shape().clone(), 0.0, 0.3, DType::F32, Some(10 + i as u64)));
        }
        model.compile(Adam::new(0.01), Loss::MeanSquaredError, &[], eager);
        let opts = FitOptions { epochs: 4, batch_size: 64, verbose: false, ..FitOptions::default() };
        model.fit(&x, &x, &opts).unwrap().get("loss")
    };
    let (eager, traced) = (run(true), run(false));
    assert_eq!(eager, traced);
    assert!(eager[3] < 0.7 * eager[0], "reconstruction improves: {eager:?}");
}

#[test]
fn impossible_resizes_name_the_layer() {
    let x = random::normal([1, 3, 4, 2], 0.0, 1.0, DType::F32, Some(5));
    let r = std::panic::catch_unwind(|| Cropping2D::new([(2, 1), (0, 0)]).with_name("crop").call(&x, false));
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("Cropping2D 'crop'") && msg.contains("f32[1,3,4,2]"), "{msg}");
    assert!(msg.contains("expected more than 2 + 1 steps on axis 1"), "{msg}");
    assert!(msg.contains("nn_spatial.rs"), "{msg}");
    let r = std::panic::catch_unwind(|| {
        Conv2DTranspose::new(2, [2, 2]).call(&random::normal([2, 3], 0.0, 1.0, DType::F32, Some(6)), false)
    });
    let msg = *r.unwrap_err().downcast::<String>().unwrap();
    assert!(msg.contains("needs NHWC inputs (rank 4)"), "{msg}");
}

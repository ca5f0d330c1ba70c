//! TimeDistributed: one layer on every step of a sequence, with one set of weights;
//! traced with an unknown batch or number of steps bit-identical to eager; masks pass.

mod common;
use common::*;
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

/// Step `t` of `[batch, steps, …]`.
fn step(x: &Tensor, t: usize) -> Tensor {
    x.narrow(1, t, 1).squeeze(&[1])
}

#[test]
fn each_step_goes_through_the_same_layer() {
    let dense = Dense::new(3).activation(Activation::Tanh);
    let td = TimeDistributed::new(dense.clone());
    let x = rand_f32(1, &[2, 4, 5], -1.0, 1.0);
    let y = td.call(&x, false);
    assert_eq!(y.dims(), &[2, 4, 3]);
    assert_eq!(td.variables().len(), 2, "the layer's kernel and bias, once");
    for t in 0..4 {
        assert_close(
            &f64s(&step(&y, t).cast(DType::F64)),
            &f64s(&dense.call(&step(&x, t), false).cast(DType::F64)),
            1e-6,
        );
    }
    // A convolution on every frame of a video.
    let conv = Conv2D::new(2, [3, 3]).padding(Padding::Same);
    let frames =
        Sequential::new(vec![TimeDistributed::new(conv.clone()).boxed(), TimeDistributed::new(Flatten::new()).boxed()]);
    let video = rand_f32(2, &[2, 3, 5, 5, 1], -1.0, 1.0);
    let out = frames.call(&video, false);
    assert_eq!(out.dims(), &[2, 3, 50]);
    for t in 0..3 {
        let want = conv.call(&step(&video, t), false).reshape([2, 50]);
        assert_close(&f64s(&step(&out, t).cast(DType::F64)), &f64s(&want.cast(DType::F64)), 1e-6);
    }
    assert_eq!(frames.output_shape(&[None, Some(3), Some(5), Some(5), Some(1)]), vec![None, Some(3), Some(50)]);
}

#[test]
fn traced_with_an_unknown_batch_or_step_count_matches_eager() {
    let td = TimeDistributed::new(Dense::new(4));
    let x = rand_f32(3, &[3, 6, 2], -1.0, 1.0);
    td.call(&x, false);
    let bits = |t: &Tensor| f32s(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    for dims in [[None, Some(6), Some(2)], [Some(3), None, Some(2)]] {
        let l = td.clone();
        let f = tensorjit::function("td", move |x: Tensor| l.call(&x, false))
            .with_input_signature(vec![TensorSpec::new(DType::F32, &dims)]);
        for (seed, shape) in [(4, [3, 6, 2]), (5, if dims[0].is_none() { [1, 6, 2] } else { [3, 2, 2] })] {
            let x = rand_f32(seed, &shape, -1.0, 1.0);
            assert_eq!(bits(&f.call(x.clone())), bits(&td.call(&x, false)), "{dims:?} {shape:?}");
        }
        assert_eq!(f.tracing_count(), 1);
    }
    let l = td.clone();
    let f = tensorjit::function("both", move |x: Tensor| l.call(&x, false))
        .with_input_signature(vec![TensorSpec::new(DType::F32, &[None, None, Some(2)])]);
    let msg = panic_message(std::panic::AssertUnwindSafe(|| drop(f.call(rand_f32(6, &[2, 3, 2], -1.0, 1.0)))));
    assert!(msg.contains("a known batch or number of steps"), "{msg}");
    let msg = panic_message(|| {
        drop(TimeDistributed::new(Dense::new(2)).with_name("td").call(&rand_f32(7, &[4, 3], -1.0, 1.0), false))
    });
    assert!(msg.contains("TimeDistributed 'td'") && msg.contains("rank 3 or more"), "{msg}");
}

#[test]
fn a_mask_passes_through_to_the_recurrent_layer_after_it() {
    let m = Sequential::new(vec![
        Embedding::new(9, 4).mask_zero(true).boxed(),
        TimeDistributed::new(Dense::new(3)).boxed(),
        GRU::new(2).boxed(),
    ]);
    let ids = Tensor::from_vec(vec![3i64, 5, 1, 0, 0, 2, 8, 0, 0, 0], [2, 5]).unwrap();
    let y = m.call(&ids, false);
    let first = m.call(&ids.narrow(0, 0, 1).narrow(1, 0, 3), false);
    assert_close(&f64s(&y.narrow(0, 0, 1).cast(DType::F64)), &f64s(&first.cast(DType::F64)), 1e-5);
}

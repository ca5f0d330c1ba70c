//! `depthwise_conv2d`: against per-channel `conv2d`s (property test over shapes,
//! strides, padding and multipliers), traced == eager bit for bit, and its errors.

mod common;

use common::*;
use proptest::prelude::*;
use tensorjit::prelude::*;

/// The reference: each channel convolved alone by `conv2d`, outputs `c·m + j` in order.
fn per_channel(x: &Tensor, f: &Tensor, strides: [usize; 2], padding: Padding) -> Tensor {
    let c = x.dims()[3];
    let parts: Vec<Tensor> = (0..c).map(|i| x.narrow(3, i, 1).conv2d(&f.narrow(2, i, 1), strides, padding)).collect();
    Tensor::concat(&parts.iter().collect::<Vec<_>>(), 3)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn depthwise_is_a_conv2d_per_channel(
        seed in 0u64..1_000_000,
        (h, w) in (1usize..8, 1usize..8),
        (c, m) in (1usize..4, 1usize..3),
        (kh, kw) in (1usize..4, 1usize..4),
        (sh, sw) in (1usize..3, 1usize..3),
        same in any::<bool>(),
    ) {
        let padding = if same { Padding::Same } else { Padding::Valid };
        prop_assume!(same || (h >= kh && w >= kw));
        let x = rand_f64(seed, &[2, h, w, c], -1.0, 1.0);
        let f = rand_f64(seed + 1, &[kh, kw, c, m], -1.0, 1.0);
        let got = x.depthwise_conv2d(&f, [sh, sw], padding);
        let want = per_channel(&x, &f, [sh, sw], padding);
        prop_assert_eq!(got.dims(), want.dims());
        assert_close(&f64s(&got), &f64s(&want), 1e-12);
    }
}

#[test]
fn traced_depthwise_convolutions_equal_eager_bit_for_bit() {
    let x = rand_f32(7, &[3, 9, 8, 4], -1.0, 1.0);
    let f = rand_f32(8, &[3, 3, 4, 2], -1.0, 1.0);
    let run = |v: Vec<Tensor>| v[0].depthwise_conv2d(&v[1], [2, 1], Padding::Same).relu();
    let traced = function("depthwise", run);
    let eager = run(vec![x.clone(), f.clone()]);
    assert_eq!(element_bytes(&traced.call(vec![x.clone(), f.clone()])), element_bytes(&eager));
    // Gradients too, traced and eager.
    let grads = |v: Vec<Tensor>| {
        let tape = GradientTape::new();
        tape.watch(&v[0]);
        tape.watch(&v[1]);
        let y = v[0].depthwise_conv2d(&v[1], [1, 2], Padding::Valid).square().sum_all();
        tape.gradient(&y, &v).into_iter().map(|g| g.unwrap()).collect::<Vec<_>>()
    };
    let traced_grads = function("depthwise_grads", grads).call(vec![x.clone(), f.clone()]);
    for (t, e) in traced_grads.iter().zip(grads(vec![x, f])) {
        assert_eq!(element_bytes(t), element_bytes(&e));
    }
}

#[test]
fn bad_operands_are_refused_naming_the_op_and_shapes() {
    let x = rand_f32(9, &[1, 5, 5, 3], -1.0, 1.0);
    let msg = panic_message(|| {
        x.depthwise_conv2d(&rand_f32(10, &[3, 3, 2, 1], -1.0, 1.0), [1, 1], Padding::Valid);
    });
    assert!(msg.contains("depthwise_conv2d") && msg.contains("3 channels, the filter expects 2"), "{msg}");
    assert!(msg.contains("f32[1,5,5,3]") && msg.contains("depthwise_conv.rs"), "{msg}");
    let msg = panic_message(|| {
        x.depthwise_conv2d(&rand_f32(11, &[6, 6, 3, 1], -1.0, 1.0), [1, 1], Padding::Valid);
    });
    assert!(msg.contains("does not fit input"), "{msg}");
}

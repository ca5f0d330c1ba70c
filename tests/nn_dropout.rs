//! Dropout, alone in its test binary: it compares random masks after `random::set_seed`,
//! which no concurrently running test may disturb.

use tensorjit::nn::prelude::*;
use tensorjit::{function, random, DType, Tensor};

fn vec32(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

#[test]
fn dropout_drops_while_training_only_and_traces_like_eager() {
    let layer = Dropout::new(0.25);
    let x = random::uniform([4000], 1.0, 2.0, DType::F32, Some(41));
    assert_eq!(vec32(&layer.call(&x, false)), vec32(&x));
    let y = vec32(&layer.call(&x, true));
    let xs = vec32(&x);
    let dropped = y.iter().filter(|&&v| v == 0.0).count();
    assert!((850..1150).contains(&dropped), "dropped {dropped} of 4000 at rate 0.25");
    for (a, b) in y.iter().zip(&xs) {
        assert!(*a == 0.0 || (a - b / 0.75).abs() < 1e-6);
    }
    // Traced: a new mask per call, the same masks as eager after the same seed.
    let l = layer.clone();
    let f = function("dropout", move |x: Tensor| l.call(&x, true));
    let eager_f = f.clone().with_run_eagerly(true);
    random::set_seed(5);
    let e1 = vec32(&eager_f.call(x.clone()));
    let e2 = vec32(&eager_f.call(x.clone()));
    let f = function("dropout_traced", {
        let l = layer.clone();
        move |x: Tensor| l.call(&x, true)
    });
    f.call(x.clone()); // the trace itself draws nothing
    random::set_seed(5);
    let t1 = vec32(&f.call(x.clone()));
    let t2 = vec32(&f.call(x.clone()));
    assert_ne!(e1, e2);
    assert_eq!((e1, e2), (t1, t2));
}

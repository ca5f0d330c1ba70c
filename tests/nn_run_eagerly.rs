//! `compile(.., run_eagerly = false)` still follows the global run-eagerly switch (its
//! own test binary: the switch is process-wide).

use tensorjit::nn::prelude::*;
use tensorjit::{config, random, DType};

#[test]
fn the_global_switch_makes_fit_eager_with_the_same_results() {
    let x = random::normal([40, 3], 0.0, 1.0, DType::F32, Some(1));
    let y = random::normal([40, 1], 0.0, 1.0, DType::F32, Some(2));
    let run = |global_eager: bool| {
        config::run_functions_eagerly(global_eager);
        let model = Sequential::new(vec![Dense::new(1).kernel_initializer(Initializer::Constant(0.3)).boxed()])
            .with_input_shape(&[3]);
        model.compile(SGD::new(0.1).momentum(0.9), Loss::MeanSquaredError, &[], false);
        let opts = FitOptions { epochs: 3, batch_size: 16, shuffle: Some(4), verbose: false, ..FitOptions::default() };
        let h = model.fit(&x, &y, &opts).unwrap();
        config::run_functions_eagerly(false);
        (h.get("loss"), model.train_tracing_count())
    };
    let (eager_loss, eager_traces) = run(true);
    let (traced_loss, traced_traces) = run(false);
    assert_eq!(eager_traces, 0, "the switch turned the train step eager");
    assert_eq!(traced_traces, 2, "batches of 16 and the remainder of 8");
    assert_eq!(eager_loss, traced_loss);
}

//! Every loss inside a traced function: its value and gradient equal the eager ones bit
//! for bit (the hinge's label conversion decided on values in the graph too), and a
//! model trains with the new losses eager and traced alike.

use tensorjit::nn::prelude::*;
use tensorjit::{function, random, DType, GradientTape, Tensor, Variable};

fn all_losses() -> Vec<Loss> {
    vec![
        Loss::MeanSquaredError,
        Loss::MeanAbsoluteError,
        Loss::MeanAbsolutePercentageError,
        Loss::MeanSquaredLogarithmicError,
        Loss::Huber { delta: 0.7 },
        Loss::LogCosh,
        Loss::Poisson,
        Loss::KLDivergence,
        Loss::CosineSimilarity,
        Loss::Hinge,
        Loss::SquaredHinge,
        Loss::CategoricalHinge,
        Loss::BinaryCrossentropy { from_logits: true }.label_smoothing(0.1),
        Loss::CategoricalCrossentropy { from_logits: true }.label_smoothing(0.2),
        Loss::CategoricalCrossentropy { from_logits: false }.label_smoothing(0.2),
    ]
}

/// Targets each loss expects: one-hot rows, {0, 1} labels, rates or any values.
fn targets(loss: Loss, seed: u64) -> Tensor {
    let onehot =
        || random::uniform([6], 0.0, 4.0, DType::F32, Some(seed)).floor().cast(DType::I64).one_hot(4, DType::F32);
    match loss {
        Loss::CategoricalHinge | Loss::LabelSmoothed { binary: false, .. } => onehot(),
        Loss::KLDivergence => random::uniform([6, 4], 0.0, 1.0, DType::F32, Some(seed)).softmax(-1),
        Loss::Hinge | Loss::SquaredHinge | Loss::LabelSmoothed { binary: true, .. } => {
            random::uniform([6, 4], 0.0, 1.0, DType::F32, Some(seed)).gt(0.5).cast(DType::F32)
        }
        Loss::Poisson => random::uniform([6, 4], 0.0, 5.0, DType::F32, Some(seed)).floor(),
        _ => random::normal([6, 4], 0.0, 1.0, DType::F32, Some(seed)),
    }
}

/// Predictions in each loss's domain from free parameters `w`.
fn predictions(loss: Loss, w: &Tensor) -> Tensor {
    match loss {
        Loss::KLDivergence | Loss::LabelSmoothed { binary: false, from_logits: false, .. } => w.softmax(-1),
        Loss::Poisson | Loss::MeanSquaredLogarithmicError => w.exp(),
        _ => w.clone(),
    }
}

#[test]
fn traced_losses_and_gradients_equal_eager_ones() {
    for (i, loss) in all_losses().into_iter().enumerate() {
        let y = targets(loss, 10 + i as u64);
        let w = Variable::new(random::normal([6, 4], 0.0, 1.0, DType::F32, Some(40 + i as u64)), "w");
        let step = {
            let w = w.clone();
            move |y: Tensor| {
                let tape = GradientTape::new();
                let l = loss.compute(&y, &predictions(loss, &w.read()));
                let g = tape.gradient(&l, std::slice::from_ref(&w)).remove(0).expect("a gradient");
                vec![l, g]
            }
        };
        let eager = step(y.clone());
        let traced = function("loss_step", step).call(y);
        for (a, b) in eager.iter().zip(&traced) {
            assert_eq!(a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap(), "{loss:?}");
        }
        let l = eager[0].to_scalar::<f32>().unwrap();
        assert!(l.is_finite(), "{loss:?}: {l}");
        assert!(eager[1].abs().sum_all().to_scalar::<f32>().unwrap() > 0.0, "{loss:?}: a zero gradient");
    }
}

#[test]
fn huber_and_hinge_models_train_eager_and_traced_alike() {
    for loss in [Loss::Huber { delta: 1.0 }, Loss::Hinge, Loss::LogCosh] {
        let x = random::normal([40, 3], 0.0, 1.0, DType::F32, Some(50));
        let y = x.sum(-1, true).gt(0.0).cast(DType::F32);
        let run = |eager: bool| {
            let model = Sequential::new(vec![Dense::new(1).kernel_initializer(Initializer::Constant(0.1)).boxed()])
                .with_input_shape(&[3]);
            model.compile(SGD::new(0.1), loss, &[], eager);
            let opts = FitOptions { epochs: 5, batch_size: 8, verbose: false, ..FitOptions::default() };
            model.fit(&x, &y, &opts).unwrap().get("loss")
        };
        let (eager, traced) = (run(true), run(false));
        assert_eq!(eager, traced, "{loss:?}");
        assert!(eager[4] < eager[0], "{loss:?} decreases: {eager:?}");
    }
}

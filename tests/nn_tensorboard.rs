//! The TensorBoard callback: each epoch's training and validation logs (and the learning
//! rate) as scalar events under Keras' tags and directories, read back with their
//! checksums verified and equal to the history; one new file per `fit`; damaged files
//! and unwritable directories are errors that name the path.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tensorjit::nn::callbacks::{read_scalars, Scalar, TensorBoard};
use tensorjit::nn::prelude::*;
use tensorjit::prelude::*;

fn event_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// The values of `tag`, by step, in `scalars`.
fn series(scalars: &[Scalar], tag: &str) -> Vec<(i64, f32)> {
    scalars.iter().filter(|s| s.tag == tag).map(|s| (s.step, s.value)).collect()
}

fn as_steps(values: &[f64]) -> Vec<(i64, f32)> {
    values.iter().enumerate().map(|(i, v)| (i as i64, *v as f32)).collect()
}

#[test]
fn each_epoch_is_written_where_tensorboard_reads_it() {
    let dir = std::env::temp_dir().join(format!("tensorjit-tb-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let x = rand_f32(1, &[48, 4], -1.0, 1.0);
    let y = x.sum(-1, false).gt(0.0).cast(DType::I64);
    let (vx, vy) = (rand_f32(2, &[16, 4], -1.0, 1.0), rand_f32(3, &[16], 0.0, 2.0).floor().cast(DType::I64));
    let model = Sequential::new(vec![Dense::new(8).activation(Activation::Relu).boxed(), Dense::new(2).boxed()]);
    model.compile(SGD::new(0.3), Loss::SparseCategoricalCrossentropy { from_logits: true }, &[Metric::Accuracy], false);
    let fit = |epochs: usize| {
        let opts = FitOptions {
            epochs,
            batch_size: 16,
            validation_data: Some(((&vx).into(), (&vy).into())),
            verbose: false,
            callbacks: vec![Arc::new(TensorBoard::new(&dir))],
            ..FitOptions::default()
        };
        model.fit(&x, &y, &opts).unwrap()
    };
    let h = fit(3);
    let (train, validation) = (event_files(&dir.join("train")), event_files(&dir.join("validation")));
    assert_eq!((train.len(), validation.len()), (1, 1));
    assert!(train[0].file_name().unwrap().to_string_lossy().starts_with("events.out.tfevents."));
    let t = read_scalars(&train[0]).unwrap();
    assert_eq!(series(&t, "epoch_loss"), as_steps(&h.get("loss")));
    assert_eq!(series(&t, "epoch_accuracy"), as_steps(&h.get("accuracy")));
    assert_eq!(series(&t, "epoch_learning_rate"), as_steps(&[0.3, 0.3, 0.3]));
    let v = read_scalars(&validation[0]).unwrap();
    assert_eq!(series(&v, "epoch_loss"), as_steps(&h.get("val_loss")), "val_ logs under the training tags");
    assert_eq!(series(&v, "epoch_accuracy"), as_steps(&h.get("val_accuracy")));
    assert!(series(&t, "epoch_val_loss").is_empty());

    // Another fit writes a new file beside the first.
    let again = fit(1);
    let train = event_files(&dir.join("train"));
    assert_eq!(train.len(), 2);
    let newest = train
        .iter()
        .map(|p| read_scalars(p).unwrap())
        .find(|s| s.len() == 3)
        .expect("the second run's file: one epoch of three values");
    assert_eq!(series(&newest, "epoch_loss"), as_steps(&again.get("loss")));

    // A damaged file is an error naming it and where.
    let bytes = std::fs::read(&train[0]).unwrap();
    let mut bad = bytes.clone();
    let last = bad.len() - 9;
    bad[last] ^= 0x40;
    let damaged = dir.join("damaged.tfevents");
    std::fs::write(&damaged, &bad).unwrap();
    let err = read_scalars(&damaged).unwrap_err().to_string();
    assert!(err.contains("damaged.tfevents") && err.contains("checksum does not match"), "{err}");
    std::fs::write(&damaged, &bytes[..bytes.len() - 3]).unwrap();
    let err = read_scalars(&damaged).unwrap_err().to_string();
    assert!(err.contains("cut"), "{err}");

    // A log directory that cannot be made ends fit with an error naming it.
    std::fs::write(dir.join("file"), b"").unwrap();
    let opts = FitOptions {
        verbose: false,
        callbacks: vec![Arc::new(TensorBoard::new(dir.join("file/below")))],
        ..FitOptions::default()
    };
    let err = model.fit(&x, &y, &opts).unwrap_err().to_string();
    assert!(err.contains("file/below"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

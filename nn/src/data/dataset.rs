//! `Dataset`: a re-iterable pipeline of elements (each a `Vec<Tensor>`), as in
//! `tf.data`: `from_tensor_slices`, `batch`, `shuffle`, `repeat`, `map`, `take`.

use std::sync::Arc;

use tensorjit_runtime::Tensor;

use super::SplitMix;
use crate::error::{raise, Error, Result};

/// One element: the components (x, y, …).
pub type Element = Vec<Tensor>;
type Iter = Box<dyn Iterator<Item = Element>>;
type Make = dyn Fn(u64) -> Iter + Send + Sync;

/// A pipeline that can be iterated any number of times; shuffles differ per epoch
/// and repeat from their seed. Cheap to clone.
#[derive(Clone)]
pub struct Dataset {
    make: Arc<Make>,
}

impl Dataset {
    fn from_fn(f: impl Fn(u64) -> Iter + Send + Sync + 'static) -> Dataset {
        Dataset { make: Arc::new(f) }
    }

    /// Elements are the slices along axis 0 of each component (all must have the same
    /// length there).
    pub fn from_tensor_slices(components: Vec<Tensor>) -> Result<Dataset> {
        let n = components.first().and_then(|t| t.dims().first().copied()).unwrap_or(0);
        if components.iter().any(|t| t.rank() == 0 || t.dims()[0] != n) || components.iter().any(|t| t.is_symbolic()) {
            let types: Vec<String> = components.iter().map(|t| t.type_string()).collect();
            return Err(Error::invalid(
                "Dataset::from_tensor_slices",
                format!("components need the same length on axis 0 and concrete values, got {}", types.join(", ")),
            ));
        }
        let comps = Arc::new(components);
        Ok(Dataset::from_fn(move |_| {
            let comps = comps.clone();
            Box::new((0..n).map(move |i| {
                comps
                    .iter()
                    .map(|t| {
                        let row = t.narrow(0, i, 1);
                        let dims: Vec<i64> = t.dims()[1..].iter().map(|&d| d as i64).collect();
                        row.reshape(dims)
                    })
                    .collect()
            }))
        }))
    }

    /// Stacks `size` consecutive elements into one (the last batch may be smaller). A
    /// size of 0 is refused (as `tf.data` does), not taken as 1.
    #[track_caller]
    pub fn batch(&self, size: usize) -> Dataset {
        if size == 0 {
            raise("batch", "the batch size must be at least 1, got 0")
        }
        let inner = self.make.clone();
        Dataset::from_fn(move |epoch| {
            let mut it = inner(epoch);
            Box::new(std::iter::from_fn(move || {
                let items: Vec<Element> = it.by_ref().take(size).collect();
                let first = items.first()?;
                Some(
                    (0..first.len())
                        .map(|c| {
                            let parts: Vec<&Tensor> = items.iter().map(|e| &e[c]).collect();
                            Tensor::stack(&parts, 0)
                        })
                        .collect(),
                )
            }))
        })
    }

    /// Shuffles through a buffer of `buffer_size` elements (a buffer at least the size
    /// of the dataset shuffles it uniformly), differently each epoch. A buffer of 0 is
    /// refused (as `tf.data` does).
    #[track_caller]
    pub fn shuffle(&self, buffer_size: usize, seed: u64) -> Dataset {
        if buffer_size == 0 {
            raise("shuffle", "the buffer size must be at least 1, got 0")
        }
        let inner = self.make.clone();
        let cap = buffer_size;
        Dataset::from_fn(move |epoch| {
            let mut source = inner(epoch);
            let mut rng = SplitMix::new(seed ^ epoch.wrapping_mul(0xD1B5_4A32_D192_ED03));
            let mut buf: Vec<Element> = source.by_ref().take(cap).collect();
            Box::new(std::iter::from_fn(move || {
                if buf.is_empty() {
                    return None;
                }
                let i = rng.below(buf.len());
                Some(match source.next() {
                    Some(next) => std::mem::replace(&mut buf[i], next),
                    None => buf.swap_remove(i),
                })
            }))
        })
    }

    /// The dataset `count` times over (`None`: forever); each pass is a new epoch of
    /// the stages before it.
    pub fn repeat(&self, count: Option<usize>) -> Dataset {
        let inner = self.make.clone();
        Dataset::from_fn(move |epoch| {
            let inner = inner.clone();
            let passes =
                (0..count.unwrap_or(usize::MAX)).map(move |r| epoch.wrapping_mul(1 << 32).wrapping_add(r as u64));
            Box::new(passes.flat_map(move |e| inner(e)))
        })
    }

    /// Applies `f` to every element (a traced function works too).
    pub fn map(&self, f: impl Fn(Element) -> Element + Send + Sync + 'static) -> Dataset {
        let inner = self.make.clone();
        let f = Arc::new(f);
        Dataset::from_fn(move |epoch| {
            let f = f.clone();
            Box::new(inner(epoch).map(move |e| f(e)))
        })
    }

    /// The first `n` elements.
    pub fn take(&self, n: usize) -> Dataset {
        let inner = self.make.clone();
        Dataset::from_fn(move |epoch| Box::new(inner(epoch).take(n)))
    }

    /// Iterates the first epoch.
    pub fn iter(&self) -> impl Iterator<Item = Element> {
        (self.make)(0)
    }

    /// Iterates epoch `epoch` (shuffles depend on it).
    pub fn iter_epoch(&self, epoch: u64) -> impl Iterator<Item = Element> {
        (self.make)(epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorjit_runtime::{random, DType};

    /// A zero batch or buffer size is an error naming the op and the caller's line, not
    /// silently a size of 1 (a training loop would crawl through one-example batches).
    #[test]
    fn zero_sizes_are_refused() {
        let ds = Dataset::from_tensor_slices(vec![random::normal([6, 2], 0.0, 1.0, DType::F32, Some(4))]).unwrap();
        for (op, f) in [
            ("batch", Box::new(|| drop(ds.batch(0))) as Box<dyn Fn()>),
            ("shuffle", Box::new(|| drop(ds.shuffle(0, 1)))),
        ] {
            let e = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).expect_err("refused");
            let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
            assert!(msg.contains(&format!("{op}: the ")) && msg.contains("must be at least 1, got 0"), "{msg}");
            assert!(msg.contains("nn/src/data/dataset.rs:"), "the caller's line: {msg}");
        }
        assert_eq!(ds.batch(1).iter().count(), 6);
        assert_eq!(ds.shuffle(1, 1).iter().count(), 6, "a buffer of one keeps the order");
    }

    #[test]
    fn slices_batch_shuffle_repeat_and_map() {
        let x = random::normal([10, 3], 0.0, 1.0, DType::F32, Some(1));
        let y = Tensor::arange(0i64, 10, 1).unwrap();
        let ds = Dataset::from_tensor_slices(vec![x.clone(), y]).unwrap();
        let first = ds.iter().next().unwrap();
        assert_eq!(first[0].to_vec::<f32>().unwrap(), x.narrow(0, 0, 1).to_vec::<f32>().unwrap());
        assert_eq!(first[1].to_scalar::<i64>().unwrap(), 0);

        let batches: Vec<Element> = ds.batch(4).iter().collect();
        assert_eq!(batches.iter().map(|b| b[0].dims()[0]).collect::<Vec<_>>(), vec![4, 4, 2]);

        let labels =
            |d: &Dataset, e| -> Vec<i64> { d.iter_epoch(e).map(|el| el[1].to_scalar::<i64>().unwrap()).collect() };
        let sh = ds.shuffle(10, 3);
        let (a, b) = (labels(&sh, 0), labels(&sh, 1));
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..10).collect::<Vec<_>>());
        assert_ne!(a, (0..10).collect::<Vec<_>>());
        assert_ne!(a, b, "each epoch reshuffles");
        assert_eq!(a, labels(&sh, 0), "an epoch repeats from its seed");

        let rep = ds.repeat(Some(3)).map(|mut e| {
            e[1] = &e[1] * 2i64;
            e
        });
        let l = labels(&rep, 0);
        assert_eq!(l.len(), 30);
        assert_eq!(l[12], 4);
        assert_eq!(ds.repeat(None).take(25).iter().count(), 25);
    }

    #[test]
    fn mismatched_components_are_an_error() {
        let e = Dataset::from_tensor_slices(vec![Tensor::zeros([3, 2], DType::F32), Tensor::zeros([4], DType::F32)]);
        let msg = e.err().unwrap().to_string();
        assert!(msg.contains("f32[3,2], f32[4]"), "{msg}");
    }
}

//! `pad_sequences`: lists of ids of different lengths as one `[n, maxlen]` tensor.

use tensorjit_runtime::Tensor;

use crate::error::{Error, Result};

/// Which end of a sequence [`pad_sequences`] pads or cuts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Side {
    /// Before the first element (Keras' `"pre"`, its default).
    #[default]
    Pre,
    /// After the last element (`"post"`).
    Post,
}

/// How [`pad_sequences`] lays sequences out (Keras' defaults: as long as the longest
/// sequence, padded and cut at the start, padding 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PadOptions {
    /// The length of every row; `None`: the longest sequence's.
    pub maxlen: Option<usize>,
    /// Where padding goes.
    pub padding: Side,
    /// Which end of a longer sequence is cut off.
    pub truncating: Side,
    /// The padding id (0: what `Embedding::mask_zero` masks).
    pub value: i64,
}

/// Sequences of ids as one i64 tensor `[n, maxlen]` (Keras'
/// `keras.utils.pad_sequences`): each padded with `value` to `maxlen`, or cut to it, at
/// the ends the options say. With `Embedding::mask_zero` (and the default value 0) the
/// padding is then masked. An empty list gives `[0, maxlen]` (`maxlen` 0 if not set).
pub fn pad_sequences<S: AsRef<[i64]>>(sequences: &[S], opts: &PadOptions) -> Result<Tensor> {
    let maxlen = opts.maxlen.unwrap_or_else(|| sequences.iter().map(|s| s.as_ref().len()).max().unwrap_or(0));
    let mut out = Vec::with_capacity(sequences.len() * maxlen);
    for s in sequences {
        let s = s.as_ref();
        let kept = match (s.len() > maxlen, opts.truncating) {
            (true, Side::Pre) => &s[s.len() - maxlen..],
            (true, Side::Post) => &s[..maxlen],
            (false, _) => s,
        };
        let pad = std::iter::repeat_n(opts.value, maxlen - kept.len());
        match opts.padding {
            Side::Pre => out.extend(pad.chain(kept.iter().copied())),
            Side::Post => out.extend(kept.iter().copied().chain(pad)),
        }
    }
    Tensor::from_vec(out, [sequences.len(), maxlen]).map_err(Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(t: &Tensor) -> Vec<Vec<i64>> {
        let cols = t.dims()[1];
        t.to_vec::<i64>().unwrap().chunks(cols.max(1)).map(<[i64]>::to_vec).collect()
    }

    #[test]
    fn pads_and_cuts_at_the_ends_asked() {
        let seqs = vec![vec![5i64, 6, 7], vec![8], vec![1, 2, 3, 4, 9]];
        // Keras' defaults: the longest's length, padded before.
        let t = pad_sequences(&seqs, &PadOptions::default()).unwrap();
        assert_eq!(t.dims(), &[3, 5]);
        assert_eq!(rows(&t), [vec![0, 0, 5, 6, 7], vec![0, 0, 0, 0, 8], vec![1, 2, 3, 4, 9]]);
        let post = PadOptions { maxlen: Some(4), padding: Side::Post, truncating: Side::Post, value: -1 };
        assert_eq!(
            rows(&pad_sequences(&seqs, &post).unwrap()),
            [vec![5, 6, 7, -1], vec![8, -1, -1, -1], vec![1, 2, 3, 4]]
        );
        let cut_front = PadOptions { maxlen: Some(2), ..PadOptions::default() };
        assert_eq!(rows(&pad_sequences(&seqs, &cut_front).unwrap()), [vec![6, 7], vec![0, 8], vec![4, 9]]);
        let none: Vec<Vec<i64>> = vec![];
        assert_eq!(pad_sequences(&none, &PadOptions::default()).unwrap().dims(), &[0, 0]);
    }
}

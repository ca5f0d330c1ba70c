//! Automatic layer names, unique per kind as in Keras (`dense`, `dense_1`, …).
//!
//! Names label variables and summaries only; nothing computed depends on them.

use std::collections::HashMap;
use std::sync::Mutex;

static COUNTS: Mutex<Option<HashMap<String, usize>>> = Mutex::new(None);

/// The next unused name for `base`: `base`, then `base_1`, `base_2`, …
pub(crate) fn unique(base: &str) -> String {
    let mut guard = COUNTS.lock().unwrap_or_else(|p| p.into_inner());
    let n = guard.get_or_insert_with(HashMap::new).entry(base.to_string()).or_insert(0);
    let name = if *n == 0 { base.to_string() } else { format!("{base}_{n}") };
    *n += 1;
    name
}

/// Restarts automatic naming (Keras' `clear_session` for names): the next Dense is
/// `dense` again. Existing layers keep their names.
pub fn reset_names() {
    *COUNTS.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// `dense` for `Dense`, `batch_normalization` for `BatchNormalization`, `conv2d` for
/// `Conv2D`, `conv2d_transpose` for `Conv2DTranspose` (Keras' `to_snake_case`: a `_`
/// before a capital that follows a lowercase letter or starts a capitalised word).
pub(crate) fn snake(kind: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = kind.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        let starts_word = i > 0 && chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        if c.is_uppercase() && (prev_lower || starts_word) {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_keras() {
        assert_eq!(snake("Dense"), "dense");
        assert_eq!(snake("BatchNormalization"), "batch_normalization");
        assert_eq!(snake("Conv2D"), "conv2d");
        assert_eq!(snake("MaxPool2D"), "max_pool2d");
        assert_eq!(snake("Conv2DTranspose"), "conv2d_transpose");
        assert_eq!(snake("SimpleRNN"), "simple_rnn");
        assert_eq!(snake("LSTM"), "lstm");
        assert_eq!(snake("UpSampling2D"), "up_sampling2d");
        assert_eq!(snake("GlobalAveragePooling1D"), "global_average_pooling1d");
        let a = unique("naming_test_kind");
        let b = unique("naming_test_kind");
        assert_eq!(a, "naming_test_kind");
        assert_eq!(b, "naming_test_kind_1");
    }
}

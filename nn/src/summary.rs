//! `summary()`: Keras' table of layers, output shapes and parameter counts.

use std::fmt::Write;

use tensorjit_runtime::Variable;

use crate::module::{fmt_spec, Module};

pub(crate) fn count(vars: &[Variable]) -> usize {
    vars.iter().map(|v| v.shape().numel()).sum()
}

/// `1234567` → `1,234,567`.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(n_params: usize) -> String {
    let b = n_params as f64 * 4.0;
    if b < 1024.0 {
        format!("{b:.0} B")
    } else if b < 1024.0 * 1024.0 {
        format!("{:.2} KB", b / 1024.0)
    } else {
        format!("{:.2} MB", b / (1024.0 * 1024.0))
    }
}

/// One line of the table.
pub(crate) struct Row {
    /// `dense (Dense)`.
    pub(crate) label: String,
    /// `(None, 64)`.
    pub(crate) shape: String,
    pub(crate) params: usize,
    /// The layers (or inputs) this one takes its inputs from; shown in a fourth column
    /// when a row has any (functional models).
    pub(crate) connected: Vec<String>,
}

/// The table for a chain of layers (`Sequential`), whose input shape is `input` when it
/// is built.
pub(crate) fn render(model: &dyn Module, input: Option<&[Option<usize>]>) -> String {
    let mut shape = input.map(|s| s.to_vec());
    let rows: Vec<Row> = model
        .layers()
        .iter()
        .map(|l| {
            shape = shape.as_ref().map(|s| l.output_shape(s));
            Row {
                label: format!("{} ({})", l.name(), l.kind()),
                shape: shape.as_deref().map_or_else(|| "? (not built)".to_string(), fmt_spec),
                params: count(&l.variables()),
                connected: Vec::new(),
            }
        })
        .collect();
    render_rows(model, &rows)
}

/// The table of `rows`, with `model`'s name and parameter totals.
pub(crate) fn render_rows(model: &dyn Module, rows: &[Row]) -> String {
    let widest = rows.iter().map(|r| r.label.len() + 1).max().unwrap_or(0);
    let linked = rows.iter().any(|r| !r.connected.is_empty());
    let w = [widest.max(29), 26, 10, if linked { 20 } else { 0 }];
    let rule = |c: char| c.to_string().repeat(w.iter().sum::<usize>() + 1);
    let mut s = String::new();
    let _ = writeln!(s, "Model: \"{}\"", model.name());
    let _ = writeln!(s, "{}", rule('_'));
    let last = if linked { "Connected to" } else { "" };
    let header = format!(
        " {:<w0$}{:<w1$}{:<w2$}{last}",
        "Layer (type)",
        "Output Shape",
        "Param #",
        w0 = w[0],
        w1 = w[1],
        w2 = w[2]
    );
    let _ = writeln!(s, "{}", if linked { header.trim_end() } else { &header });
    let _ = writeln!(s, "{}", rule('='));
    for (i, r) in rows.iter().enumerate() {
        let from = r.connected.join(", ");
        let line = format!(" {:<w0$}{:<w1$}{:<w2$}{from}", r.label, r.shape, r.params, w0 = w[0], w1 = w[1], w2 = w[2]);
        let _ = writeln!(s, "{}", if linked { line.trim_end() } else { &line });
        if i + 1 < rows.len() {
            let _ = writeln!(s);
        }
    }
    let _ = writeln!(s, "{}", rule('='));
    let (total, trainable) = (count(&model.variables()), count(&model.trainable_variables()));
    let _ = writeln!(s, "Total params: {} ({})", thousands(total), bytes(total));
    let _ = writeln!(s, "Trainable params: {} ({})", thousands(trainable), bytes(trainable));
    let _ = writeln!(s, "Non-trainable params: {} ({})", thousands(total - trainable), bytes(total - trainable));
    let _ = write!(s, "{}", rule('_'));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(4810), "4,810");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(bytes(4810), "18.79 KB");
    }
}

//! Loaders: IDX files (the MNIST format) and the digits CSV; a seeded train/test split.

use std::io::Read;
use std::path::Path;

use flate2::read::GzDecoder;
use tensorjit_runtime::Tensor;

use super::shuffled_indices;
use crate::error::{Error, Result};

/// The bytes of `path`, gunzipped when they start with the gzip magic.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let io = |source| Error::Io { path: path.display().to_string(), source };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn format_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Format { path: path.display().to_string(), message: message.into() }
}

/// Reads an IDX file (`train-images-idx3-ubyte`, optionally `.gz`): unsigned/signed
/// bytes, i16 and i32 data become an i32 tensor, f32/f64 data f32/f64 tensors; the
/// shape is the file's.
pub fn load_idx(path: impl AsRef<Path>) -> Result<Tensor> {
    let path = path.as_ref();
    let b = read_maybe_gz(path)?;
    if b.len() < 4 || b[0] != 0 || b[1] != 0 {
        return Err(format_err(path, "not an IDX file (the magic number must start with two zero bytes)"));
    }
    let (code, rank) = (b[2], b[3] as usize);
    let header = 4 + 4 * rank;
    if b.len() < header {
        return Err(format_err(path, format!("truncated header ({} bytes for {rank} dims)", b.len())));
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| u32::from_be_bytes([b[4 + 4 * i], b[5 + 4 * i], b[6 + 4 * i], b[7 + 4 * i]]) as usize)
        .collect();
    let n: usize = dims.iter().product();
    let width = match code {
        0x08 | 0x09 => 1,
        0x0B => 2,
        0x0C | 0x0D => 4,
        0x0E => 8,
        _ => return Err(format_err(path, format!("unknown IDX data type 0x{code:02x}"))),
    };
    let data = &b[header..];
    if data.len() != n * width {
        return Err(format_err(path, format!("{} data bytes for shape {dims:?} of {width}-byte values", data.len())));
    }
    let t = match code {
        0x08 => Tensor::from_vec(data.iter().map(|&x| x as i32).collect::<Vec<i32>>(), dims.as_slice()),
        0x09 => Tensor::from_vec(data.iter().map(|&x| x as i8 as i32).collect::<Vec<i32>>(), dims.as_slice()),
        0x0B => Tensor::from_vec(
            data.chunks(2).map(|c| i16::from_be_bytes([c[0], c[1]]) as i32).collect::<Vec<i32>>(),
            dims.as_slice(),
        ),
        0x0C => Tensor::from_vec(
            data.chunks(4).map(|c| i32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<i32>>(),
            dims.as_slice(),
        ),
        0x0D => Tensor::from_vec(
            data.chunks(4).map(|c| f32::from_be_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<f32>>(),
            dims.as_slice(),
        ),
        _ => Tensor::from_vec(
            data.chunks(8)
                .map(|c| f64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                .collect::<Vec<f64>>(),
            dims.as_slice(),
        ),
    };
    Ok(t?)
}

/// Reads the digits CSV (optionally `.gz`): rows of 64 pixels (0..16) then the label.
/// Returns the images `f32[n, 64]` scaled to [0, 1] and the labels `i64[n]`.
pub fn load_digits(path: impl AsRef<Path>) -> Result<(Tensor, Tensor)> {
    let path = path.as_ref();
    let text = String::from_utf8(read_maybe_gz(path)?).map_err(|_| format_err(path, "not UTF-8 text"))?;
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let values: Vec<&str> = line.split(',').collect();
        if values.len() != 65 {
            return Err(format_err(
                path,
                format!("line {}: {} values, expected 64 pixels and a label", i + 1, values.len()),
            ));
        }
        for v in &values[..64] {
            let p: f32 = v.trim().parse().map_err(|_| format_err(path, format!("line {}: bad pixel '{v}'", i + 1)))?;
            pixels.push(p / 16.0);
        }
        let label = values[64].trim();
        labels
            .push(label.parse::<i64>().map_err(|_| format_err(path, format!("line {}: bad label '{label}'", i + 1)))?);
    }
    let n = labels.len();
    Ok((Tensor::from_vec(pixels, [n, 64])?, Tensor::from_vec(labels, [n])?))
}

/// Splits examples (axis 0) into train and test sets: a `test_fraction` of them, chosen
/// by a permutation from `seed` (scikit-learn's `train_test_split`).
pub fn train_test_split(
    x: &Tensor,
    y: &Tensor,
    test_fraction: f64,
    seed: u64,
) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
    let n = x.dims().first().copied().unwrap_or(0);
    if y.dims().first() != Some(&n) || !(0.0..1.0).contains(&test_fraction) {
        return Err(Error::invalid(
            "train_test_split",
            format!("needs x and y with the same examples and a fraction in [0, 1), got x {}, y {}, fraction {test_fraction}", x.type_string(), y.type_string()),
        ));
    }
    let order = shuffled_indices(n, seed, 0);
    let n_test = (n as f64 * test_fraction).round() as usize;
    let (test, train) = order.split_at(n_test);
    let pick = super::take_rows;
    Ok((pick(x, train)?, pick(y, train)?, pick(x, test)?, pick(y, test)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idx_files_round_trip_through_gzip() {
        let dir = std::env::temp_dir().join(format!("tensorjit-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut raw = vec![0u8, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        raw.extend([1u8, 2, 3, 250, 5, 6]);
        let plain = dir.join("x-idx2-ubyte");
        std::fs::write(&plain, &raw).unwrap();
        let t = load_idx(&plain).unwrap();
        assert_eq!(t.dims(), &[2, 3]);
        assert_eq!(t.to_vec::<i32>().unwrap(), vec![1, 2, 3, 250, 5, 6]);

        let gz = dir.join("x-idx2-ubyte.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, &raw).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(load_idx(&gz).unwrap().to_vec::<i32>().unwrap(), vec![1, 2, 3, 250, 5, 6]);

        std::fs::write(&plain, &raw[..15]).unwrap();
        let msg = load_idx(&plain).unwrap_err().to_string();
        assert!(msg.contains("3 data bytes for shape [2, 3]"), "{msg}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

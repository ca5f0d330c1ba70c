//! Weights files in the safetensors format, keyed by variable name
//! (`sequential/dense/kernel`), so a file written by one model loads into another
//! built the same way, whatever the order of its variables.

use std::collections::HashSet;
use std::path::Path;

use safetensors::tensor::{Dtype as StDtype, SafeTensors, TensorView};
use tensorjit_runtime::{DType, Device, Tensor, Variable};

use crate::error::{Error, Result};

fn st_dtype(d: DType) -> Option<StDtype> {
    Some(match d {
        DType::F32 => StDtype::F32,
        DType::F64 => StDtype::F64,
        DType::I32 => StDtype::I32,
        DType::I64 => StDtype::I64,
        DType::Bool => return None,
    })
}

/// Little-endian bytes of a tensor's elements.
/// The little-endian bytes of `t`'s elements (copied to the host first when it lives on
/// a device).
fn le_bytes(t: &Tensor) -> Result<Vec<u8>> {
    let t = &t.to(Device::Cpu)?;
    Ok(match t.dtype() {
        DType::F32 => t.to_vec::<f32>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::F64 => t.to_vec::<f64>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::I32 => t.to_vec::<i32>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::I64 => t.to_vec::<i64>()?.iter().flat_map(|x| x.to_le_bytes()).collect(),
        DType::Bool => t.to_vec::<bool>()?.iter().map(|&x| x as u8).collect(),
    })
}

fn from_le(dtype: DType, bytes: &[u8], dims: &[usize]) -> Result<Tensor> {
    fn chunks<const N: usize>(b: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
        b.chunks_exact(N).map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            a
        })
    }
    Ok(match dtype {
        DType::F32 => Tensor::from_vec(chunks::<4>(bytes).map(f32::from_le_bytes).collect::<Vec<_>>(), dims)?,
        DType::F64 => Tensor::from_vec(chunks::<8>(bytes).map(f64::from_le_bytes).collect::<Vec<_>>(), dims)?,
        DType::I32 => Tensor::from_vec(chunks::<4>(bytes).map(i32::from_le_bytes).collect::<Vec<_>>(), dims)?,
        DType::I64 => Tensor::from_vec(chunks::<8>(bytes).map(i64::from_le_bytes).collect::<Vec<_>>(), dims)?,
        DType::Bool => Tensor::from_vec(bytes.iter().map(|&b| b != 0).collect::<Vec<_>>(), dims)?,
    })
}

/// Writes `vars` to `path` (names must be unique).
pub fn save_weights(path: impl AsRef<Path>, vars: &[Variable]) -> Result<()> {
    let path = path.as_ref();
    let mut data = Vec::with_capacity(vars.len());
    for v in vars {
        let dtype = st_dtype(v.dtype())
            .ok_or_else(|| Error::invalid("save_weights", format!("variable '{}' is bool; not stored", v.name())))?;
        data.push((v.name().to_string(), dtype, v.shape().dims().to_vec(), le_bytes(&v.read())?));
    }
    let mut names = HashSet::new();
    for (name, ..) in &data {
        if !names.insert(name.as_str()) {
            return Err(Error::invalid("save_weights", format!("two variables are named '{name}'")));
        }
    }
    let views = data
        .iter()
        .map(|(name, dtype, dims, bytes)| {
            TensorView::new(*dtype, dims.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| Error::invalid("save_weights", format!("variable '{name}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize_to_file(views, &None, path)
        .map_err(|e| Error::Format { path: path.display().to_string(), message: e.to_string() })
}

/// Assigns every variable of `vars` from the tensor of the same name in `path`; a
/// missing name or a different dtype/shape is an error naming the variable (nothing is
/// assigned then).
pub fn load_weights(path: impl AsRef<Path>, vars: &[Variable]) -> Result<()> {
    let path = path.as_ref();
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: shown.clone(), source })?;
    let file =
        SafeTensors::deserialize(&bytes).map_err(|e| Error::Format { path: shown.clone(), message: e.to_string() })?;
    let mut values = Vec::with_capacity(vars.len());
    for v in vars {
        let t = file.tensor(v.name()).map_err(|_| Error::Format {
            path: shown.clone(),
            message: format!("no tensor named '{}' (the file has {} tensors)", v.name(), file.names().len()),
        })?;
        let want = st_dtype(v.dtype());
        if Some(t.dtype()) != want || t.shape() != v.shape().dims() {
            return Err(Error::Format {
                path: shown.clone(),
                message: format!(
                    "'{}' is {:?}{:?} in the file, the variable is {}{}",
                    v.name(),
                    t.dtype(),
                    t.shape(),
                    v.dtype(),
                    v.shape()
                ),
            });
        }
        // Copied to the variable's device (a model on a GPU keeps its weights there).
        values.push(from_le(v.dtype(), t.data(), t.shape())?.to(v.device())?);
    }
    for (v, t) in vars.iter().zip(values) {
        v.assign(&t);
    }
    Ok(())
}

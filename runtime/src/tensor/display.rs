//! `Display` / `Debug` for tensors: values (summarised past 6 per axis for large
//! tensors), shape and dtype, like `tf.Tensor`'s repr.

use std::fmt;

use super::Tensor;
use crate::buffer::Buffer;

const EDGE: usize = 3;
const FULL_LIMIT: usize = 1000;

fn write_elems(f: &mut fmt::Formatter<'_>, t: &Tensor, axis: usize, offset: usize, summarise: bool) -> fmt::Result {
    let dims = t.dims();
    if axis == dims.len() {
        return match t.buffer() {
            Buffer::F32(v) => write!(f, "{:?}", v[offset]),
            Buffer::F64(v) => write!(f, "{:?}", v[offset]),
            Buffer::I32(v) => write!(f, "{}", v[offset]),
            Buffer::I64(v) => write!(f, "{}", v[offset]),
            Buffer::Bool(v) => write!(f, "{}", v[offset]),
        };
    }
    let stride: usize = dims[axis + 1..].iter().product();
    let n = dims[axis];
    f.write_str("[")?;
    for i in 0..n {
        if summarise && n > 2 * EDGE && i == EDGE {
            f.write_str("..., ")?;
        }
        if summarise && n > 2 * EDGE && (EDGE..n - EDGE).contains(&i) {
            continue;
        }
        write_elems(f, t, axis + 1, offset + i * stride, summarise)?;
        if i + 1 < n {
            f.write_str(", ")?;
        }
    }
    f.write_str("]")
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(s) = self.symbol() {
            return write!(f, "tensor(<symbolic {}>, shape={}, dtype={})", s.value, self.shape, self.dtype());
        }
        let device = self.device();
        if device != crate::Device::Cpu {
            // Values of a device tensor are copied to the host to be shown.
            return match self.to(crate::Device::Cpu) {
                Ok(host) => {
                    f.write_str("tensor(")?;
                    write_elems(f, &host, 0, 0, self.numel() > FULL_LIMIT)?;
                    write!(f, ", shape={}, dtype={}, device={device})", self.shape, self.dtype())
                }
                Err(e) => write!(f, "tensor(<{e}>, shape={}, dtype={}, device={device})", self.shape, self.dtype()),
            };
        }
        f.write_str("tensor(")?;
        write_elems(f, self, 0, 0, self.numel() > FULL_LIMIT)?;
        write!(f, ", shape={}, dtype={})", self.shape, self.dtype())
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use crate::Tensor;

    #[test]
    fn display_shows_values_shape_dtype() {
        let t = Tensor::from_vec(vec![1.5f32, -2.0, 3.0, 4.25], [2, 2]).unwrap();
        assert_eq!(t.to_string(), "tensor([[1.5, -2.0], [3.0, 4.25]], shape=[2,2], dtype=f32)");
        assert_eq!(Tensor::scalar(true).to_string(), "tensor(true, shape=[], dtype=bool)");
        let big = Tensor::arange(0i32, 2000, 1).unwrap();
        assert_eq!(big.to_string(), "tensor([0, 1, 2, ..., 1997, 1998, 1999], shape=[2000], dtype=i32)");
    }
}

//! The `Tensor` handle: constructors, conversions and accessors. Ops live in `ops/`.

mod display;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Data, Dimension, IxDyn};

use crate::buffer::{self, Buffer};
use crate::device::{Device, DeviceMemory};
use crate::dtype::{DType, Element, Scalar};
use crate::error::{Error, OpError, Result};
use crate::shape::Shape;

/// A dense, row-major, immutable buffer shared by every tensor that views it (clones,
/// reshapes). Returned to the buffer pool when the last view dies.
#[derive(Debug)]
pub(crate) struct Storage {
    pub(crate) buf: Buffer,
}

impl Drop for Storage {
    fn drop(&mut self) {
        buffer::recycle(&mut self.buf);
    }
}

/// A unique identity for a tensor value, shared by its clones (used by gradient tapes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(u64);

impl TensorId {
    /// The id as a number (never reused within a process).
    pub fn as_u64(self) -> u64 {
        self.0
    }

    fn fresh() -> TensorId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        TensorId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A value of the graph being traced: which trace, which SSA value, its dtype.
#[derive(Debug)]
pub(crate) struct Symbol {
    pub(crate) trace: u64,
    pub(crate) value: crate::ir::ValueId,
    pub(crate) dtype: DType,
    /// The device the traced function runs on.
    pub(crate) device: Device,
}

#[derive(Clone)]
pub(crate) enum Repr {
    Concrete(Arc<Storage>),
    Symbolic(Arc<Symbol>),
    /// Elements on a device (`crate::device`).
    Device(Arc<dyn DeviceMemory>),
}

/// An n-dimensional array of one [`DType`] on one [`Device`].
///
/// Cloning is cheap (the buffer is shared and immutable); ops never modify their
/// inputs. Every concrete tensor is dense and row-major. Inside a traced function a
/// tensor may be *symbolic*: a value of the graph being built, with a dtype and a static
/// shape but no elements yet.
#[derive(Clone)]
pub struct Tensor {
    pub(crate) id: TensorId,
    pub(crate) shape: Shape,
    pub(crate) repr: Repr,
}

impl Tensor {
    // ---- internal construction -------------------------------------------------

    pub(crate) fn from_buffer(buf: Buffer, shape: Shape) -> Tensor {
        debug_assert_eq!(buf.len(), shape.numel(), "buffer/shape mismatch");
        Tensor { id: TensorId::fresh(), shape, repr: Repr::Concrete(Arc::new(Storage { buf })) }
    }

    pub(crate) fn symbolic(sym: Symbol, shape: Shape) -> Tensor {
        Tensor { id: TensorId::fresh(), shape, repr: Repr::Symbolic(Arc::new(sym)) }
    }

    /// The graph value of a symbolic tensor.
    pub(crate) fn symbol(&self) -> Option<&Symbol> {
        match &self.repr {
            Repr::Symbolic(s) => Some(s),
            Repr::Concrete(_) | Repr::Device(_) => None,
        }
    }

    /// Whether this tensor is a value of a graph being traced (no elements yet).
    pub fn is_symbolic(&self) -> bool {
        matches!(self.repr, Repr::Symbolic(_))
    }

    /// A new tensor (new identity) viewing this one's buffer with another shape of the
    /// same element count.
    pub(crate) fn view_as(&self, shape: Shape) -> Tensor {
        debug_assert_eq!(self.numel(), shape.numel());
        Tensor { id: TensorId::fresh(), shape, repr: self.repr.clone() }
    }

    /// The buffer of a concrete tensor. Kernels only ever see concrete tensors: the
    /// dispatch path routes symbolic ones to the tracer (or rejects them).
    pub(crate) fn buffer(&self) -> &Buffer {
        static EMPTY: Buffer = Buffer::Bool(Vec::new());
        match &self.repr {
            Repr::Concrete(s) => &s.buf,
            Repr::Symbolic(_) | Repr::Device(_) => {
                debug_assert!(false, "internal: a CPU kernel was handed a symbolic or device tensor");
                &EMPTY
            }
        }
    }

    /// The elements as a slice of `T`; `None` when the dtype differs or the tensor is
    /// symbolic.
    pub(crate) fn data<T: Element>(&self) -> Option<&[T]> {
        match &self.repr {
            Repr::Concrete(s) => T::slice(&s.buf),
            Repr::Symbolic(_) | Repr::Device(_) => None,
        }
    }

    /// The f32 buffer when this tensor is its sole owner (see
    /// `trace::backend::take_f32_buffer`); else the tensor back.
    pub(crate) fn take_f32_buffer(self) -> Result<Vec<f32>, Tensor> {
        let Tensor { id, shape, repr } = self;
        let Repr::Concrete(storage) = repr else { return Err(Tensor { id, shape, repr }) };
        if !matches!(storage.buf, Buffer::F32(_)) {
            return Err(Tensor { id, shape, repr: Repr::Concrete(storage) });
        }
        match Arc::try_unwrap(storage) {
            Ok(mut s) => match std::mem::replace(&mut s.buf, Buffer::F32(Vec::new())) {
                Buffer::F32(v) => Ok(v),
                other => {
                    s.buf = other;
                    Err(Tensor { id, shape, repr: Repr::Concrete(Arc::new(s)) })
                }
            },
            Err(storage) => Err(Tensor { id, shape, repr: Repr::Concrete(storage) }),
        }
    }

    // ---- public constructors ---------------------------------------------------

    /// A tensor from a `Vec` in row-major order. Errors when `v.len()` does not match
    /// the shape.
    pub fn from_vec<T: Element>(v: Vec<T>, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if v.len() != shape.numel() {
            return Err(Error::ElementCount { shape, len: v.len() });
        }
        Ok(Tensor::from_buffer(T::into_buffer(v), shape))
    }

    /// A tensor copied from a slice in row-major order.
    pub fn from_slice<T: Element>(v: &[T], shape: impl Into<Shape>) -> Result<Tensor> {
        Tensor::from_vec(v.to_vec(), shape)
    }

    /// A rank-0 tensor.
    pub fn scalar<T: Element>(v: T) -> Tensor {
        Tensor::from_buffer(T::into_buffer(vec![v]), Shape::scalar())
    }

    /// A rank-0 tensor of `dtype` holding `v` (converted with `as` semantics).
    pub(crate) fn scalar_of(v: Scalar, dtype: DType) -> Tensor {
        Tensor::from_buffer(repeated(v, dtype, 1), Shape::scalar())
    }

    /// A tensor of `shape` with every element `value` (converted to `dtype`).
    #[track_caller]
    pub fn full(shape: impl Into<Shape>, value: impl Into<Scalar>, dtype: DType) -> Tensor {
        let shape = shape.into();
        if !shape.is_fully_known() {
            OpError::new(
                "full",
                format!(
                    "cannot create a concrete tensor of shape {shape}: it has unknown dims; inside a traced \
                     function use zeros_like / ones_like of a tensor of that shape"
                ),
            )
            .raise(std::panic::Location::caller())
        }
        let n = shape.numel();
        Tensor::from_buffer(repeated(value.into(), dtype, n), shape)
    }

    #[track_caller]
    pub fn zeros(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        Tensor::full(shape, 0.0, dtype)
    }

    #[track_caller]
    pub fn ones(shape: impl Into<Shape>, dtype: DType) -> Tensor {
        Tensor::full(shape, 1.0, dtype)
    }

    /// Zeros of `t`'s dtype and shape (an op inside a trace: the shape may be known only
    /// at run time).
    #[track_caller]
    pub fn zeros_like(t: &Tensor) -> Tensor {
        Tensor::fill_like(t, 0.0)
    }

    /// Ones of `t`'s dtype and shape.
    #[track_caller]
    pub fn ones_like(t: &Tensor) -> Tensor {
        Tensor::fill_like(t, 1.0)
    }

    #[track_caller]
    pub(crate) fn fill_like(t: &Tensor, value: f64) -> Tensor {
        // Symbolic: an op of the trace. On a device: the device fills it (no host
        // buffer, no copy) — but one element comes from the device's cache of copied
        // scalars (a loss's gradient seed: no launch at all).
        if t.is_symbolic() || (t.device() != crate::device::Device::Cpu && t.numel() > 1) {
            return crate::ops::apply(crate::ops::Op::Fill { value }, &[t]);
        }
        let host = Tensor::full(t.shape(), value, t.dtype());
        match host.to(t.device()) {
            Ok(x) => x,
            Err(e) => OpError::new("fill_like", e.to_string()).raise(std::panic::Location::caller()),
        }
    }

    /// `start, start+step, …` up to but excluding `stop` (TensorFlow's `tf.range`).
    /// Integers are computed exactly (i64 beyond 2^53 too); floats as `start + i·step`.
    /// Errors when `step` is zero or not finite, or when the range is too long to
    /// allocate (an endless float range, say) — never an abort.
    pub fn arange<T: Element>(start: T, stop: T, step: T) -> Result<Tensor> {
        let (a, b, s) = (start.to_f64(), stop.to_f64(), step.to_f64());
        if s == 0.0 || !s.is_finite() || T::DTYPE == DType::Bool {
            return Err(OpError::new("arange", format!("step must be a non-zero number, got {step}")).into());
        }
        let exact = [start, stop, step].map(|v| {
            let any = &v as &dyn std::any::Any;
            any.downcast_ref::<i64>().map(|x| *x as i128).or_else(|| any.downcast_ref::<i32>().map(|x| *x as i128))
        });
        let n = match exact {
            // ⌈(stop − start) / step⌉ in i128: no rounding, no overflow.
            [Some(a), Some(b), Some(s)] => {
                let (d, s) = if s > 0 { (b - a, s) } else { (a - b, -s) };
                if d <= 0 {
                    0
                } else {
                    (d + s - 1) / s
                }
            }
            _ => ((b - a) / s).ceil().max(0.0) as i128,
        };
        let len = usize::try_from(n).unwrap_or(usize::MAX);
        let too_long =
            || OpError::new("arange", format!("{n} elements from {start} to {stop} by {step} do not fit in memory"));
        // An empty vector with room for `len` (`try_reserve` refuses what cannot be).
        fn room<U>(len: usize) -> Option<Vec<U>> {
            let mut v = Vec::new();
            v.try_reserve_exact(len).ok().map(|_| v)
        }
        if let [Some(a), _, Some(s)] = exact {
            // Values stay within [start, stop): every one fits the dtype.
            let mut v: Vec<i64> = room(len).ok_or_else(too_long)?;
            v.extend((0..len as i128).map(|i| (a + s * i) as i64));
            return match T::DTYPE {
                DType::I32 => Tensor::from_vec(v.into_iter().map(|x| x as i32).collect::<Vec<_>>(), [len]),
                _ => Tensor::from_vec(v, [len]),
            };
        }
        let mut v: Vec<T> = room(len).ok_or_else(too_long)?;
        v.extend((0..len).map(|i| T::from_f64(a + s * i as f64)));
        Tensor::from_vec(v, [len])
    }

    /// A tensor copied from any ndarray (any layout; elements taken in logical
    /// row-major order).
    pub fn from_ndarray<T: Element, S: Data<Elem = T>, D: Dimension>(a: &ArrayBase<S, D>) -> Tensor {
        let shape = Shape::new(a.shape());
        let v: Vec<T> = a.iter().copied().collect();
        Tensor::from_buffer(T::into_buffer(v), shape)
    }

    // ---- accessors --------------------------------------------------------------

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn dims(&self) -> &[usize] {
        self.shape.dims()
    }

    pub fn rank(&self) -> usize {
        self.shape.rank()
    }

    pub fn numel(&self) -> usize {
        self.shape.numel()
    }

    pub fn dtype(&self) -> DType {
        match &self.repr {
            Repr::Concrete(s) => s.buf.dtype(),
            Repr::Symbolic(s) => s.dtype,
            Repr::Device(m) => m.dtype(),
        }
    }

    /// Where the elements live (a symbolic tensor: the device its function runs on).
    pub fn device(&self) -> Device {
        match &self.repr {
            Repr::Concrete(_) => Device::Cpu,
            Repr::Symbolic(s) => s.device,
            Repr::Device(m) => m.device(),
        }
    }

    /// A tensor of `shape` over elements a device backend made (for backends).
    /// Errors when the element count does not match the shape.
    pub fn from_device_memory(memory: Arc<dyn DeviceMemory>, shape: Shape) -> Result<Tensor> {
        if memory.len() != shape.numel() {
            return Err(Error::ElementCount { shape, len: memory.len() });
        }
        Ok(Tensor { id: TensorId::fresh(), shape, repr: Repr::Device(memory) })
    }

    /// The device elements of a tensor on a device (for backends); `None` on the CPU.
    pub fn device_memory(&self) -> Option<&Arc<dyn DeviceMemory>> {
        match &self.repr {
            Repr::Device(m) => Some(m),
            _ => None,
        }
    }

    /// This tensor's elements on `device` (the same tensor when already there): a copy
    /// between host and GPU. `Err` when the device is not available, and for a
    /// symbolic tensor (a traced function runs on its arguments' device).
    pub fn to(&self, device: Device) -> Result<Tensor> {
        if self.device() == device {
            return Ok(self.clone());
        }
        if self.is_symbolic() {
            return Err(Error::Function(format!(
                "to({device}): {} is symbolic (inside a traced function, which runs on the device of its \
                 arguments); move the arguments before the call instead",
                self.type_string()
            )));
        }
        let host = match &self.repr {
            Repr::Device(m) => {
                let buf = m.to_host()?;
                if device == Device::Cpu {
                    return Ok(Tensor::from_buffer(buf, self.shape.clone()));
                }
                buf
            }
            _ => self.buffer().clone(),
        };
        let memory = crate::device::upload(device, &host)?;
        Tensor::from_device_memory(memory, self.shape.clone())
    }

    /// The identity used by gradient tapes (shared by clones, new for every op result).
    pub fn id(&self) -> TensorId {
        self.id
    }

    /// `dtype[shape]`, as used in error messages (`f32[2,3]`).
    pub fn type_string(&self) -> String {
        format!("{}{}", self.dtype(), self.shape)
    }

    // ---- conversions ---------------------------------------------------------

    fn typed<T: Element>(&self) -> Result<&[T]> {
        if self.is_symbolic() {
            return Err(Error::SymbolicValue { tensor: self.type_string() });
        }
        if let Repr::Device(m) = &self.repr {
            return Err(Error::OnDevice { tensor: self.type_string(), device: m.device() });
        }
        self.data::<T>().ok_or_else(|| Error::DTypeMismatch { expected: T::DTYPE, found: self.dtype() })
    }

    /// Borrows the elements in row-major order.
    pub fn as_slice<T: Element>(&self) -> Result<&[T]> {
        self.typed()
    }

    /// Copies the elements out in row-major order.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        Ok(self.typed::<T>()?.to_vec())
    }

    /// The single element of a one-element tensor (any rank).
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        let v = self.typed::<T>()?;
        match v {
            [x] => Ok(*x),
            _ => Err(Error::NotAScalar { shape: self.shape.clone() }),
        }
    }

    /// Copies into an owned ndarray with dynamic rank.
    pub fn to_ndarray<T: Element>(&self) -> Result<ArrayD<T>> {
        ArrayD::from_shape_vec(IxDyn(self.dims()), self.to_vec()?).map_err(|e| Error::NdArray(e.to_string()))
    }

    /// A zero-copy ndarray view of the elements.
    pub fn view<T: Element>(&self) -> Result<ArrayViewD<'_, T>> {
        ArrayViewD::from_shape(IxDyn(self.dims()), self.typed::<T>()?).map_err(|e| Error::NdArray(e.to_string()))
    }
}

/// `n` copies of `v` as `dtype` (`as` semantics; integers exactly, an i64 beyond 2^53 is
/// not rounded through f64), allocated with `buffer::filled`'s out-of-memory check.
#[track_caller]
fn repeated(v: Scalar, dtype: DType, n: usize) -> Buffer {
    use crate::buffer::filled;
    let x = v.as_f64();
    let int = match v {
        Scalar::Int(i) => i,
        _ => x as i64,
    };
    match dtype {
        DType::F32 => Buffer::F32(filled(x as f32, n)),
        DType::F64 => Buffer::F64(filled(x, n)),
        DType::I32 => Buffer::I32(filled(if let Scalar::Int(i) = v { i as i32 } else { x as i32 }, n)),
        DType::I64 => Buffer::I64(filled(int, n)),
        DType::Bool => Buffer::Bool(filled(x != 0.0, n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_and_conversions() {
        let t = Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3]).unwrap();
        assert_eq!(t.dims(), &[2, 3]);
        assert_eq!(t.dtype(), DType::F32);
        assert_eq!(t.to_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(matches!(t.to_vec::<f64>(), Err(Error::DTypeMismatch { .. })));
        assert!(matches!(t.to_scalar::<f32>(), Err(Error::NotAScalar { .. })));
        assert_eq!(Tensor::scalar(7i64).to_scalar::<i64>().unwrap(), 7);
        let e = Tensor::from_vec(vec![1i32, 2, 3], [2, 2]).unwrap_err();
        assert_eq!(e.to_string(), "cannot build a tensor of shape [2,2] from 3 elements (the shape needs 4)");
        let z = Tensor::zeros([0, 3], DType::I32);
        assert_eq!(z.numel(), 0);
        assert_eq!(Tensor::arange(0i64, 5, 2).unwrap().to_vec::<i64>().unwrap(), vec![0, 2, 4]);
        assert_eq!(Tensor::arange(1.0f32, 0.0, -0.25).unwrap().to_vec::<f32>().unwrap(), vec![1.0, 0.75, 0.5, 0.25]);
        assert!(Tensor::arange(0, 1, 0).is_err());
    }

    #[test]
    fn ndarray_round_trip_any_layout() {
        let a = ndarray::Array2::from_shape_fn((3, 4), |(i, j)| (i * 10 + j) as f64);
        let t = Tensor::from_ndarray(&a.t());
        assert_eq!(t.dims(), &[4, 3]);
        assert_eq!(t.to_ndarray::<f64>().unwrap(), a.t().into_dyn());
        assert_eq!(t.view::<f64>().unwrap()[[1, 2]], 21.0);
    }
}

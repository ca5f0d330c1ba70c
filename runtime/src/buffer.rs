//! Host buffers and the buffer pool.
//!
//! Every concrete tensor owns one dense, row-major buffer. Large buffers are recycled
//! through a pool when a tensor dies: a fresh 16 MB allocation costs ~4000 page faults
//! (more than the arithmetic of an elementwise op over it), a recycled one none. The
//! pool keys buffers by exact element count (ML loops repeat the same shapes), keeps at
//! most `POOL_BYTES` in total, and only buffers of at least `POOL_MIN_BYTES`.

use std::sync::Mutex;

use crate::dtype::{DType, Element};

/// The storage of a concrete tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Buffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
}

impl Buffer {
    pub fn dtype(&self) -> DType {
        match self {
            Buffer::F32(_) => DType::F32,
            Buffer::F64(_) => DType::F64,
            Buffer::I32(_) => DType::I32,
            Buffer::I64(_) => DType::I64,
            Buffer::Bool(_) => DType::Bool,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Buffer::F32(v) => v.len(),
            Buffer::F64(v) => v.len(),
            Buffer::I32(v) => v.len(),
            Buffer::I64(v) => v.len(),
            Buffer::Bool(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const POOL_MIN_BYTES: usize = 256 * 1024;
const POOL_BYTES: usize = 512 * 1024 * 1024;

struct Pool<T> {
    free: Vec<Vec<T>>,
    bytes: usize,
}

trait Pooled: Element {
    fn pool() -> &'static Mutex<Pool<Self>>;
}

macro_rules! pooled {
    ($($t:ty),*) => {$(
        impl Pooled for $t {
            fn pool() -> &'static Mutex<Pool<$t>> {
                static POOL: Mutex<Pool<$t>> = Mutex::new(Pool { free: Vec::new(), bytes: 0 });
                &POOL
            }
        }
    )*};
}
pooled!(f32, f64, i32, i64, bool);

fn pooled_take<T: Pooled>(n: usize) -> Option<Vec<T>> {
    if n * std::mem::size_of::<T>() < POOL_MIN_BYTES {
        return None;
    }
    let mut pool = T::pool().lock().ok()?;
    let i = pool.free.iter().rposition(|v| v.len() == n)?;
    let v = pool.free.swap_remove(i);
    pool.bytes -= n * std::mem::size_of::<T>();
    Some(v)
}

fn pooled_give<T: Pooled>(v: Vec<T>) {
    let bytes = v.len() * std::mem::size_of::<T>();
    if !(POOL_MIN_BYTES..=POOL_BYTES).contains(&bytes) {
        return;
    }
    if let Ok(mut pool) = T::pool().lock() {
        // Oldest first out when over budget.
        while pool.bytes + bytes > POOL_BYTES && !pool.free.is_empty() {
            let old = pool.free.remove(0);
            pool.bytes -= old.len() * std::mem::size_of::<T>();
        }
        pool.bytes += bytes;
        pool.free.push(v);
    }
}

/// A buffer of `n` elements whose contents are unspecified (but initialised): the
/// caller overwrites every element. Recycled from the pool when possible.
pub(crate) fn alloc<T: Element>(n: usize) -> Vec<T> {
    macro_rules! try_pool {
        ($($t:ty),*) => {$(
            if T::DTYPE == <$t as Element>::DTYPE {
                if let Some(v) = pooled_take::<$t>(n) {
                    // SAFETY-free cast: T and $t are the same type (same DTYPE).
                    return cast_vec::<$t, T>(v);
                }
            }
        )*};
    }
    try_pool!(f32, f64, i32, i64, bool);
    ensure_allocatable::<T>(n);
    vec![T::default(); n]
}

/// `vec![value; n]`, with [`ensure_allocatable`]'s check first.
#[track_caller]
pub(crate) fn filled<T: Element>(value: T, n: usize) -> Vec<T> {
    ensure_allocatable::<T>(n);
    vec![value; n]
}

/// Large buffers (64 MiB and more) are first asked of the allocator fallibly, so that a
/// tensor too large for the machine is a panic naming its size — an error the program can
/// report or catch — instead of the allocator's abort. Smaller ones skip the probe (the
/// dispatch path allocates them constantly).
#[track_caller]
pub(crate) fn ensure_allocatable<T: Element>(n: usize) {
    let bytes = n.saturating_mul(std::mem::size_of::<T>());
    if bytes < 1 << 26 {
        return;
    }
    let mut probe: Vec<T> = Vec::new();
    if probe.try_reserve_exact(n).is_err() {
        crate::error::OpError::new(
            "alloc",
            format!("out of memory: a buffer of {n} {} elements ({bytes} bytes) cannot be allocated", T::DTYPE),
        )
        .raise(std::panic::Location::caller())
    }
}

/// A pooled f32 buffer of exactly `n` elements, if one is free.
pub(crate) fn pooled_f32(n: usize) -> Option<Vec<f32>> {
    pooled_take::<f32>(n)
}

/// Returns a dying buffer to the pool.
pub(crate) fn recycle(buf: &mut Buffer) {
    match buf {
        Buffer::F32(v) => pooled_give(std::mem::take(v)),
        Buffer::F64(v) => pooled_give(std::mem::take(v)),
        Buffer::I32(v) => pooled_give(std::mem::take(v)),
        Buffer::I64(v) => pooled_give(std::mem::take(v)),
        Buffer::Bool(v) => pooled_give(std::mem::take(v)),
    }
}

/// Converts a `Vec<A>` into a `Vec<B>` when A and B are the same type.
fn cast_vec<A: Element, B: Element>(v: Vec<A>) -> Vec<B> {
    let mut v = Some(v);
    let any: &mut dyn std::any::Any = &mut v;
    match any.downcast_mut::<Option<Vec<B>>>() {
        Some(b) => b.take().unwrap_or_default(),
        None => Vec::new(),
    }
}

/// `same_type!(buf, v => expr)`: applies a generic expression to the typed vector of a
/// buffer and wraps the result (a `Vec` of the same element type) back into a `Buffer`.
macro_rules! same_type {
    ($buf:expr, $v:ident => $e:expr) => {
        match $buf {
            $crate::buffer::Buffer::F32($v) => $crate::buffer::Buffer::F32($e),
            $crate::buffer::Buffer::F64($v) => $crate::buffer::Buffer::F64($e),
            $crate::buffer::Buffer::I32($v) => $crate::buffer::Buffer::I32($e),
            $crate::buffer::Buffer::I64($v) => $crate::buffer::Buffer::I64($e),
            $crate::buffer::Buffer::Bool($v) => $crate::buffer::Buffer::Bool($e),
        }
    };
}
pub(crate) use same_type;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_are_recycled() {
        let n = 1_000_003; // a size no other test uses
        let mut b = Buffer::F32(vec![1.5; n]);
        let ptr = match &b {
            Buffer::F32(v) => v.as_ptr(),
            _ => unreachable!(),
        };
        recycle(&mut b);
        let v = alloc::<f32>(n);
        assert_eq!(v.len(), n);
        assert_eq!(v.as_ptr(), ptr);
        // Small buffers bypass the pool.
        assert_eq!(alloc::<f64>(3), vec![0.0; 3]);
    }
}

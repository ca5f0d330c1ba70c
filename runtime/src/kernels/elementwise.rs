//! Eager kernels of the elementwise ops.

use super::bcast::Bcast;
use super::par::{for_chunks, map1, map2, run_wide, simd_wide, WideLoop};
use crate::buffer::{alloc, Buffer};
use crate::dtype::Element;
use crate::math::FloatMath;
use crate::ops::{BinaryOp, UnaryOp};
use crate::shape::Shape;
use crate::tensor::Tensor;

pub(crate) fn unary(op: UnaryOp, x: &Tensor, shape: Shape) -> Tensor {
    let buf = match x.buffer() {
        Buffer::F32(a) => Buffer::F32(unary_float(op, a)),
        Buffer::F64(a) => Buffer::F64(unary_float(op, a)),
        Buffer::I32(a) => Buffer::I32(unary_int(op, a)),
        Buffer::I64(a) => Buffer::I64(unary_int(op, a)),
        Buffer::Bool(a) => Buffer::Bool(mapped(a, |x: bool| !x)),
    };
    Tensor::from_buffer(buf, shape)
}

fn mapped<A: Copy + Sync, O: Element>(a: &[A], f: impl Fn(A) -> O + Sync + Copy) -> Vec<O> {
    let mut out = alloc::<O>(a.len());
    map1(a, &mut out, f);
    out
}

/// `out[i] = f(c[i], a[i], b[i])`, where an input of length 1 stands for every `i`.
#[inline(always)]
fn zip3<C: Copy, A: Copy, B: Copy, O>(out: &mut [O], c: &[C], a: &[A], b: &[B], f: impl Fn(C, A, B) -> O) {
    match (a.len(), b.len()) {
        (1, _) => out.iter_mut().zip(c).zip(b).for_each(|((o, &c), &b)| *o = f(c, a[0], b)),
        (_, 1) => out.iter_mut().zip(c).zip(a).for_each(|((o, &c), &a)| *o = f(c, a, b[0])),
        _ => out.iter_mut().zip(c).zip(a).zip(b).for_each(|(((o, &c), &a), &b)| *o = f(c, a, b)),
    }
}

#[inline(always)]
fn sel<T>(c: bool, a: T, b: T) -> T {
    if c {
        a
    } else {
        b
    }
}

fn unary_float<T: FloatMath>(op: UnaryOp, a: &[T]) -> Vec<T> {
    let zero = T::ZERO;
    let one = T::ONE;
    match op {
        UnaryOp::Neg => mapped(a, |x: T| -x),
        UnaryOp::Abs => mapped(a, |x: T| x.abs()),
        UnaryOp::Sign => mapped(a, move |x: T| sel(x > zero, one, sel(x < zero, -one, x))),
        UnaryOp::Exp => mapped(a, |x: T| x.exp()),
        UnaryOp::Log => mapped(a, |x: T| x.log()),
        UnaryOp::Sqrt => mapped(a, |x: T| x.sqrt()),
        UnaryOp::Rsqrt => mapped(a, move |x: T| one / x.sqrt()),
        UnaryOp::Square => mapped(a, |x: T| x * x),
        UnaryOp::Tanh => mapped(a, |x: T| x.tanh()),
        UnaryOp::Sigmoid => mapped(a, |x: T| x.sigmoid()),
        UnaryOp::Relu => mapped(a, move |x: T| sel(x < zero, zero, x)),
        UnaryOp::Softplus => map_wide::<T, SoftplusFn>(a),
        UnaryOp::Sin => map_wide::<T, SinFn>(a),
        UnaryOp::Cos => map_wide::<T, CosFn>(a),
        UnaryOp::Erf => map_wide::<T, ErfFn>(a),
        UnaryOp::Floor => mapped(a, |x: T| x.floor()),
        UnaryOp::Ceil => mapped(a, |x: T| x.ceil()),
        UnaryOp::LogicalNot => unreachable!("rejected by infer_unary"),
    }
}

/// A per-element function as a type, so that a loop over it can be compiled per
/// instruction set (`par::run_wide`; a closure would not be inlined there).
trait PerElement<T: FloatMath>: Sync {
    fn at(x: T) -> T;
    /// Whether `at(x) = y` must be redone with `exact` (the rare arguments of `sin`/`cos`
    /// that need the exact reduction); the loop ORs it into one flag per chunk.
    #[inline(always)]
    fn redo(_x: T, _y: T) -> bool {
        false
    }
    fn exact(x: T) -> T {
        Self::at(x)
    }
}

/// `erf` (four rational fits and two f64 exps an element).
struct ErfFn;
impl<T: FloatMath> PerElement<T> for ErfFn {
    #[inline(always)]
    fn at(x: T) -> T {
        x.erf()
    }
}

/// `softplus` (f64: an exp and a log an element).
struct SoftplusFn;
impl<T: FloatMath> PerElement<T> for SoftplusFn {
    #[inline(always)]
    fn at(x: T) -> T {
        x.softplus()
    }
}

/// `sin`: the branch-free form, the scalar function's bits where it needs the exact
/// reduction (`FloatMath::trig_needs_exact`).
struct SinFn;
impl<T: FloatMath> PerElement<T> for SinFn {
    #[inline(always)]
    fn at(x: T) -> T {
        x.sin_near()
    }
    #[inline(always)]
    fn redo(x: T, y: T) -> bool {
        x.trig_needs_exact(y)
    }
    fn exact(x: T) -> T {
        x.sin()
    }
}

/// `cos`, as `SinFn`.
struct CosFn;
impl<T: FloatMath> PerElement<T> for CosFn {
    #[inline(always)]
    fn at(x: T) -> T {
        x.cos_near()
    }
    #[inline(always)]
    fn redo(x: T, y: T) -> bool {
        x.trig_needs_exact(y)
    }
    fn exact(x: T) -> T {
        x.cos()
    }
}

/// `F::at` over a slice, its loop compiled per instruction set (`par::run_wide`): for the
/// functions whose per-element code is too large to inline into `simd_wide`. Elements
/// `F::redo` flags are then redone with `F::exact` (a chunk without any: no second pass).
fn map_wide<T: FloatMath, F: PerElement<T>>(a: &[T]) -> Vec<T> {
    struct Map<'a, T, F> {
        a: &'a [T],
        o: &'a mut [T],
        redo: bool,
        f: std::marker::PhantomData<F>,
    }
    impl<T: FloatMath, F: PerElement<T>> WideLoop for Map<'_, T, F> {
        #[inline(always)]
        fn run(&mut self) {
            let mut redo = false;
            for (o, &x) in self.o.iter_mut().zip(self.a) {
                let y = F::at(x);
                *o = y;
                redo |= F::redo(x, y);
            }
            self.redo = redo;
        }
    }
    let mut out = alloc::<T>(a.len());
    for_chunks(&mut out, |off, o| {
        let a = &a[off..off + o.len()];
        let mut map = Map::<T, F> { a, o, redo: false, f: std::marker::PhantomData };
        run_wide(&mut map);
        if map.redo {
            for (o, &x) in map.o.iter_mut().zip(a) {
                if F::redo(x, *o) {
                    *o = F::exact(x);
                }
            }
        }
    });
    out
}

/// `pow` where both operands have the output's shape or one is a single element (the
/// common cases: `x.pow(2.0)`), its loop compiled per instruction set (`par::run_wide`);
/// other broadcasts through `zip_bcast`.
fn pow<T: FloatMath>((a, sa): (&[T], &Shape), (b, sb): (&[T], &Shape), so: &Shape) -> Vec<T> {
    let n = so.numel();
    let whole = |v: &[T], s: &Shape| s == so || (v.len() == 1 && n > 0);
    if !(whole(a, sa) && whole(b, sb)) {
        return zip_bcast((a, sa), (b, sb), so, |x: T, y: T| x.pow(y));
    }
    /// `o[i] = a[i]^b[i]`, an operand of one element standing for all.
    struct Pow<'a, T> {
        a: &'a [T],
        b: &'a [T],
        o: &'a mut [T],
    }
    impl<T: FloatMath> WideLoop for Pow<'_, T> {
        #[inline(always)]
        fn run(&mut self) {
            match (self.a.len() == 1 && self.o.len() > 1, self.b.len() == 1 && self.o.len() > 1) {
                (false, false) => {
                    for ((o, &x), &y) in self.o.iter_mut().zip(self.a).zip(self.b) {
                        *o = x.pow(y);
                    }
                }
                (false, true) => {
                    let y = self.b[0];
                    for (o, &x) in self.o.iter_mut().zip(self.a) {
                        *o = x.pow(y);
                    }
                }
                (true, false) => {
                    let x = self.a[0];
                    for (o, &y) in self.o.iter_mut().zip(self.b) {
                        *o = x.pow(y);
                    }
                }
                (true, true) => self.o.iter_mut().for_each(|o| *o = self.a[0].pow(self.b[0])),
            }
        }
    }
    let mut out = alloc::<T>(n);
    fn part<T>(v: &[T], off: usize, len: usize) -> &[T] {
        if v.len() == 1 {
            v
        } else {
            &v[off..off + len]
        }
    }
    for_chunks(&mut out, |off, o| {
        let len = o.len();
        run_wide(&mut Pow { a: part(a, off, len), b: part(b, off, len), o })
    });
    out
}

/// `out[i] = op(x[i])` for the transcendental unary ops, on the calling thread, with
/// exactly the eager kernels' per-element functions (and their vector width).
pub(crate) fn unary_f32_into(op: UnaryOp, x: &[f32], out: &mut [f32]) {
    macro_rules! each {
        ($f:expr) => {
            simd_wide(|| {
                for (o, &a) in out.iter_mut().zip(x) {
                    *o = $f(a);
                }
            })
        };
    }
    match op {
        UnaryOp::Exp => each!(FloatMath::exp),
        UnaryOp::Log => each!(FloatMath::log),
        UnaryOp::Tanh => each!(FloatMath::tanh),
        UnaryOp::Sigmoid => each!(FloatMath::sigmoid),
        UnaryOp::Softplus => each!(FloatMath::softplus),
        _ => {
            let t = unary_float(op, x);
            out.copy_from_slice(&t[..out.len()]);
        }
    }
}

/// Integer arithmetic with wrapping (two's complement) semantics, as TensorFlow's
/// integer kernels have.
pub(crate) trait Int: Element + Ord + std::ops::Rem<Output = Self> {
    const ZERO: Self;
    fn wadd(self, o: Self) -> Self;
    fn wsub(self, o: Self) -> Self;
    fn wmul(self, o: Self) -> Self;
    fn wneg(self) -> Self;
    fn wabs(self) -> Self;
    fn sign(self) -> Self;
    /// ⌊a/b⌋ toward −∞; b = 0 gives 0.
    fn floordiv(self, o: Self) -> Self;
    /// `self − floordiv(self, o)·o` (the sign of `o`); b = 0 gives 0.
    fn floormod(self, o: Self) -> Self;
    /// Truncating division (for integer `mean`); b = 0 gives 0.
    fn truncdiv(self, o: Self) -> Self;
    fn ipow(self, e: Self) -> Self;
    fn from_usize(n: usize) -> Self;
}

macro_rules! int_impl {
    ($($t:ty),*) => {$(
        impl Int for $t {
            const ZERO: $t = 0;
            #[inline(always)] fn wadd(self, o: $t) -> $t { self.wrapping_add(o) }
            #[inline(always)] fn wsub(self, o: $t) -> $t { self.wrapping_sub(o) }
            #[inline(always)] fn wmul(self, o: $t) -> $t { self.wrapping_mul(o) }
            #[inline(always)] fn wneg(self) -> $t { self.wrapping_neg() }
            #[inline(always)] fn wabs(self) -> $t { self.wrapping_abs() }
            #[inline(always)] fn sign(self) -> $t { self.signum() }
            #[inline(always)]
            fn floordiv(self, o: $t) -> $t {
                if o == 0 { return 0; }
                let q = self.wrapping_div(o);
                if (self.wrapping_rem(o) != 0) && ((self < 0) != (o < 0)) { q - 1 } else { q }
            }
            #[inline(always)]
            fn floormod(self, o: $t) -> $t {
                if o == 0 { return 0; }
                let r = self.wrapping_rem(o);
                if r != 0 && ((r < 0) != (o < 0)) { r.wrapping_add(o) } else { r }
            }
            #[inline(always)]
            fn truncdiv(self, o: $t) -> $t {
                if o == 0 { 0 } else { self.wrapping_div(o) }
            }
            fn ipow(self, e: $t) -> $t {
                if e < 0 {
                    return match self { 1 => 1, -1 => if e % 2 == 0 { 1 } else { -1 }, _ => 0 };
                }
                let (mut base, mut e, mut acc) = (self, e, 1 as $t);
                while e > 0 {
                    if e & 1 == 1 { acc = acc.wrapping_mul(base); }
                    base = base.wrapping_mul(base);
                    e >>= 1;
                }
                acc
            }
            #[inline(always)] fn from_usize(n: usize) -> $t { n as $t }
        }
    )*};
}
int_impl!(i32, i64);

fn unary_int<T: Int>(op: UnaryOp, a: &[T]) -> Vec<T> {
    match op {
        UnaryOp::Neg => mapped(a, |x: T| x.wneg()),
        UnaryOp::Abs => mapped(a, |x: T| x.wabs()),
        UnaryOp::Sign => mapped(a, |x: T| x.sign()),
        UnaryOp::Square => mapped(a, |x: T| x.wmul(x)),
        UnaryOp::Relu => mapped(a, |x: T| x.max(T::ZERO)),
        _ => unreachable!("rejected by infer_unary"),
    }
}

/// `out = f(a, b)` with broadcasting into `so`.
pub(crate) fn zip_bcast<A: Copy + Sync, B: Copy + Sync, O: Element>(
    (a, sa): (&[A], &Shape),
    (b, sb): (&[B], &Shape),
    so: &Shape,
    f: impl Fn(A, B) -> O + Sync + Copy,
) -> Vec<O> {
    let mut out = alloc::<O>(so.numel());
    if sa == so && sb == so {
        map2(a, b, &mut out, f);
    } else if b.len() == 1 && sa == so {
        let b0 = b[0];
        map1(a, &mut out, move |x| f(x, b0));
    } else if a.len() == 1 && sb == so {
        let a0 = a[0];
        map1(b, &mut out, move |y| f(a0, y));
    } else {
        let bc = Bcast::new(so, [sa, sb]);
        let (n, st) = bc.inner();
        bc.for_rows(&mut out, |row, [oa, ob]| {
            simd_wide(|| match st {
                [1, 1] => row.iter_mut().zip(&a[oa..oa + n]).zip(&b[ob..ob + n]).for_each(|((o, &x), &y)| *o = f(x, y)),
                [0, 1] => row.iter_mut().zip(&b[ob..ob + n]).for_each(|(o, &y)| *o = f(a[oa], y)),
                [1, 0] => row.iter_mut().zip(&a[oa..oa + n]).for_each(|(o, &x)| *o = f(x, b[ob])),
                _ => row.iter_mut().for_each(|o| *o = f(a[oa], b[ob])),
            })
        });
    }
    out
}

pub(crate) fn binary(op: BinaryOp, a: &Tensor, b: &Tensor, shape: Shape) -> Tensor {
    let (sa, sb) = (a.shape(), b.shape());
    let buf = match (a.buffer(), b.buffer()) {
        (Buffer::F32(x), Buffer::F32(y)) => binary_float(op, (x, sa), (y, sb), &shape),
        (Buffer::F64(x), Buffer::F64(y)) => binary_float(op, (x, sa), (y, sb), &shape),
        (Buffer::I32(x), Buffer::I32(y)) => binary_int(op, (x, sa), (y, sb), &shape),
        (Buffer::I64(x), Buffer::I64(y)) => binary_int(op, (x, sa), (y, sb), &shape),
        (Buffer::Bool(x), Buffer::Bool(y)) => Buffer::Bool(match op {
            BinaryOp::LogicalAnd => zip_bcast((x, sa), (y, sb), &shape, |a, b| a & b),
            BinaryOp::LogicalOr => zip_bcast((x, sa), (y, sb), &shape, |a, b| a | b),
            BinaryOp::Eq => zip_bcast((x, sa), (y, sb), &shape, |a, b| a == b),
            BinaryOp::Ne => zip_bcast((x, sa), (y, sb), &shape, |a, b| a != b),
            _ => unreachable!("rejected by infer_binary"),
        }),
        _ => unreachable!("dtypes checked by infer_binary"),
    };
    Tensor::from_buffer(buf, shape)
}

/// Comparisons shared by floats and integers.
fn compare<T: Element>(op: BinaryOp, a: (&[T], &Shape), b: (&[T], &Shape), so: &Shape) -> Vec<bool> {
    match op {
        BinaryOp::Eq => zip_bcast(a, b, so, |x, y| x == y),
        BinaryOp::Ne => zip_bcast(a, b, so, |x, y| x != y),
        BinaryOp::Lt => zip_bcast(a, b, so, |x, y| x < y),
        BinaryOp::Le => zip_bcast(a, b, so, |x, y| x <= y),
        BinaryOp::Gt => zip_bcast(a, b, so, |x, y| x > y),
        BinaryOp::Ge => zip_bcast(a, b, so, |x, y| x >= y),
        _ => unreachable!(),
    }
}

fn binary_float<T: FloatMath>(op: BinaryOp, a: (&[T], &Shape), b: (&[T], &Shape), so: &Shape) -> Buffer {
    if op.is_comparison() {
        return Buffer::Bool(compare(op, a, b, so));
    }
    T::into_buffer(match op {
        BinaryOp::Add => zip_bcast(a, b, so, |x: T, y: T| x + y),
        BinaryOp::Sub => zip_bcast(a, b, so, |x: T, y: T| x - y),
        BinaryOp::Mul => zip_bcast(a, b, so, |x: T, y: T| x * y),
        BinaryOp::Div => zip_bcast(a, b, so, |x: T, y: T| x / y),
        BinaryOp::FloorDiv => zip_bcast(a, b, so, |x: T, y: T| (x / y).floor()),
        BinaryOp::Mod => zip_bcast(a, b, so, T::floormod),
        BinaryOp::Pow => pow(a, b, so),
        // NaN propagates; ties keep the left operand (its gradient convention).
        #[allow(clippy::eq_op)]
        BinaryOp::Maximum => zip_bcast(a, b, so, |x: T, y: T| sel(x >= y || x != x, x, y)),
        #[allow(clippy::eq_op)]
        BinaryOp::Minimum => zip_bcast(a, b, so, |x: T, y: T| sel(x <= y || x != x, x, y)),
        _ => unreachable!("rejected by infer_binary"),
    })
}

fn binary_int<T: Int>(op: BinaryOp, a: (&[T], &Shape), b: (&[T], &Shape), so: &Shape) -> Buffer {
    if op.is_comparison() {
        return Buffer::Bool(compare(op, a, b, so));
    }
    T::into_buffer(match op {
        BinaryOp::Add => zip_bcast(a, b, so, T::wadd),
        BinaryOp::Sub => zip_bcast(a, b, so, T::wsub),
        BinaryOp::Mul => zip_bcast(a, b, so, T::wmul),
        BinaryOp::Div | BinaryOp::FloorDiv => zip_bcast(a, b, so, T::floordiv),
        BinaryOp::Mod => zip_bcast(a, b, so, T::floormod),
        BinaryOp::Pow => zip_bcast(a, b, so, T::ipow),
        BinaryOp::Maximum => zip_bcast(a, b, so, |x: T, y: T| x.max(y)),
        BinaryOp::Minimum => zip_bcast(a, b, so, |x: T, y: T| x.min(y)),
        _ => unreachable!("rejected by infer_binary"),
    })
}

pub(crate) fn select(c: &Tensor, a: &Tensor, b: &Tensor, shape: Shape) -> Tensor {
    fn go<T: Element>(c: &Tensor, a: &Tensor, b: &Tensor, so: &Shape) -> Vec<T> {
        let (cv, av, bv) =
            (c.data::<bool>().unwrap_or(&[]), a.data::<T>().unwrap_or(&[]), b.data::<T>().unwrap_or(&[]));
        let mut out = alloc::<T>(so.numel());
        if by_rows((cv, c.shape()), (av, a.shape()), (bv, b.shape()), so, &mut out) {
            return out;
        }
        let bc = Bcast::new(so, [c.shape(), a.shape(), b.shape()]);
        let (n, st) = bc.inner();
        bc.for_rows(&mut out, |row, [oc, oa, ob]| {
            let (c, a, b) = (&cv[oc..], &av[oa..], &bv[ob..]);
            // Each input walks the row contiguously (stride 1) or stays put (0): one
            // slice loop per pattern, so the select vectorises.
            simd_wide(|| match st {
                [1, 1, 1] => zip3(row, &c[..n], &a[..n], &b[..n], sel),
                [1, 1, 0] => zip3(row, &c[..n], &a[..n], &[b[0]], |c, a, b| sel(c, a, b)),
                [1, 0, 1] => zip3(row, &c[..n], &[a[0]], &b[..n], |c, a, b| sel(c, a, b)),
                [1, 0, 0] => row.iter_mut().zip(&c[..n]).for_each(|(o, &c)| *o = sel(c, a[0], b[0])),
                [0, 1, 1] => row.iter_mut().zip(&a[..n]).zip(&b[..n]).for_each(|((o, &a), &b)| *o = sel(c[0], a, b)),
                _ => row.iter_mut().enumerate().for_each(|(i, o)| {
                    *o = sel(c[i * st[0]], a[i * st[1]], b[i * st[2]]);
                }),
            })
        });
        out
    }
    let buf = match a.buffer() {
        Buffer::F32(_) => Buffer::F32(go(c, a, b, &shape)),
        Buffer::F64(_) => Buffer::F64(go(c, a, b, &shape)),
        Buffer::I32(_) => Buffer::I32(go(c, a, b, &shape)),
        Buffer::I64(_) => Buffer::I64(go(c, a, b, &shape)),
        Buffer::Bool(_) => Buffer::Bool(go(c, a, b, &shape)),
    };
    Tensor::from_buffer(buf, shape)
}

/// The largest output [`by_rows`] handles (larger ones take the parallel path).
const BY_ROWS_MAX: usize = 1 << 18;

/// `select` with one mask value per row (`c` of the output's shape but a last axis of 1:
/// a recurrent layer's mask of padded steps) choosing whole rows of `a` or `b`, each of
/// the output's shape or a single value: a copy or a fill per row, without the
/// broadcasting walk's per-row offsets. `false` when the shapes are not of that kind.
fn by_rows<T: Element>(
    (c, sc): (&[bool], &Shape),
    (a, sa): (&[T], &Shape),
    (b, sb): (&[T], &Shape),
    so: &Shape,
    out: &mut [T],
) -> bool {
    let dims = so.dims();
    let Some((&n, lead)) = dims.split_last() else { return false };
    let row_mask = sc.dims().split_last().is_some_and(|(&one, l)| one == 1 && l == lead);
    let fits = |v: &[T], s: &Shape| v.len() == 1 || s.dims() == dims;
    if !row_mask || n < 2 || out.len() > BY_ROWS_MAX || !fits(a, sa) || !fits(b, sb) {
        return false;
    }
    for (r, (row, &keep)) in out.chunks_exact_mut(n).zip(c).enumerate() {
        match if keep { a } else { b } {
            [v] => row.fill(*v),
            src => row.copy_from_slice(&src[r * n..(r + 1) * n]),
        }
    }
    true
}

/// `as`-style conversion between element types.
pub(crate) trait CastTo<B> {
    fn cast_to(self) -> B;
}

macro_rules! cast_num {
    ($($a:ty),*) => {$(
        impl CastTo<f32> for $a { #[inline(always)] fn cast_to(self) -> f32 { self as f32 } }
        impl CastTo<f64> for $a { #[inline(always)] fn cast_to(self) -> f64 { self as f64 } }
        impl CastTo<i32> for $a { #[inline(always)] fn cast_to(self) -> i32 { self as i32 } }
        impl CastTo<i64> for $a { #[inline(always)] fn cast_to(self) -> i64 { self as i64 } }
        impl CastTo<bool> for $a {
            #[inline(always)]
            #[allow(clippy::float_cmp)]
            fn cast_to(self) -> bool { self != (0 as $a) }
        }
        impl CastTo<$a> for bool { #[inline(always)] fn cast_to(self) -> $a { self as u8 as $a } }
    )*};
}
cast_num!(f32, f64, i32, i64);
impl CastTo<bool> for bool {
    fn cast_to(self) -> bool {
        self
    }
}

fn cast_slice<A: Copy + Sync + CastTo<B>, B: Element>(a: &[A]) -> Vec<B> {
    mapped(a, |x: A| x.cast_to())
}

fn cast_from<A: Copy + Sync + CastTo<f32> + CastTo<f64> + CastTo<i32> + CastTo<i64> + CastTo<bool>>(
    a: &[A],
    to: crate::DType,
) -> Buffer {
    use crate::DType::*;
    match to {
        F32 => Buffer::F32(cast_slice(a)),
        F64 => Buffer::F64(cast_slice(a)),
        I32 => Buffer::I32(cast_slice(a)),
        I64 => Buffer::I64(cast_slice(a)),
        Bool => Buffer::Bool(cast_slice(a)),
    }
}

pub(crate) fn cast(x: &Tensor, to: crate::DType, shape: Shape) -> Tensor {
    let buf = match x.buffer() {
        Buffer::F32(a) => cast_from(a, to),
        Buffer::F64(a) => cast_from(a, to),
        Buffer::I32(a) => cast_from(a, to),
        Buffer::I64(a) => cast_from(a, to),
        Buffer::Bool(a) => cast_from(a, to),
    };
    Tensor::from_buffer(buf, shape)
}

//! Shapes, broadcasting and axis arguments.

use std::fmt;
use std::ops::Deref;

use smallvec::SmallVec;

/// A dimension whose size is not known while tracing (`None` in an `input_signature`);
/// printed `?`. Only symbolic tensors have such dims: at run time every dim is known.
pub const UNKNOWN: usize = usize::MAX;

/// Dimensions of a tensor, outermost first (row-major). Stored inline up to rank 4 so
/// the dispatch path allocates nothing for shapes. Symbolic tensors may have
/// [`UNKNOWN`] dims.
#[derive(PartialEq, Eq, Hash, Default)]
pub struct Shape(SmallVec<[usize; 4]>);

/// Cloned by copying the dims (SmallVec's generic `clone` goes through `extend`, several
/// times slower; every tensor clone clones its shape).
impl Clone for Shape {
    #[inline]
    fn clone(&self) -> Shape {
        Shape(SmallVec::from_slice(&self.0))
    }
}

impl Shape {
    pub fn scalar() -> Shape {
        Shape(SmallVec::new())
    }

    pub fn new(dims: &[usize]) -> Shape {
        Shape(SmallVec::from_slice(dims))
    }

    pub fn rank(&self) -> usize {
        self.0.len()
    }

    /// Number of elements (1 for a scalar, 0 when any dim is 0); [`UNKNOWN`] when a dim
    /// is unknown (and none is 0).
    #[inline]
    pub fn numel(&self) -> usize {
        // One pass (this runs on every tensor construction and kernel dispatch).
        let (mut n, mut unknown) = (1usize, false);
        for &d in self.0.iter() {
            if d == 0 {
                return 0;
            }
            if d == UNKNOWN {
                unknown = true;
            } else {
                n = n.wrapping_mul(d);
            }
        }
        if unknown {
            UNKNOWN
        } else {
            n
        }
    }

    /// Whether every dim is known.
    pub fn is_fully_known(&self) -> bool {
        !self.0.contains(&UNKNOWN)
    }

    /// A shape from optional dims (`None` = unknown).
    pub fn with_unknown(dims: &[Option<usize>]) -> Shape {
        Shape(dims.iter().map(|d| d.unwrap_or(UNKNOWN)).collect())
    }

    /// Whether a concrete shape fits this (possibly partly unknown) one.
    pub fn accepts(&self, concrete: &Shape) -> bool {
        self.rank() == concrete.rank() && self.0.iter().zip(concrete.iter()).all(|(&a, &b)| a == UNKNOWN || a == b)
    }

    pub fn dims(&self) -> &[usize] {
        &self.0
    }

    pub(crate) fn push(&mut self, d: usize) {
        self.0.push(d)
    }

    pub(crate) fn from_iter_dims(it: impl IntoIterator<Item = usize>) -> Shape {
        Shape(it.into_iter().collect())
    }

    /// Row-major strides in elements.
    pub fn strides(&self) -> SmallVec<[usize; 4]> {
        let mut s: SmallVec<[usize; 4]> = SmallVec::from_elem(1, self.rank());
        for i in (0..self.rank().saturating_sub(1)).rev() {
            s[i] = s[i + 1] * self.0[i + 1];
        }
        s
    }

    /// NumPy broadcasting of two shapes, or `None` when they are incompatible.
    pub fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
        if a == b {
            return Some(a.clone());
        }
        let rank = a.rank().max(b.rank());
        let mut out = Shape(SmallVec::from_elem(0, rank));
        for i in 0..rank {
            let da = if i + a.rank() >= rank { a.0[i + a.rank() - rank] } else { 1 };
            let db = if i + b.rank() >= rank { b.0[i + b.rank() - rank] } else { 1 };
            out.0[i] = match (da, db) {
                (x, y) if x == y => x,
                (1, y) => y,
                (x, 1) => x,
                // An unknown dim meeting a known one > 1 must be it (checked at run time).
                (UNKNOWN, y) => y,
                (x, UNKNOWN) => x,
                _ => return None,
            };
        }
        Some(out)
    }
}

impl Deref for Shape {
    type Target = [usize];
    fn deref(&self) -> &[usize] {
        &self.0
    }
}

impl fmt::Debug for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if *d == UNKNOWN {
                f.write_str("?")?;
            } else {
                write!(f, "{d}")?;
            }
        }
        f.write_str("]")
    }
}

impl From<&[usize]> for Shape {
    fn from(d: &[usize]) -> Shape {
        Shape::new(d)
    }
}
impl<const N: usize> From<[usize; N]> for Shape {
    fn from(d: [usize; N]) -> Shape {
        Shape::new(&d)
    }
}
impl<const N: usize> From<&[usize; N]> for Shape {
    fn from(d: &[usize; N]) -> Shape {
        Shape::new(d)
    }
}
impl From<Vec<usize>> for Shape {
    fn from(d: Vec<usize>) -> Shape {
        Shape::new(&d)
    }
}
impl From<&Vec<usize>> for Shape {
    fn from(d: &Vec<usize>) -> Shape {
        Shape::new(d)
    }
}
impl From<&Shape> for Shape {
    fn from(s: &Shape) -> Shape {
        s.clone()
    }
}
impl From<()> for Shape {
    fn from(_: ()) -> Shape {
        Shape::scalar()
    }
}

/// Which axes a reduction runs over. `Axes::All` reduces everything (TensorFlow's
/// `axis=None`); an empty list reduces nothing. Negative axes count from the end.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Axes {
    All,
    List(SmallVec<[i64; 4]>),
}

impl From<i64> for Axes {
    fn from(a: i64) -> Axes {
        Axes::List(SmallVec::from_slice(&[a]))
    }
}
impl From<i32> for Axes {
    fn from(a: i32) -> Axes {
        Axes::List(SmallVec::from_slice(&[a as i64]))
    }
}
impl<const N: usize> From<[i64; N]> for Axes {
    fn from(a: [i64; N]) -> Axes {
        Axes::List(SmallVec::from_slice(&a))
    }
}
impl<const N: usize> From<&[i64; N]> for Axes {
    fn from(a: &[i64; N]) -> Axes {
        Axes::List(SmallVec::from_slice(a))
    }
}
impl From<&[i64]> for Axes {
    fn from(a: &[i64]) -> Axes {
        Axes::List(SmallVec::from_slice(a))
    }
}
impl From<Vec<i64>> for Axes {
    fn from(a: Vec<i64>) -> Axes {
        Axes::List(SmallVec::from_vec(a))
    }
}
impl<T: Into<Axes>> From<Option<T>> for Axes {
    fn from(a: Option<T>) -> Axes {
        a.map_or(Axes::All, Into::into)
    }
}

/// Whether two dim lists agree, an unknown dim matching anything.
pub(crate) fn dims_match(a: &[usize], b: &[usize]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| x == y || x == UNKNOWN || y == UNKNOWN)
}

/// Normalises a possibly negative axis against `rank`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    (0..r).contains(&a).then_some(a as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broadcasting_follows_numpy() {
        let s = |d: &[usize]| Shape::new(d);
        assert_eq!(Shape::broadcast(&s(&[2, 1, 3]), &s(&[4, 1])), Some(s(&[2, 4, 3])));
        assert_eq!(Shape::broadcast(&s(&[]), &s(&[5])), Some(s(&[5])));
        assert_eq!(Shape::broadcast(&s(&[0, 3]), &s(&[1, 3])), Some(s(&[0, 3])));
        assert_eq!(Shape::broadcast(&s(&[2, 3]), &s(&[3, 2])), None);
        let u = Shape::with_unknown(&[None, Some(3)]);
        assert_eq!(Shape::broadcast(&u, &s(&[3])), Some(u.clone()));
        assert_eq!(Shape::broadcast(&u, &s(&[4, 1])), Some(s(&[4, 3])));
        assert_eq!(u.to_string(), "[?,3]");
        assert_eq!(u.numel(), UNKNOWN);
        assert!(u.accepts(&s(&[7, 3])) && !u.accepts(&s(&[7, 4])) && !u.accepts(&s(&[3])));
    }

    #[test]
    fn strides_and_axes() {
        assert_eq!(Shape::new(&[2, 3, 4]).strides().as_slice(), &[12, 4, 1]);
        assert_eq!(norm_axis(-1, 3), Some(2));
        assert_eq!(norm_axis(3, 3), None);
        assert_eq!(norm_axis(-4, 3), None);
    }
}

//! `std::ops` operators on `Tensor`, `&Tensor`, `&Variable` and Rust scalars, all routed
//! through the same methods (and so the same dispatch path). `&x * 2.0 + 1.0` works; the
//! scalar takes the tensor's dtype.

use std::ops::{Add, AddAssign, Div, DivAssign, Mul, MulAssign, Neg, Rem, RemAssign, Sub, SubAssign};

use super::{BinaryOp, Operand};
use crate::tensor::Tensor;
use crate::variable::Variable;

macro_rules! binop {
    ($Tr:ident, $m:ident, $Assign:ident, $am:ident, $op:ident) => {
        impl<R: Operand> $Tr<R> for &Tensor {
            type Output = Tensor;
            #[track_caller]
            #[inline]
            fn $m(self, rhs: R) -> Tensor {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl<R: Operand> $Tr<R> for Tensor {
            type Output = Tensor;
            #[track_caller]
            #[inline]
            fn $m(self, rhs: R) -> Tensor {
                self.binary(BinaryOp::$op, rhs)
            }
        }
        impl<R: Operand> $Tr<R> for &Variable {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: R) -> Tensor {
                self.read().binary(BinaryOp::$op, rhs)
            }
        }
        impl<R: Operand> $Assign<R> for Tensor {
            #[track_caller]
            fn $am(&mut self, rhs: R) {
                *self = self.binary(BinaryOp::$op, rhs);
            }
        }
        binop!(@scalars $Tr, $m, $op, f32, f64, i32, i64);
    };
    (@scalars $Tr:ident, $m:ident, $op:ident, $($s:ty),*) => {$(
        impl $Tr<&Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Tensor) -> Tensor {
                Tensor::binary_rev(self, BinaryOp::$op, rhs)
            }
        }
        impl $Tr<Tensor> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: Tensor) -> Tensor {
                Tensor::binary_rev(self, BinaryOp::$op, &rhs)
            }
        }
        impl $Tr<&Variable> for $s {
            type Output = Tensor;
            #[track_caller]
            fn $m(self, rhs: &Variable) -> Tensor {
                Tensor::binary_rev(self, BinaryOp::$op, &rhs.read())
            }
        }
    )*};
}

binop!(Add, add, AddAssign, add_assign, Add);
binop!(Sub, sub, SubAssign, sub_assign, Sub);
binop!(Mul, mul, MulAssign, mul_assign, Mul);
binop!(Div, div, DivAssign, div_assign, Div);
binop!(Rem, rem, RemAssign, rem_assign, Mod);

impl Neg for &Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(self)
    }
}

impl Neg for Tensor {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        Tensor::neg(&self)
    }
}

impl Neg for &Variable {
    type Output = Tensor;
    #[track_caller]
    fn neg(self) -> Tensor {
        self.read().neg()
    }
}

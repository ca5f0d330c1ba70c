//! Denormal numbers flushed to zero inside GEMMs, as TensorFlow's CPU kernels do
//! (`ScopedFlushDenormal`) and XLA's: on x86 a multiply-add with a denormal operand or
//! result takes a microcode assist about a hundred times slower than the normal path.
//! Training drives values there — softmax probabilities of classes a model has ruled
//! out are `exp(−100)` — and a step of a 784→512→10 MLP went from 2.1 ms to 38 ms once
//! they appeared (BENCHMARKS.md, "Denormals"). Inside [`flushing`], MXCSR's DAZ (denormal
//! inputs read as 0) and FTZ (denormal results written as 0) bits are set; the caller's
//! MXCSR comes back when it returns or unwinds. Only the matrix products (eager and
//! compiled code share them) run so: elementwise ops keep IEEE denormals. Other
//! architectures run `f` as it is.

/// Runs `f` with denormals flushed to zero on this thread (x86-64), restoring the
/// floating-point control register afterwards.
#[inline]
pub(crate) fn flushing<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        let _guard = x86::Flush::new();
        f()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        f()
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;

    /// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
    const FTZ_DAZ: u32 = 0x8040;

    /// The saved MXCSR, written back on drop.
    pub(super) struct Flush(u32);

    fn read() -> u32 {
        let mut csr = 0u32;
        // SAFETY: stores the 4-byte MXCSR into `csr`, a live local; no other state.
        unsafe { asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags)) };
        csr
    }

    /// # Safety
    /// `csr` must be a valid MXCSR value (reserved bits clear): one read by [`read`],
    /// with at most the FTZ and DAZ bits added. Rust's code generation assumes IEEE
    /// denormals; the GEMM kernels run in between compute on their operands only (no
    /// constant folded with a denormal), so flushing changes only denormal values.
    unsafe fn write(csr: u32) {
        // SAFETY: the caller's guarantee; loads MXCSR from a live local.
        unsafe { asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly, preserves_flags)) };
    }

    impl Flush {
        pub(super) fn new() -> Flush {
            let saved = read();
            if saved & FTZ_DAZ != FTZ_DAZ {
                // SAFETY: the value just read with the two defined bits added.
                unsafe { write(saved | FTZ_DAZ) };
            }
            Flush(saved)
        }
    }

    impl Drop for Flush {
        fn drop(&mut self) {
            if self.0 & FTZ_DAZ != FTZ_DAZ {
                // SAFETY: the value read in `new`.
                unsafe { write(self.0) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `x·y` through memory the optimiser cannot see through.
    fn product(x: f32, y: f32) -> f32 {
        std::hint::black_box(x) * std::hint::black_box(y)
    }

    #[test]
    fn denormals_are_flushed_inside_only() {
        let tiny = f32::MIN_POSITIVE / 8.0; // a denormal
        assert!(tiny > 0.0 && !tiny.is_normal());
        assert_eq!(product(tiny, 2.0), tiny * 2.0, "IEEE outside");
        let inside = flushing(|| (product(tiny, 2.0), product(f32::MIN_POSITIVE, 0.25)));
        if cfg!(target_arch = "x86_64") {
            assert_eq!(inside, (0.0, 0.0), "a denormal operand reads as 0, a denormal result is 0");
        }
        assert_eq!(product(tiny, 2.0), tiny * 2.0, "restored");
        let r = std::panic::catch_unwind(|| flushing(|| panic!("inside")));
        assert!(r.is_err());
        assert_eq!(product(tiny, 2.0), tiny * 2.0, "restored after a panic");
    }
}

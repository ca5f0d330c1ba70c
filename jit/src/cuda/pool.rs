//! The caching device allocator: freed device buffers are kept by element count and
//! handed out again (each cudarc allocation is a driver call — `cuMemAllocAsync` from
//! the device's memory pool where it has one, else a synchronising `cuMemAlloc` — plus
//! the slice's tracking events; ML loops allocate the same sizes every step). Generic
//! over the buffer type so its policy is tested on machines without a GPU.

use std::collections::HashMap;

/// Free buffers by element count, at most `cap_elems` elements held in total.
pub struct SizePool<B> {
    free: HashMap<usize, Vec<B>>,
    held: usize,
    cap_elems: usize,
    /// While withholding (a CUDA-graph capture): buffers given back, kept out of reuse.
    withheld: Option<Vec<B>>,
}

impl<B> SizePool<B> {
    pub fn new(cap_elems: usize) -> SizePool<B> {
        SizePool { free: HashMap::new(), held: 0, cap_elems, withheld: None }
    }

    /// A free buffer of exactly `n` elements, if one is held.
    pub fn take(&mut self, n: usize) -> Option<B> {
        let list = self.free.get_mut(&n)?;
        let b = list.pop()?;
        self.held -= n;
        Some(b)
    }

    /// Keeps `b` (of `n` elements) for reuse; returns it when the pool is full (the
    /// caller frees it).
    pub fn give(&mut self, n: usize, b: B) -> Option<B> {
        if let Some(w) = &mut self.withheld {
            w.push(b);
            return None;
        }
        if n == 0 || self.held + n > self.cap_elems {
            return Some(b);
        }
        self.held += n;
        self.free.entry(n).or_default().push(b);
        None
    }

    /// From now on, buffers given back are withheld from reuse until
    /// [`end_withholding`](Self::end_withholding) hands them over.
    pub fn withhold(&mut self) {
        self.withheld = Some(Vec::new());
    }

    /// The buffers given back since [`withhold`](Self::withhold); reuse resumes.
    pub fn end_withholding(&mut self) -> Vec<B> {
        self.withheld.take().unwrap_or_default()
    }

    /// Elements held for reuse.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Drops every held buffer (e.g. before retrying an allocation that failed).
    pub fn clear(&mut self) {
        self.free.clear();
        self.held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::SizePool;

    #[test]
    fn reuses_by_exact_size_within_the_cap() {
        let mut p: SizePool<Vec<f32>> = SizePool::new(100);
        assert!(p.take(10).is_none());
        assert!(p.give(10, vec![1.0; 10]).is_none());
        assert!(p.give(30, vec![2.0; 30]).is_none());
        assert_eq!(p.held(), 40);
        assert!(p.take(20).is_none(), "sizes are matched exactly");
        assert_eq!(p.take(10).map(|b| b[0]), Some(1.0));
        assert_eq!(p.held(), 30);
        // Over the cap: handed back to be freed.
        assert_eq!(p.give(80, vec![3.0; 80]).map(|b| b.len()), Some(80));
        assert_eq!(p.held(), 30);
        assert!(p.give(0, Vec::new()).is_some(), "empty buffers are not kept");
        p.clear();
        assert_eq!(p.held(), 0);
        assert!(p.take(30).is_none());
    }

    #[test]
    fn withheld_buffers_are_not_reused_until_handed_over() {
        let mut p: SizePool<Vec<f32>> = SizePool::new(100);
        assert!(p.give(10, vec![1.0; 10]).is_none());
        p.withhold();
        assert!(p.give(10, vec![2.0; 10]).is_none());
        assert!(p.give(90, vec![3.0; 90]).is_none(), "withheld even over the cap");
        assert_eq!(p.take(10).map(|b| b[0]), Some(1.0), "buffers given before still reused");
        assert!(p.take(10).is_none() && p.take(90).is_none());
        let w = p.end_withholding();
        assert_eq!(w.iter().map(Vec::len).collect::<Vec<_>>(), vec![10, 90]);
        assert!(p.give(10, vec![4.0; 10]).is_none());
        assert_eq!(p.take(10).map(|b| b[0]), Some(4.0), "reuse resumes");
        assert!(p.end_withholding().is_empty());
    }
}

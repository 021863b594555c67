//! The norms' statistics: sums in 16 f32 lanes, added into f64 every block of elements.
//!
//! A plain `iter().map(f64).sum()` is one chain of dependent f64 additions, about 3 cycles per
//! element, and batch norm and instance norm run several of them per element each way (2.7% of
//! the 1-thread DCGAN 28² step). Sixteen independent f32 lanes let the compiler use vector
//! adds; the lanes are added into f64 every [`BLOCK`] elements or so, which keeps each f32
//! partial sum to at most 128 terms, so the result is as accurate as the f64 chain for every
//! use here. The lanes carry over from one slice to the next, so that many short planes
//! (batch norm's 7×7 ones) do not each pay a reduction of the lanes. The order is fixed, so a
//! run is reproducible bit for bit.

/// Independent partial sums.
const LANES: usize = 16;
/// Elements added into the lanes between two additions into f64 (at least; at most twice).
const BLOCK: usize = 1024;

/// `K` running sums of a term of one or two equally long slices.
pub(crate) struct Sums<const K: usize> {
    total: [f64; K],
    lanes: [[f32; LANES]; K],
    pending: usize,
}

impl<const K: usize> Sums<K> {
    pub(crate) fn new() -> Self {
        Self {
            total: [0.0; K],
            lanes: [[0.0; LANES]; K],
            pending: 0,
        }
    }

    /// Adds `term(a[i], b[i])` for every `i`.
    #[inline(always)]
    pub(crate) fn add2(&mut self, a: &[f32], b: &[f32], term: impl Fn(f32, f32) -> [f32; K]) {
        assert_eq!(a.len(), b.len(), "Sums::add2: slices of one length");
        let mut lanes = self.lanes;
        for (a, b) in a.chunks(BLOCK).zip(b.chunks(BLOCK)) {
            let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
            let (ar, br) = (ac.remainder(), bc.remainder());
            for (a, b) in ac.zip(bc) {
                for l in 0..LANES {
                    let t = term(a[l], b[l]);
                    for k in 0..K {
                        lanes[k][l] += t[k];
                    }
                }
            }
            for (l, (&a, &b)) in ar.iter().zip(br).enumerate() {
                let t = term(a, b);
                for k in 0..K {
                    lanes[k][l] += t[k];
                }
            }
            self.pending += a.len();
            if self.pending >= BLOCK {
                self.flush(&mut lanes);
            }
        }
        self.lanes = lanes;
    }

    /// Adds `term(x[i])` for every `i`.
    #[inline(always)]
    pub(crate) fn add(&mut self, x: &[f32], term: impl Fn(f32) -> [f32; K]) {
        self.add2(x, x, |v, _| term(v));
    }

    /// The sums.
    pub(crate) fn total(mut self) -> [f64; K] {
        let mut lanes = self.lanes;
        self.flush(&mut lanes);
        self.total
    }

    fn flush(&mut self, lanes: &mut [[f32; LANES]; K]) {
        for (total, lanes) in self.total.iter_mut().zip(lanes.iter()) {
            *total += lanes.iter().map(|&v| v as f64).sum::<f64>();
        }
        *lanes = [[0.0; LANES]; K];
        self.pending = 0;
    }
}

/// `K` sums over the elements of `x` of `term(x[i])`.
#[inline(always)]
pub(crate) fn sums<const K: usize>(x: &[f32], term: impl Fn(f32) -> [f32; K]) -> [f64; K] {
    sums2(x, x, |v, _| term(v))
}

/// `K` sums over `i` of `term(a[i], b[i])`, for slices of one length.
#[inline(always)]
pub(crate) fn sums2<const K: usize>(
    a: &[f32],
    b: &[f32],
    term: impl Fn(f32, f32) -> [f32; K],
) -> [f64; K] {
    let mut s = Sums::new();
    s.add2(a, b, term);
    s.total()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against f64 chains, on lengths around the lane and block sizes, in one slice and in
    /// many short ones, on values whose f32 running sum would lose digits.
    #[test]
    fn sums_match_f64() {
        for n in [0, 1, 15, 16, 17, 1023, 1024, 1025, 5000, 100_000] {
            let a: Vec<f32> = (0..n)
                .map(|i| ((i * 7919) % 1000) as f32 * 0.01 + 100.0)
                .collect();
            let b: Vec<f32> = (0..n)
                .map(|i| ((i * 104_729) % 997) as f32 * -0.003)
                .collect();
            let want_s: f64 = a.iter().map(|&v| v as f64).sum();
            let want_sq: f64 = a.iter().map(|&v| ((v - 100.0) as f64).powi(2)).sum();
            let want_d: f64 = a.iter().zip(&b).map(|(&x, &y)| (x * y) as f64).sum();
            let [s, sq] = sums(&a, |v| [v, (v - 100.0) * (v - 100.0)]);
            let mut planes = Sums::new();
            for (a, b) in a.chunks(49).zip(b.chunks(49)) {
                planes.add2(a, b, |x, y| [x * y]);
            }
            let [d] = planes.total();
            for (got, want) in [(s, want_s), (sq, want_sq), (d, want_d)] {
                let err = (got - want).abs() / want.abs().max(1.0);
                assert!(
                    err <= 1e-6,
                    "n {n}: {got} vs {want} (relative error {err:e})"
                );
            }
        }
    }
}

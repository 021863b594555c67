//! What the CPU gives zoo's kernels: the vector units chosen at run time, the GEMM work done so
//! far, and the GEMM rate the machine reaches (the bench's peak).
//!
//! One binary runs on every x86-64 CPU: the gemm crate (flex's matrix products and zoo's
//! convolutions) is built with its AVX-512 kernels (`x86-v4`) beside the AVX2+FMA ones and picks
//! one per process from `is_x86_feature_detected!`; flex's element-wise kernels (macerator) pick
//! the same way.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The vector instruction set the GEMM kernels use on this CPU, as detected at run time.
pub fn simd() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "AVX-512"
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            "AVX2+FMA"
        } else {
            "SSE2"
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "scalar"
    }
}

static GEMM_FLOPS: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
thread_local! {
    static THREAD_FLOPS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Counts one `m × k` by `k × n` product (2·m·n·k floating-point operations).
pub(crate) fn count_gemm(m: usize, n: usize, k: usize) {
    let flops = 2 * (m as u64) * (n as u64) * (k as u64);
    GEMM_FLOPS.fetch_add(flops, Ordering::Relaxed);
    #[cfg(test)]
    THREAD_FLOPS.with(|c| c.set(c.get() + flops));
}

/// [`gemm_flops`] of the calling thread only (tests run side by side in one process).
#[cfg(test)]
pub(crate) fn gemm_flops_this_thread() -> u64 {
    THREAD_FLOPS.with(|c| c.get())
}

/// Floating-point operations of every GEMM zoo's kernels have run in this process: the
/// forward and both gradients of [`crate::FastConv`] convolutions and [`crate::FastLinear`]
/// layers, 2·m·n·k each, from the layers' shapes as they run. Work outside these kernels
/// (norms, activations, burn's own ops) is not counted. Convolutions computed by Winograd's
/// method count the direct convolution's work (their shape), not the 2.25× smaller GEMMs they
/// run, so a rate taken from this count is the effective one and can pass the GEMM peak.
pub fn gemm_flops() -> u64 {
    GEMM_FLOPS.load(Ordering::Relaxed)
}

/// The GEMM rate of this machine on the current thread pool, in GFLOP/s: the best of a few
/// 1024³ products through the same kernel the convolutions use (not counted in
/// [`gemm_flops`]). About 0.1 s.
pub fn gemm_peak_gflops() -> f64 {
    const N: usize = 1024;
    let a: Vec<f32> = (0..N * N).map(|i| (i % 7) as f32 * 0.25 - 0.75).collect();
    let b: Vec<f32> = (0..N * N).map(|i| (i % 5) as f32 * 0.5 - 1.0).collect();
    let mut best = f64::INFINITY;
    for _ in 0..6 {
        let start = Instant::now();
        let c = crate::conv::gemm_uncounted(N, N, N, &a, (N, 1), &b, (N, 1));
        best = best.min(start.elapsed().as_secs_f64());
        std::hint::black_box(c);
    }
    2.0 * (N as f64).powi(3) / best / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The probe measures something plausible for a CPU (between 1 GFLOP/s and 100 TFLOP/s)
    /// and adds nothing to the count; the vector unit named is one the CPU has.
    #[test]
    fn peak_probe_and_simd() {
        let before = gemm_flops_this_thread();
        let peak = gemm_peak_gflops();
        assert!((1.0..1e5).contains(&peak), "peak {peak} GFLOP/s");
        assert_eq!(gemm_flops_this_thread(), before);
        #[cfg(target_arch = "x86_64")]
        {
            let s = simd();
            let has = |f: bool| assert!(f, "{s} named but not detected");
            match s {
                "AVX-512" => has(std::arch::is_x86_feature_detected!("avx512f")),
                "AVX2+FMA" => has(std::arch::is_x86_feature_detected!("fma")),
                other => assert_eq!(other, "SSE2"),
            }
        }
    }
}

#![allow(unsafe_code, missing_docs)]
use std::time::Instant;
fn run(
    m: usize,
    k: usize,
    n: usize,
    (ars, acs): (usize, usize),
    (brs, bcs): (usize, usize),
    par: gemm::Parallelism,
    label: &str,
) {
    let a = vec![0.5f32; m * k];
    let b = vec![0.25f32; k * n];
    let mut c = vec![0f32; m * n];
    let mut best = f64::MAX;
    for _ in 0..20 {
        let t = Instant::now();
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                acs as isize,
                ars as isize,
                b.as_ptr(),
                bcs as isize,
                brs as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    let gf = 2.0 * (m * n * k) as f64 / best / 1e9;
    println!(
        "{label}: m{m} k{k} n{n}: {:.3} ms, {gf:.0} GFLOP/s",
        best * 1e3
    );
}
fn main() {
    let r = gemm::Parallelism::Rayon(0);
    // res conv fwd: W[256,2304] @ col[2304,256]
    run(256, 2304, 256, (2304, 1), (256, 1), r, "fwd");
    // dx: W^T [2304,256] @ dy[256,256]
    run(2304, 256, 256, (1, 2304), (256, 1), r, "dx ");
    // dw: dy[256,256] @ col^T [256, 2304]
    run(256, 256, 2304, (256, 1), (1, 256), r, "dw ");
    run(
        256,
        256,
        2304,
        (256, 1),
        (2304, 1),
        r,
        "dw (col transposed, contiguous)",
    );
    run(
        256,
        2304,
        256,
        (2304, 1),
        (256, 1),
        gemm::Parallelism::None,
        "fwd 1t",
    );
}

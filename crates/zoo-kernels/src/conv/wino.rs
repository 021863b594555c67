//! 3×3 stride-1 convolutions by Winograd's minimal filtering, F(2×2, 3×3) (Lavin & Gray, 2016):
//! each 2×2 block of output pixels comes from a 4×4 tile of input, and in the transformed domain
//! the 9 multiply-adds per output pixel and channel pair become 4, so the GEMM work is 2.25×
//! smaller (the residual blocks of a CycleGAN generator are three quarters of its GEMM work).
//!
//! With `d` a 4×4 input tile, `g` a 3×3 kernel and `Y` the 2×2 outputs,
//! `Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A`, and the sum over input channels of the elementwise
//! products is, for each of the 16 transformed positions `ξ`, one GEMM:
//! `M_ξ [k, tiles] = U_ξ [k, c] · V_ξ [c, tiles]`, `U = G g Gᵀ`, `V = Bᵀ d B`. The backward is
//! the adjoint of each linear step: `dM = A dY Aᵀ`; the input gradient `dV_ξ = U_ξᵀ · dM_ξ`,
//! then `B dV Bᵀ` added into the overlapping input tiles; the weight gradient
//! `dU_ξ = dM_ξ · V_ξᵀ`, then `Gᵀ dU G`.
//!
//! The 16 GEMMs of each pass run one after the other, each shared between the cores by the
//! gemm crate (by output tiles, so the results do not depend on the number of threads). One
//! task per GEMM, each on one thread, was as fast and raised CycleGAN 128²'s peak by ~30 MiB:
//! every worker thread then held the gemm crate's packing buffers in its own heap. The
//! transforms' coefficients are 0, ±1 and ±½, so the rounding differs from the direct
//! convolution's by a few units in the last place of the sums (the tests compare with burn's
//! op at the crate's tolerance). The GEMM work counted for `zoo bench` is the direct
//! convolution's (the layer's shape), so its GFLOP/s for these layers is the effective rate.
#![allow(unsafe_code)] // the GEMM calls on disjoint parts of one buffer

use std::mem::MaybeUninit;

use super::{
    ConvArgs, Geom, Kept, Kernels, check_operands, filled, gemm_raw, image_blocks, rows, rows_new,
    with_scratch,
};

/// Transformed positions of a tile: 4×4.
const XI: usize = 16;

/// Fewest input and output channels for which the path is taken: the transforms cost the same
/// per tile and channel whatever the channels, while the GEMM work they save grows with them.
/// CycleGAN's residual blocks (256 channels) run 15–31% faster steps; SNGAN's D with 64-channel
/// 3×3 layers was no faster (within the noise of its 1.1–1.7 s steps) and its peak 30–45 MiB
/// higher (`benches/NOTES.md` #26).
pub(super) const MIN_CHANNELS: usize = 128;

/// Floats of one block's transformed tiles (each of `V`, `M` and their gradients): a smaller
/// block than the direct path's [`super::BLOCK`], since a pass holds several such buffers.
const WBLOCK: usize = 1 << 20;

/// Whether a convolution takes this path: 3×3, stride 1, enough channels on both sides.
pub(super) fn applies(g: &Geom, k: usize) -> bool {
    g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.c >= MIN_CHANNELS && k >= MIN_CHANNELS
}

/// `conv2d` with a 3×3 kernel and stride 1: x `[b, c, h, w]`, weight `[k, c, 3, 3]`,
/// y `[b, k, oh, ow]`.
#[derive(Debug)]
pub(super) struct Wino;

/// The tiling of one geometry: `th × tw` tiles of 2×2 output pixels per image.
#[derive(Debug, Clone, Copy)]
struct Tiles {
    th: usize,
    tw: usize,
}

impl Tiles {
    fn of(g: &Geom) -> Self {
        Self {
            th: g.oh.div_ceil(2),
            tw: g.ow.div_ceil(2),
        }
    }
    /// Tiles per image.
    fn per_image(&self) -> usize {
        self.th * self.tw
    }
}

/// Blocks of whole images `(first, count)` whose transformed tiles (on the side with more
/// channels, input `c` or output `k`) hold about [`WBLOCK`] floats; at least one image per block.
fn blocks(g: &Geom, t: Tiles, k: usize) -> impl Iterator<Item = (usize, usize)> {
    image_blocks(g.b, XI * g.c.max(k) * t.per_image(), WBLOCK)
}

impl Kernels for Wino {
    fn forward(x: &[f32], w: &[f32], a: ConvArgs, _keep: bool) -> (Vec<f32>, [usize; 4], Kept) {
        let ConvArgs { g, k } = a;
        let t = Tiles::of(&g);
        crate::cpu::count_gemm(k, g.cols(), g.rows());
        let u = weight_transform(w, k, g.c);
        let (image, s) = (g.c * g.h * g.w, g.oh * g.ow);
        // SAFETY: the blocks cover the batch, and `output_transform` writes every element of
        // its block.
        let y = unsafe {
            filled(g.b * k * s, |out| {
                for (b0, nb) in blocks(&g, t, k) {
                    let n = nb * t.per_image();
                    let v = input_transform(&x[b0 * image..][..nb * image], &g, t, nb);
                    // M_ξ [k, n] = U_ξ [k, c] · V_ξ [c, n]
                    let m = products(k, n, g.c, &u, (XI * g.c, 1), g.c, &v, (XI * n, 1), n);
                    output_transform(&m, &g, t, k, nb, &mut out[b0 * k * s..][..nb * k * s]);
                }
            })
        };
        (y, [g.b, k, g.oh, g.ow], None)
    }

    fn backward(
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        ConvArgs { g, k }: ConvArgs,
        _kept: Kept,
        need_x: bool,
        need_w: bool,
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
        let t = Tiles::of(&g);
        let (image, s) = (g.c * g.h * g.w, g.oh * g.ow);
        if need_x {
            crate::cpu::count_gemm(g.rows(), g.cols(), k);
        }
        if need_w {
            crate::cpu::count_gemm(k, g.rows(), g.cols());
        }
        let mut dx = need_x.then(|| super::unwritten(g.b * image));
        // U, made at first use and dropped after the last block's input gradient, and dU
        // [k][16][c], summed over the blocks, made at first use: so that the two are not alive
        // at once when the batch is one block (the peak of CycleGAN's generator backward).
        let mut u = None;
        let mut du: Option<Vec<f32>> = None;
        for (i, (b0, nb)) in blocks(&g, t, k).enumerate() {
            let n = nb * t.per_image();
            let dm = output_adjoint(&dy[b0 * k * s..][..nb * k * s], &g, t, k, nb);
            if let Some(dx) = dx.as_mut() {
                let uw = u.get_or_insert_with(|| weight_transform(w, k, g.c));
                // dV_ξ [c, n] = U_ξᵀ [c, k] · dM_ξ [k, n]
                let dv = products(g.c, n, k, uw, (1, XI * g.c), g.c, &dm, (XI * n, 1), n);
                if b0 + nb == g.b {
                    u = None;
                }
                let out = &mut dx.spare_capacity_mut()[b0 * image..][..nb * image];
                input_adjoint(&dv, &g, t, nb, out);
            }
            if need_w {
                let v = input_transform(&x[b0 * image..][..nb * image], &g, t, nb);
                let du = du.get_or_insert_with(|| vec![0.0f32; k * XI * g.c]);
                // dU_ξ [k, c] (+)= dM_ξ [k, n] · V_ξᵀ [n, c]
                // SAFETY: `du` holds `k × 16c` floats, initialised (read when `i > 0`).
                unsafe {
                    products_into(
                        (k, g.c, n),
                        du.as_mut_ptr(),
                        (XI * g.c, g.c),
                        i > 0,
                        (&dm, (XI * n, 1), n),
                        (&v, (1, XI * n), n),
                    )
                };
            }
        }
        let dx = dx.map(|mut dx| {
            // SAFETY: the blocks cover the batch and `input_adjoint` wrote every element.
            unsafe { dx.set_len(g.b * image) };
            dx
        });
        (dx, du.map(|du| weight_adjoint(&du, k, g.c)))
    }
}

/// The 16 products `dst_ξ = lhs_ξ [m, depth] · rhs_ξ [depth, n]` into a new `[m][16][n]`
/// buffer; `lhs_ξ` starts `ξ · lhs_step` floats into `lhs` (strides `lhs_st`), `rhs_ξ` likewise.
#[allow(clippy::too_many_arguments)]
fn products(
    m: usize,
    n: usize,
    depth: usize,
    lhs: &[f32],
    lhs_st: (usize, usize),
    lhs_step: usize,
    rhs: &[f32],
    rhs_st: (usize, usize),
    rhs_step: usize,
) -> Vec<f32> {
    // SAFETY: the 16 products write every element of `[m][16][n]` (`read_dst` false, depth > 0).
    unsafe {
        filled(m * XI * n, |out| {
            products_into(
                (m, n, depth),
                out.as_mut_ptr().cast(),
                (XI * n, n),
                false,
                (lhs, lhs_st, lhs_step),
                (rhs, rhs_st, rhs_step),
            )
        })
    }
}

/// The 16 products one after the other, each shared between the cores by the gemm crate:
/// `dst_ξ` at `dst + ξ · dst_step` with row stride `dst_rs` (`+=` with `accumulate`).
///
/// # Safety
/// `dst` must hold the `m` rows of `dst_rs` floats that `dst_rs ≥ 16 · dst_step` and
/// `dst_step ≥ n` address, valid for writes (and initialised with `accumulate`), aliasing
/// neither operand.
unsafe fn products_into(
    (m, n, depth): (usize, usize, usize),
    dst: *mut f32,
    (dst_rs, dst_step): (usize, usize),
    accumulate: bool,
    (lhs, lhs_st, lhs_step): (&[f32], (usize, usize), usize),
    (rhs, rhs_st, rhs_step): (&[f32], (usize, usize), usize),
) {
    if m == 0 || n == 0 || depth == 0 {
        return;
    }
    assert!(
        dst_step >= n && dst_rs >= XI * dst_step,
        "products: dst layout"
    );
    for xi in [0, XI - 1] {
        check_operands(
            m,
            n,
            depth,
            &lhs[xi * lhs_step..],
            lhs_st,
            &rhs[xi * rhs_step..],
            rhs_st,
        );
    }
    for xi in 0..XI {
        // SAFETY: product ξ writes the columns `ξ·dst_step..+n` of each row, disjoint from the
        // other products' (`dst_step ≥ n`), inside the caller's buffer; the operands are in
        // bounds (checked for the first and last ξ, the others lie between).
        unsafe {
            gemm_raw(
                m,
                n,
                depth,
                dst.add(xi * dst_step),
                dst_rs,
                accumulate,
                &lhs[xi * lhs_step..],
                lhs_st,
                &rhs[xi * rhs_step..],
                rhs_st,
                true,
            )
        }
    }
}

/// `U = G g Gᵀ` for every kernel: weight `[k, c, 3, 3]` → `[k][16][c]`.
fn weight_transform(w: &[f32], k: usize, c: usize) -> Vec<f32> {
    // SAFETY: each output channel's row `[16][c]` is written in full.
    unsafe {
        rows_new(k * XI * c, XI * c, |co, row| {
            for ci in 0..c {
                let g = &w[(co * c + ci) * 9..][..9];
                // rows: G g, 4×3
                let mut r = [[0.0f32; 3]; 4];
                for j in 0..3 {
                    let (g0, g1, g2) = (g[j], g[3 + j], g[6 + j]);
                    r[0][j] = g0;
                    r[1][j] = 0.5 * (g0 + g1 + g2);
                    r[2][j] = 0.5 * (g0 - g1 + g2);
                    r[3][j] = g2;
                }
                for (i, r) in r.iter().enumerate() {
                    let (g0, g1, g2) = (r[0], r[1], r[2]);
                    let u = [g0, 0.5 * (g0 + g1 + g2), 0.5 * (g0 - g1 + g2), g2];
                    for (j, u) in u.into_iter().enumerate() {
                        row[(4 * i + j) * c + ci].write(u);
                    }
                }
            }
        })
    }
}

/// `dg = Gᵀ dU G`: `[k][16][c]` → the weight gradient `[k, c, 3, 3]`.
#[allow(clippy::needless_range_loop)] // a tile's rows and columns index several arrays
fn weight_adjoint(du: &[f32], k: usize, c: usize) -> Vec<f32> {
    // SAFETY: each output channel's row `[c, 3, 3]` is written in full.
    unsafe {
        rows_new(k * c * 9, c * 9, |co, row| {
            let du = &du[co * XI * c..][..XI * c];
            for ci in 0..c {
                let d = |xi: usize| du[xi * c + ci];
                // Gᵀ dU: 3×4
                let mut r = [[0.0f32; 4]; 3];
                for j in 0..4 {
                    let (d0, d1, d2, d3) = (d(j), d(4 + j), d(8 + j), d(12 + j));
                    r[0][j] = d0 + 0.5 * (d1 + d2);
                    r[1][j] = 0.5 * (d1 - d2);
                    r[2][j] = 0.5 * (d1 + d2) + d3;
                }
                let out = &mut row[ci * 9..][..9];
                for (a, r) in r.iter().enumerate() {
                    let (d0, d1, d2, d3) = (r[0], r[1], r[2], r[3]);
                    out[3 * a].write(d0 + 0.5 * (d1 + d2));
                    out[3 * a + 1].write(0.5 * (d1 - d2));
                    out[3 * a + 2].write(0.5 * (d1 + d2) + d3);
                }
            }
        })
    }
}

/// `V = Bᵀ d B` for every tile: the block's images `[nb, c, h, w]` → `[c][16][nb · tiles]`.
///
/// Per row of tiles, the four input rows it reads (zero-padded) are combined first along whole
/// rows (`Bᵀ d`, contiguous), then each tile's four columns.
fn input_transform(x: &[f32], g: &Geom, t: Tiles, nb: usize) -> Vec<f32> {
    let n = nb * t.per_image();
    // Padded row length: the tiles read columns `-pw .. 2·tw + 2 - pw`.
    let wp = 2 * t.tw + 2;
    // SAFETY: each channel's `[16][n]` is written in full: every image, tile and position.
    unsafe {
        rows_new(g.c * XI * n, XI * n, |ci, out| {
            with_scratch(8 * wp, |buf| {
                let (rows_in, s) = buf.split_at_mut(4 * wp);
                for bi in 0..nb {
                    let plane = &x[(bi * g.c + ci) * g.h * g.w..][..g.h * g.w];
                    for ty in 0..t.th {
                        for (i, row) in rows_in.chunks_exact_mut(wp).enumerate() {
                            padded_row(plane, g, (2 * ty + i) as isize - g.ph as isize, row);
                        }
                        let (r0, r1, r2, r3) = (
                            &rows_in[..wp],
                            &rows_in[wp..2 * wp],
                            &rows_in[2 * wp..3 * wp],
                            &rows_in[3 * wp..],
                        );
                        let (s0, rest) = s.split_at_mut(wp);
                        let (s1, rest) = rest.split_at_mut(wp);
                        let (s2, s3) = rest.split_at_mut(wp);
                        for j in 0..wp {
                            s0[j] = r0[j] - r2[j];
                            s1[j] = r1[j] + r2[j];
                            s2[j] = r2[j] - r1[j];
                            s3[j] = r1[j] - r3[j];
                        }
                        let base = bi * t.per_image() + ty * t.tw;
                        for (i, s) in [&*s0, &*s1, &*s2, &*s3].into_iter().enumerate() {
                            let [o0, o1, o2, o3] = four_rows(out, 4 * i, n, base, t.tw);
                            for tx in 0..t.tw {
                                let q = &s[2 * tx..][..4];
                                o0[tx].write(q[0] - q[2]);
                                o1[tx].write(q[1] + q[2]);
                                o2[tx].write(q[2] - q[1]);
                                o3[tx].write(q[1] - q[3]);
                            }
                        }
                    }
                }
            })
        })
    }
}

/// Four rows `first .. first + 4` of a `[16][n]` buffer, each `len` floats from `base`.
fn four_rows<T>(out: &mut [T], first: usize, n: usize, base: usize, len: usize) -> [&mut [T]; 4] {
    let (_, rest) = out.split_at_mut(first * n);
    let (a, rest) = rest.split_at_mut(n);
    let (b, rest) = rest.split_at_mut(n);
    let (c, rest) = rest.split_at_mut(n);
    let d = &mut rest[..n];
    [
        &mut a[base..][..len],
        &mut b[base..][..len],
        &mut c[base..][..len],
        &mut d[base..][..len],
    ]
}

/// Row `r` of `plane` (`h × w`), shifted right by the padding `pw`, zeros outside the image.
fn padded_row(plane: &[f32], g: &Geom, r: isize, out: &mut [f32]) {
    out.fill(0.0);
    if r < 0 || r as usize >= g.h {
        return;
    }
    let src = &plane[r as usize * g.w..][..g.w];
    // Column j of `out` is image column j − pw.
    let lo = g.pw.min(out.len());
    let len = g.w.min(out.len() - lo);
    out[lo..lo + len].copy_from_slice(&src[..len]);
}

/// `Y = Aᵀ M A` for every tile: `[k][16][nb · tiles]` → the block's output `[nb, k, oh, ow]`,
/// every element written.
#[allow(clippy::needless_range_loop)] // a tile's rows and columns index several arrays
fn output_transform(
    m: &[f32],
    g: &Geom,
    t: Tiles,
    k: usize,
    nb: usize,
    out: &mut [MaybeUninit<f32>],
) {
    let n = nb * t.per_image();
    let (oh, ow) = (g.oh, g.ow);
    rows(out, oh * ow, |plane_i, plane| {
        let (bi, co) = (plane_i / k, plane_i % k);
        let m = &m[co * XI * n..][..XI * n];
        for ty in 0..t.th {
            let base = bi * t.per_image() + ty * t.tw;
            let at = |xi: usize| &m[xi * n + base..][..t.tw];
            let mr: [&[f32]; XI] = std::array::from_fn(at);
            let (y0, y1) = (2 * ty, 2 * ty + 1);
            for tx in 0..t.tw {
                let v = |xi: usize| mr[xi][tx];
                // Aᵀ M: 2×4
                let mut a = [[0.0f32; 4]; 2];
                for j in 0..4 {
                    let (m0, m1, m2, m3) = (v(j), v(4 + j), v(8 + j), v(12 + j));
                    a[0][j] = m0 + m1 + m2;
                    a[1][j] = m1 - m2 - m3;
                }
                let (x0, x1) = (2 * tx, 2 * tx + 1);
                for (yy, a) in [(y0, a[0]), (y1, a[1])] {
                    if yy >= oh {
                        continue;
                    }
                    plane[yy * ow + x0].write(a[0] + a[1] + a[2]);
                    if x1 < ow {
                        plane[yy * ow + x1].write(a[1] - a[2] - a[3]);
                    }
                }
            }
        }
    });
}

/// `dM = A dY Aᵀ` for every tile: the block's output gradient `[nb, k, oh, ow]` →
/// `[k][16][nb · tiles]` (zeros where a tile runs past the output).
fn output_adjoint(dy: &[f32], g: &Geom, t: Tiles, k: usize, nb: usize) -> Vec<f32> {
    let n = nb * t.per_image();
    let (oh, ow) = (g.oh, g.ow);
    // SAFETY: each output channel's `[16][n]` is written in full: every image, tile, position.
    unsafe {
        rows_new(k * XI * n, XI * n, |co, out| {
            for bi in 0..nb {
                let plane = &dy[(bi * k + co) * oh * ow..][..oh * ow];
                for ty in 0..t.th {
                    let base = bi * t.per_image() + ty * t.tw;
                    let row = |yy: usize, xx: usize| {
                        if yy < oh && xx < ow {
                            plane[yy * ow + xx]
                        } else {
                            0.0
                        }
                    };
                    for tx in 0..t.tw {
                        let (y0, x0) = (2 * ty, 2 * tx);
                        let d = [
                            [row(y0, x0), row(y0, x0 + 1)],
                            [row(y0 + 1, x0), row(y0 + 1, x0 + 1)],
                        ];
                        // A dY: 4×2
                        let a = |b: usize| {
                            let (d0, d1) = (d[0][b], d[1][b]);
                            [d0, d0 + d1, d0 - d1, -d1]
                        };
                        let (c0, c1) = (a(0), a(1));
                        for i in 0..4 {
                            let (e0, e1) = (c0[i], c1[i]);
                            for (j, v) in [e0, e0 + e1, e0 - e1, -e1].into_iter().enumerate() {
                                out[(4 * i + j) * n + base + tx].write(v);
                            }
                        }
                    }
                }
            }
        })
    }
}

/// `B dV Bᵀ` for every tile, added into the input positions the tile covers: `[c][16][n]` →
/// the block's input gradient `[nb, c, h, w]`, every element written (zeros where no tile
/// reads).
#[allow(clippy::needless_range_loop)] // a tile's rows and columns index several arrays
fn input_adjoint(dv: &[f32], g: &Geom, t: Tiles, nb: usize, out: &mut [MaybeUninit<f32>]) {
    let n = nb * t.per_image();
    let (h, w) = (g.h, g.w);
    // The padded plane the tiles cover: rows `-ph .. 2·th + 2 − ph`, at least the image.
    let hp = (2 * t.th + 2).max(g.ph + h);
    let wp = (2 * t.tw + 2).max(g.pw + w);
    rows(out, h * w, |plane_i, plane| {
        let (bi, ci) = (plane_i / g.c, plane_i % g.c);
        let dv = &dv[ci * XI * n..][..XI * n];
        with_scratch(hp * wp, |acc| {
            acc.fill(0.0);
            for ty in 0..t.th {
                let base = bi * t.per_image() + ty * t.tw;
                let at = |xi: usize| &dv[xi * n + base..][..t.tw];
                let vr: [&[f32]; XI] = std::array::from_fn(at);
                for tx in 0..t.tw {
                    let v = |xi: usize| vr[xi][tx];
                    // B dV: 4×4, rows of Bᵀ's columns
                    let mut e = [[0.0f32; 4]; 4];
                    for j in 0..4 {
                        let (v0, v1, v2, v3) = (v(j), v(4 + j), v(8 + j), v(12 + j));
                        e[0][j] = v0;
                        e[1][j] = v1 - v2 + v3;
                        e[2][j] = v1 + v2 - v0;
                        e[3][j] = -v3;
                    }
                    for (r, e) in e.iter().enumerate() {
                        let (v0, v1, v2, v3) = (e[0], e[1], e[2], e[3]);
                        let row = &mut acc[(2 * ty + r) * wp + 2 * tx..][..4];
                        row[0] += v0;
                        row[1] += v1 - v2 + v3;
                        row[2] += v1 + v2 - v0;
                        row[3] -= v3;
                    }
                }
            }
            for (y, dst) in plane.chunks_exact_mut(w).enumerate() {
                dst.write_copy_of_slice(&acc[(y + g.ph) * wp + g.pw..][..w]);
            }
        })
    });
}

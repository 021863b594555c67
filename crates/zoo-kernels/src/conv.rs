//! Convolutions and transposed convolutions as one GEMM over the whole batch, with their own
//! backward, for the `flex` CPU backend.
//!
//! flex computes a convolution's forward as a small GEMM per image and per tile of output pixels,
//! and implements no backward of its own, so burn's defaults run: the input gradient as a
//! transposed convolution and the weight gradient as a convolution of the input by the output
//! gradient, both far slower than the forward (`benches/NOTES.md`). Here every pass is one GEMM
//! per block of whole images (the whole batch when its unfolded matrix fits 16 MB; the `gemm`
//! crate flex itself uses, both cores) plus an unfold (im2col) or a fold (col2im) of the image:
//!
//! | pass | conv2d | conv_transpose2d |
//! |---|---|---|
//! | forward | `W · unfold(x)` | `fold(Wᵀ · x)` |
//! | input gradient | `fold(Wᵀ · dy)` | `W · unfold(dy)` |
//! | weight gradient | `dy · unfold(x)ᵀ` | `x · unfold(dy)ᵀ` |
//!
//! 3×3 stride-1 convolutions with at least 128 channels on both sides (CycleGAN's residual
//! blocks) take Winograd's F(2×2, 3×3) instead ([`wino`]): 16 GEMMs over transformed tiles,
//! 2.25× less GEMM work.
//!
//! [`FastConv::fast_forward`] is what models call on burn's `Conv2d` / `ConvTranspose2d` layers.
//! It takes this path for f32 tensors on flex (plain or autodiff) with groups 1, dilation 1 and
//! explicit or valid padding, and falls back to the layer's own `forward` everywhere else (wgpu,
//! other layouts), so models stay backend-agnostic. Checkpoints are unchanged: the layers and
//! their parameters are burn's. The tests compare values and all three gradients with burn's
//! ops on random shapes.
#![allow(unsafe_code)] // the GEMM calls: raw pointers with explicit strides, bounds checked below

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use std::mem::MaybeUninit;
use std::sync::Arc;

use burn::tensor::{DType, Tensor};

use rayon::prelude::*;

use super::{PAR_MIN, contiguous, filled, rows, rows_new, slice, tensor, unwritten};

mod wino;

/// A layer that has a fast forward on flex.
pub trait FastConv {
    /// The layer's forward: one-GEMM kernels on flex, the layer's own `forward` elsewhere.
    fn fast_forward(&self, x: Tensor<4>) -> Tensor<4>;
    /// The one-GEMM forward, or `None` where it does not apply.
    fn try_fast(&self, x: Tensor<4>) -> Option<Tensor<4>>;
}

impl FastConv for Conv2d {
    fn fast_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.try_fast(x.clone()).unwrap_or_else(|| self.forward(x))
    }
    fn try_fast(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        if self.groups != 1 || self.dilation != [1, 1] {
            return None;
        }
        let bias = self.bias.as_ref().map(|b| b.val());
        try_conv2d(x, self.weight.val(), bias, self.stride, &self.padding)
    }
}

/// The one-GEMM convolution of `x` by an explicit `weight` `[out, in, kh, kw]` (groups 1,
/// dilation 1; for layers that transform their weight first, such as spectral norm), or
/// `None` where it does not apply (not flex, not f32, `Same` padding).
pub fn try_conv2d(
    x: Tensor<4>,
    weight: Tensor<4>,
    bias: Option<Tensor<1>>,
    stride: [usize; 2],
    padding: &PaddingConfig2d,
) -> Option<Tensor<4>> {
    let [k, wc, kh, kw] = weight.dims();
    let pad = match *padding {
        PaddingConfig2d::Valid => Some([0, 0, 0, 0]),
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([top, left, bottom, right]),
        PaddingConfig2d::Same => None,
    };
    let [b, c, h, w] = x.dims();
    if wc != c {
        return None;
    }
    let w_in = w;
    let geom = pad.and_then(|p| {
        let oh = (h + p[0] + p[2]).checked_sub(kh)? / stride[0] + 1;
        let ow = (w + p[1] + p[3]).checked_sub(kw)? / stride[1] + 1;
        Some(Geom {
            b,
            c,
            h,
            w,
            kh,
            kw,
            sh: stride[0],
            sw: stride[1],
            ph: p[0],
            pw: p[1],
            oh,
            ow,
        })
    });
    let g = geom?;
    // A stride-1 convolution is the transposed convolution of its spatially flipped,
    // channel-swapped kernel with padding `kernel − 1 − padding`; that form works on
    // `[out channels · kh · kw, pixels]` instead of `[in channels · kh · kw, pixels]`, far
    // less when the output has fewer channels (CycleGAN's last layer: 64 → 3, 7×7).
    let y = if wino::applies(&g, k) {
        // 3×3 stride 1 with enough channels: Winograd's F(2×2, 3×3), 2.25× less GEMM work.
        conv_op::<wino::Wino>(x, weight, ConvArgs { g, k })?
    } else if g.sh == 1 && g.sw == 1 && k < c && g.ph < kh && g.pw < kw {
        let w = weight.swap_dims(0, 1).flip([2, 3]);
        let t = Geom {
            c: k,
            h: g.oh,
            w: g.ow,
            ph: kh - 1 - g.ph,
            pw: kw - 1 - g.pw,
            oh: h,
            ow: w_in,
            ..g
        };
        conv_op::<ConvT>(x, w, ConvArgs { g: t, k: c })?
    } else {
        conv_op::<Conv>(x, weight, ConvArgs { g, k })?
    };
    Some(add_bias(y, bias))
}

impl FastConv for ConvTranspose2d {
    fn fast_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.try_fast(x.clone()).unwrap_or_else(|| self.forward(x))
    }
    fn try_fast(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        let [kh, kw] = self.kernel_size;
        let [b, c_in, h, w] = x.dims();
        let [sh, sw] = self.stride;
        let [ph, pw] = self.padding;
        let [oph, opw] = self.padding_out;
        let fits = self.groups == 1 && self.dilation == [1, 1] && oph < sh && opw < sw;
        // The output is the image a convolution with the same kernel, stride and padding maps
        // back onto x.
        let size = |n: usize, s: usize, k: usize, p: usize, op: usize| {
            ((n - 1) * s + k + op).checked_sub(2 * p).filter(|&o| o > 0)
        };
        let geom = (fits && h > 0 && w > 0)
            .then(|| Some((size(h, sh, kh, ph, oph)?, size(w, sw, kw, pw, opw)?)))
            .flatten()
            .map(|(oh, ow)| Geom {
                b,
                c: self.weight.dims()[1],
                h: oh,
                w: ow,
                kh,
                kw,
                sh,
                sw,
                ph,
                pw,
                oh: h,
                ow: w,
            });
        let y = conv_op::<ConvT>(x, self.weight.val(), ConvArgs { g: geom?, k: c_in })?;
        Some(add_bias(y, self.bias.as_ref().map(|b| b.val())))
    }
}

fn add_bias(y: Tensor<4>, bias: Option<Tensor<1>>) -> Tensor<4> {
    match bias {
        Some(b) => {
            let n = b.dims()[0];
            y + b.reshape([1, n, 1, 1])
        }
        None => y,
    }
}

/// The geometry of a convolution from an image `[b, c, h, w]` to `[.., oh, ow]` with a
/// `kh × kw` kernel, strides `sh, sw` and leading padding `ph, pw` (trailing padding is implied
/// by the output size). For a transposed convolution it is the geometry of the convolution it
/// is the adjoint of: the image is its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Geom {
    b: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    sh: usize,
    sw: usize,
    ph: usize,
    pw: usize,
    oh: usize,
    ow: usize,
}

impl Geom {
    /// Rows of the unfolded matrix: `c · kh · kw`.
    fn rows(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Columns of the unfolded matrix: `b · oh · ow`.
    fn cols(&self) -> usize {
        self.b * self.oh * self.ow
    }
    /// Whether the kernel covers the image exactly, without padding, in one output pixel
    /// (so unfold and fold are transposes).
    fn is_one_pixel(&self) -> bool {
        self.oh * self.ow == 1
            && self.ph == 0
            && self.pw == 0
            && self.h == self.kh
            && self.w == self.kw
    }
    /// The range of output columns `o` whose input column `o·s + j − p` lies in `0..n`.
    fn valid(o_len: usize, n: usize, s: usize, j: usize, p: usize) -> (usize, usize) {
        let lo = p.saturating_sub(j).div_ceil(s);
        let hi = if n + p > j {
            (n + p - j - 1) / s + 1
        } else {
            0
        };
        (lo.min(o_len), hi.min(o_len).max(lo.min(o_len)))
    }
}

/// The arguments of one op: its geometry and the channels of the side that is not the image
/// (a convolution's output channels, a transposed convolution's input channels).
#[derive(Debug, Clone, Copy)]
struct ConvArgs {
    g: Geom,
    k: usize,
}

/// One kind of convolution on contiguous f32 data: the forward (which may keep a buffer for the
/// backward) and the backward (input and/or weight gradient, sharing their common work).
///
/// Every pass runs over blocks of whole images ([`blocks`]): each block's unfolded matrix is
/// built, multiplied and folded while it is still in cache, and the large matrices are never
/// materialised for the whole batch (a DCGAN 64² layer's would be 67 MB).
trait Kernels: Send + Sync + std::fmt::Debug + 'static {
    /// `y` and its shape, and with `keep` what the backward can reuse.
    fn forward(x: &[f32], w: &[f32], a: ConvArgs, keep: bool) -> (Vec<f32>, [usize; 4], Kept);
    /// The input gradient if `need_x`, the weight gradient if `need_w`.
    #[allow(clippy::too_many_arguments)]
    fn backward(
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        a: ConvArgs,
        kept: Kept,
        need_x: bool,
        need_w: bool,
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>);
}

/// A buffer the forward computed and the backward reuses (a convolution's unfolded input, for
/// the weight gradient, when it is small enough to keep).
type Kept = Option<Arc<Vec<f32>>>;

/// Floats of an unfolded matrix worth keeping from the forward for the weight gradient (above
/// it, or above [`KEEP_RATIO`] times the input, the backward unfolds again block by block).
const KEEP_MAX: usize = 8 << 20;

/// Largest ratio of unfolded matrix to input worth keeping: 3 keeps CycleGAN's 3×3 stride-2
/// layers (2.25×) and neither DCGAN's 4×4 stride-2 ones (4×) nor the 3×3 stride-1 ones (9×).
/// Keeping DCGAN's once took 6% off its 28² step for +17 MiB; since unfold runs by phases
/// (one vector copy per tap) that is 3–5% for 30 MiB, given back. The 3×3 stride-1 ones, kept
/// for every residual block of six generator passes, doubled CycleGAN 128²'s peak (765 →
/// 1,619 MiB) for no measurable gain.
const KEEP_RATIO: usize = 3;

/// Floats of one block's unfolded matrix.
const BLOCK: usize = 4 << 20;

/// Blocks of whole images `(first, count)` whose unfolded matrices (`rows` each per output
/// pixel) hold about [`BLOCK`] floats; at least one image per block.
fn blocks(g: &Geom, rows: usize) -> impl Iterator<Item = (usize, usize)> {
    image_blocks(g.b, rows * g.oh * g.ow, BLOCK)
}

/// Blocks `(first, count)` of a batch of `b` images of `per_image` floats each that hold about
/// `floats` together; at least one image per block.
fn image_blocks(b: usize, per_image: usize, floats: usize) -> impl Iterator<Item = (usize, usize)> {
    let n = (floats / per_image.max(1)).clamp(1, b.max(1));
    (0..b).step_by(n).map(move |b0| (b0, n.min(b - b0)))
}

/// `conv2d`: x `[b, c, h, w]`, weight `[k, c, kh, kw]`, y `[b, k, oh, ow]`.
#[derive(Debug)]
struct Conv;

impl Kernels for Conv {
    fn forward(x: &[f32], w: &[f32], a: ConvArgs, keep: bool) -> (Vec<f32>, [usize; 4], Kept) {
        let ConvArgs { g, k } = a;
        let (r, s, image) = (g.rows(), g.oh * g.ow, g.c * g.h * g.w);
        let size = r * g.cols();
        let kept = (keep && size <= KEEP_MAX && size <= KEEP_RATIO * x.len())
            .then(|| Arc::new(unfold(x, &g)));
        // SAFETY: the blocks cover the batch, and each block's images are written in full.
        let y = unsafe {
            filled(g.b * k * s, |out| {
                for (b0, nb) in blocks(&g, r) {
                    let gb = Geom { b: nb, ..g };
                    let own;
                    // col [r, nb·s] (a column range of the kept matrix, or this block's own)
                    let (col, col_rs) = match &kept {
                        Some(c) => (&c[b0 * s..], g.cols()),
                        None => {
                            own = unfold(&x[b0 * image..][..nb * image], &gb);
                            (&own[..], nb * s)
                        }
                    };
                    // y' [k, nb·s] = W [k, r] · col [r, nb·s]
                    let yb = gemm(k, nb * s, r, w, (r, 1), col, (col_rs, 1));
                    let out = &mut out[b0 * k * s..][..nb * k * s];
                    channels_last_to_batch(&yb, nb, k, s, out);
                }
            })
        };
        (y, [g.b, k, g.oh, g.ow], kept)
    }
    fn backward(
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        ConvArgs { g, k }: ConvArgs,
        kept: Kept,
        need_x: bool,
        need_w: bool,
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
        let (r, s, n, image) = (g.rows(), g.oh * g.ow, g.cols(), g.c * g.h * g.w);
        let dy = batch_to_channels(dy, g.b, k, s);
        // SAFETY: the blocks cover the batch, and `fold` writes every element of its block.
        let dx = need_x.then(|| unsafe {
            filled(g.b * image, |out| {
                for (b0, nb) in blocks(&g, r) {
                    // dcol [r, nb·s] = Wᵀ [r, k] · dy' [k, nb·s]
                    let dcol = gemm(r, nb * s, k, w, (1, r), &dy[b0 * s..], (n, 1));
                    let gb = Geom { b: nb, ..g };
                    fold(&dcol, &gb, &mut out[b0 * image..][..nb * image]);
                }
            })
        });
        let mut dw = need_w.then(|| WeightGrad::new(k, r, n));
        for (i, (b0, nb)) in blocks(&g, r).enumerate() {
            let gb = Geom { b: nb, ..g };
            let dy_b = &dy[b0 * s..];
            if let Some(dw) = dw.as_mut() {
                let own;
                let (col, col_rs) = match &kept {
                    Some(c) => (&c[b0 * s..], n),
                    None => {
                        own = unfold(&x[b0 * image..][..nb * image], &gb);
                        (&own[..], nb * s)
                    }
                };
                // dW [k, r] += dy' [k, nb·s] · colᵀ [nb·s, r]
                dw.add(nb * s, i > 0, dy_b, n, col, col_rs);
            }
        }
        (dx, dw.map(WeightGrad::finish))
    }
}

/// `conv_transpose2d`: x `[b, k, oh, ow]`, weight `[k, c, kh, kw]`, y `[b, c, h, w]`.
#[derive(Debug)]
struct ConvT;

impl Kernels for ConvT {
    fn forward(x: &[f32], w: &[f32], a: ConvArgs, _keep: bool) -> (Vec<f32>, [usize; 4], Kept) {
        let ConvArgs { g, k } = a;
        let (r, s, n, image) = (g.rows(), g.oh * g.ow, g.cols(), g.c * g.h * g.w);
        let x = batch_to_channels(x, g.b, k, s);
        // SAFETY: the blocks cover the batch, and `fold` writes every element of its block.
        let y = unsafe {
            filled(g.b * image, |out| {
                for (b0, nb) in blocks(&g, r) {
                    // col [r, nb·s] = Wᵀ [r, k] · x' [k, nb·s]
                    let col = gemm(r, nb * s, k, w, (1, r), &x[b0 * s..], (n, 1));
                    let gb = Geom { b: nb, ..g };
                    fold(&col, &gb, &mut out[b0 * image..][..nb * image]);
                }
            })
        };
        (y, [g.b, g.c, g.h, g.w], None)
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
        let (r, s, n, image) = (g.rows(), g.oh * g.ow, g.cols(), g.c * g.h * g.w);
        let x = need_w.then(|| batch_to_channels(x, g.b, k, s));
        let mut dx = need_x.then(|| unwritten(k * n));
        let mut dw = need_w.then(|| WeightGrad::new(k, r, n));
        for (i, (b0, nb)) in blocks(&g, r).enumerate() {
            let dcol = unfold(&dy[b0 * image..][..nb * image], &Geom { b: nb, ..g });
            if let Some(dx) = dx.as_mut() {
                // dx' [k, nb·s] = W [k, r] · unfold(dy) [r, nb·s], into columns of [k, b·s]
                let out = &mut dx.spare_capacity_mut()[b0 * s..k * n];
                // SAFETY: not accumulating, `out` is not read.
                unsafe { gemm_into(k, nb * s, r, out, n, false, w, (r, 1), &dcol, (nb * s, 1)) };
            }
            if let (Some(dw), Some(x)) = (dw.as_mut(), x.as_ref()) {
                // dW [k, r] += x' [k, nb·s] · unfold(dy)ᵀ [nb·s, r]
                let xb = &x[b0 * s..];
                dw.add(nb * s, i > 0, xb, n, &dcol, nb * s);
            }
        }
        let dx = dx.map(|mut d| {
            // SAFETY: the blocks cover the columns `0..n`, and `gemm_into` wrote every row of
            // each block's columns.
            unsafe { d.set_len(k * n) };
            // SAFETY: `channels_last_to_batch` writes every element.
            unsafe { filled(d.len(), |out| channels_last_to_batch(&d, g.b, k, s, out)) }
        });
        (dx, dw.map(WeightGrad::finish))
    }
}

/// Weight gradients of at most this many values whose reduction is at least [`SPLIT_MIN`]
/// long are computed in [`SPLIT_PARTS`] runs of the reduction, one task each, then added: the
/// gemm crate shares a product between threads by its output tiles, so the first layer of a D
/// (`64 × 48` values over 65,536 pixels at 64²) or the last of a G ran on one core, as a string
/// of depth chunks of 0.1 ms each (DCGAN 64²: 0.90× and 0.97× from 1 to 2 threads). Not above
/// 4,096 values: with CycleGAN 128²'s first layer (`64 × 147`) split too, its step was 5–7%
/// shorter but its peak 31–39 MiB higher (the allocator's: the partial sums are 150 KiB), so
/// that layer stays with the gemm crate's split (`benches/NOTES.md` #25).
const SPLIT_MAX: usize = 4096;
/// Shortest reduction [`SPLIT_MAX`] splits.
const SPLIT_MIN: usize = 8192;
/// Runs of a split reduction: a fixed number, so that the sums do not depend on the threads.
const SPLIT_PARTS: usize = 4;

/// A weight gradient `dW [k, r] = Σ a [k, K] · bᵀ [K, r]` over blocks of columns, `a` and `b`
/// row-major with the reduction `K` contiguous in both (the output gradient or the input, and
/// an unfolded matrix).
///
/// The gemm crate copies ("packs") one operand into panels first, and with `K` contiguous that
/// copy is a gather across rows. Which operand it packs follows from the destination's layout,
/// so the product is taken in the orientation that packs the smaller one: `dWᵀ [r, k]`,
/// transposed at the end, when `k < r` (a layer whose kernel window holds more values than it
/// has output channels: a DCGAN D's 64 → 128 layer packs 128 rows instead of 1,024) and the
/// packing it saves, `(r − k)·K` floats, is more than twice the `k·r` of the transpose, which
/// reads a column of `dWᵀ` per row of `dW`. Not so where `K` is small against `k`: CycleGAN
/// 64²'s residual blocks (`k` = 256, `r` = 2,304, `K` = 256 pixels of one image), whose
/// transposes took 3.5% of the step.
struct WeightGrad {
    k: usize,
    r: usize,
    transposed: bool,
    /// `[k, r]`, or `[r, k]` when `transposed`.
    dw: Vec<f32>,
}

impl WeightGrad {
    /// `dW [k, r]` summed over `cols` columns in all.
    fn new(k: usize, r: usize, cols: usize) -> Self {
        Self {
            k,
            r,
            transposed: k < r && (r - k) * cols > 2 * k * r,
            dw: vec![0.0; k * r],
        }
    }

    /// `dW += a [k, cols] · bᵀ` (`=` unless `accumulate`), `a` and `b` rows `a_rs`, `b_rs` apart.
    fn add(
        &mut self,
        cols: usize,
        accumulate: bool,
        a: &[f32],
        a_rs: usize,
        b: &[f32],
        b_rs: usize,
    ) {
        // dWᵀ [r, k] = b · aᵀ, or dW [k, r] = a · bᵀ.
        let ((m, lhs, lhs_rs), (n, rhs, rhs_rs)) = if self.transposed {
            ((self.r, b, b_rs), (self.k, a, a_rs))
        } else {
            ((self.k, a, a_rs), (self.r, b, b_rs))
        };
        if m * n <= SPLIT_MAX && cols >= SPLIT_MIN {
            // The reduction in SPLIT_PARTS runs, one task each, summed in a fixed order (the
            // same on any number of threads).
            // The partial products' room is one buffer from the calling thread, not one per
            // task: allocations on the pool's threads go to their own heaps, which add to the
            // peak ([`with_scratch`]).
            check_operands(m, n, cols, lhs, (lhs_rs, 1), rhs, (1, rhs_rs));
            let run = cols.div_ceil(SPLIT_PARTS);
            let mut parts = vec![0.0f32; SPLIT_PARTS * m * n];
            parts
                .par_chunks_mut(m * n)
                .enumerate()
                .for_each(|(p, part)| {
                    let lo = (p * run).min(cols);
                    let len = run.min(cols - lo);
                    if len == 0 {
                        return;
                    }
                    crate::cpu::count_gemm(m, n, len);
                    // SAFETY: `part` is this task's own `m × n` room (row stride `n`), initialised;
                    // the operands' runs `lo..lo + len` lie inside them (checked above for `cols`).
                    unsafe {
                        gemm_raw(
                            m,
                            n,
                            len,
                            part.as_mut_ptr(),
                            n,
                            false,
                            &lhs[lo..],
                            (lhs_rs, 1),
                            &rhs[lo..],
                            (1, rhs_rs),
                            false,
                        )
                    };
                });
            for (i, d) in self.dw.iter_mut().enumerate() {
                let sum = parts
                    .chunks_exact(m * n)
                    .fold(0.0, |acc, part| acc + part[i]);
                *d = if accumulate { *d + sum } else { sum };
            }
            return;
        }
        // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and only floats are written through
        // the view.
        let dw = unsafe { &mut *(&mut self.dw[..] as *mut [f32] as *mut [MaybeUninit<f32>]) };
        // SAFETY: `dw` is initialised (zeros, then sums), so it may be read.
        unsafe {
            gemm_into(
                m,
                n,
                cols,
                dw,
                n,
                accumulate,
                lhs,
                (lhs_rs, 1),
                rhs,
                (1, rhs_rs),
            )
        };
    }

    /// `dW [k, r]`.
    fn finish(self) -> Vec<f32> {
        if !self.transposed {
            return self.dw;
        }
        transposed(&self.dw, self.r, self.k)
    }
}

/// Runs kernel `K` on `x` and `weight` if both are f32 flex tensors of the same kind (plain or
/// autodiff); `None` means "use burn's op".
fn conv_op<K: Kernels>(x: Tensor<4>, weight: Tensor<4>, a: ConvArgs) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return None;
    }
    if x.device().is_autodiff() {
        let keep = weight.is_require_grad();
        let xp = x.try_into_primitive::<Autodiff<Flex>>().ok()?;
        let wp = weight.try_into_primitive::<Autodiff<Flex>>().ok()?;
        let (xt, x_node) = xp.into_parts();
        let (wt, w_node) = wp.into_parts();
        let (xt, wt) = (contiguous(&xt), contiguous(&wt));
        let out = match Op::<K>::new()
            .prepare::<NoCheckpointing>([x_node, w_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (y, kept) = run_forward::<K>(&xt, &wt, a, keep);
                prep.finish((xt, wt, a, kept), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(run_forward::<K>(&xt, &wt, a, false).0),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
    } else {
        let xt = contiguous(&x.try_into_primitive::<Flex>().ok()?);
        let wt = contiguous(&weight.try_into_primitive::<Flex>().ok()?);
        Some(Tensor::from_primitive::<Flex>(
            run_forward::<K>(&xt, &wt, a, false).0,
        ))
    }
}

fn run_forward<K: Kernels>(
    x: &FlexTensor,
    w: &FlexTensor,
    a: ConvArgs,
    keep: bool,
) -> (FlexTensor, Kept) {
    let (y, shape, kept) = K::forward(slice(x), slice(w), a, keep);
    (tensor(y, shape.to_vec()), kept)
}

/// The backward step of kernel `K`; its state is the forward's (contiguous) inputs and what it
/// kept.
#[derive(Debug)]
struct Op<K>(std::marker::PhantomData<K>);

impl<K> Op<K> {
    fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<K: Kernels> Backward<Flex, 2> for Op<K> {
    type State = (FlexTensor, FlexTensor, ConvArgs, Kept);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, w, a, kept) = ops.state;
        let (dx, dw) = K::backward(
            slice(&x),
            slice(&w),
            slice(&dy),
            a,
            kept,
            node_x.is_some(),
            node_w.is_some(),
        );
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<Flex>(node.id, tensor(dx, x.layout().shape().to_vec()));
        }
        if let (Some(node), Some(dw)) = (node_w, dw) {
            grads.register::<Flex>(node.id, tensor(dw, w.layout().shape().to_vec()));
        }
    }
}

/// `src [m, n]` → `dst [n, m]` (row-major, both `m·n` floats), every element of `dst` written.
fn transpose_into(src: &[f32], m: usize, n: usize, dst: &mut [MaybeUninit<f32>]) {
    assert!(src.len() == m * n && dst.len() == m * n, "transpose: sizes");
    rows(dst, m, |j, row| {
        for (i, v) in row.iter_mut().enumerate() {
            v.write(src[i * n + j]);
        }
    });
}

/// `src [m, n]` → a new `[n, m]`.
fn transposed(src: &[f32], m: usize, n: usize) -> Vec<f32> {
    // SAFETY: `transpose_into` writes every element.
    unsafe { filled(m * n, |out| transpose_into(src, m, n, out)) }
}

/// `[b, c, s]` → `[c, b·s]`.
fn batch_to_channels(x: &[f32], b: usize, c: usize, s: usize) -> Vec<f32> {
    // SAFETY: each row is one copy of its whole length.
    unsafe {
        rows_new(x.len(), s, |n, row| {
            let (ci, bi) = (n / b, n % b);
            row.write_copy_of_slice(&x[(bi * c + ci) * s..][..s]);
        })
    }
}

/// `[c, b·s]` → `[b, c, s]`, into `out`, every element written.
fn channels_last_to_batch(y: &[f32], b: usize, c: usize, s: usize, out: &mut [MaybeUninit<f32>]) {
    rows(out, s, |n, row| {
        let (bi, ci) = (n / c, n % c);
        row.write_copy_of_slice(&y[(ci * b + bi) * s..][..s]);
    });
}

/// `buf` filled with zeros, as the initialised floats it now holds.
fn zeroed(buf: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    buf.fill(MaybeUninit::new(0.0));
    // SAFETY: every element was just written; `MaybeUninit<f32>` has `f32`'s layout.
    unsafe { &mut *(buf as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// im2col: `[b, c, h, w]` → `[c·kh·kw, b·oh·ow]`, zeros where the kernel overlaps the padding.
fn unfold(x: &[f32], g: &Geom) -> Vec<f32> {
    if g.is_one_pixel() {
        // To one pixel: a transpose, `[b, c·kh·kw]` → `[c·kh·kw, b]`.
        return transposed(x, g.b, g.rows());
    }
    match Phases::new(g) {
        Some(p) => unfold_phased(x, g, &p),
        None => unfold_rows(x, g),
    }
}

/// The general [`unfold`]: each col row gathered image row by image row at stride `sw`.
fn unfold_rows(x: &[f32], g: &Geom) -> Vec<f32> {
    let (s, n) = (g.oh * g.ow, g.cols());
    // SAFETY: each row is zeroed first.
    unsafe {
        rows_new(g.rows() * n, n, |r, row| {
            let row = zeroed(row);
            let (ci, i, j) = (r / (g.kh * g.kw), (r / g.kw) % g.kh, r % g.kw);
            let (y0, y1) = Geom::valid(g.oh, g.h, g.sh, i, g.ph);
            let (x0, x1) = Geom::valid(g.ow, g.w, g.sw, j, g.pw);
            if x0 == x1 {
                return; // the tap sees only padding
            }
            for bi in 0..g.b {
                let plane = &x[(bi * g.c + ci) * g.h * g.w..][..g.h * g.w];
                for y in y0..y1 {
                    let src = &plane[(y * g.sh + i - g.ph) * g.w..][..g.w];
                    let dst = &mut row[bi * s + y * g.ow..][..g.ow];
                    let start = x0 * g.sw + j - g.pw;
                    gather(&mut dst[x0..x1], &src[start..], g.sw);
                }
            }
        })
    }
}

/// `dst[t] = src[t · stride]` for every `t` of `dst`. Strides 1 and 2 (every layer of zoo's
/// models) get loops whose bounds are checked once, so they compile to straight copies.
#[inline(always)]
fn gather(dst: &mut [f32], src: &[f32], stride: usize) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    match stride {
        1 => dst.copy_from_slice(&src[..n]),
        2 => {
            let src = &src[..2 * n - 1];
            for t in 0..n {
                dst[t] = src[2 * t];
            }
        }
        _ => {
            for (d, &v) in dst.iter_mut().zip(src.iter().step_by(stride)) {
                *d = v;
            }
        }
    }
}

/// `dst[t · stride] += src[t]` for every `t` of `src` (the adjoint of [`gather`]).
#[inline(always)]
fn scatter_add(dst: &mut [f32], src: &[f32], stride: usize) {
    let n = src.len();
    if n == 0 {
        return;
    }
    match stride {
        1 => {
            for (d, &v) in dst[..n].iter_mut().zip(src) {
                *d += v;
            }
        }
        2 => {
            let dst = &mut dst[..2 * n - 1];
            for t in 0..n {
                dst[2 * t] += src[t];
            }
        }
        _ => {
            for (d, &v) in dst.iter_mut().step_by(stride).zip(src) {
                *d += v;
            }
        }
    }
}

/// col2im, the adjoint of [`unfold`]: `[c·kh·kw, b·oh·ow]` summed into `x` `[b, c, h, w]`,
/// overlapping windows added; every element of `x` is written (its contents are not read).
fn fold(col: &[f32], g: &Geom, x: &mut [MaybeUninit<f32>]) {
    if g.is_one_pixel() {
        // From one pixel (a DCGAN G's projection of z): a transpose, `[c·kh·kw, b]` → `[b, ..]`.
        return transpose_into(col, g.rows(), g.b, x);
    }
    match Phases::new(g) {
        Some(p) => fold_phased(col, g, &p, x),
        None => fold_scatter(col, g, x),
    }
}

/// The general [`fold`]: every kernel tap's rows added into the image at stride `sw`.
fn fold_scatter(col: &[f32], g: &Geom, x: &mut [MaybeUninit<f32>]) {
    let (s, n) = (g.oh * g.ow, g.cols());
    rows(x, g.h * g.w, |p, plane| {
        let plane = zeroed(plane);
        let (bi, ci) = (p / g.c, p % g.c);
        for i in 0..g.kh {
            let (y0, y1) = Geom::valid(g.oh, g.h, g.sh, i, g.ph);
            for j in 0..g.kw {
                let (x0, x1) = Geom::valid(g.ow, g.w, g.sw, j, g.pw);
                if x0 == x1 {
                    continue; // the tap sees only padding
                }
                let row = &col[((ci * g.kh + i) * g.kw + j) * n + bi * s..][..s];
                for y in y0..y1 {
                    let src = &row[y * g.ow..][..g.ow];
                    let dst = &mut plane[(y * g.sh + i - g.ph) * g.w..][..g.w];
                    let start = x0 * g.sw + j - g.pw;
                    scatter_add(&mut dst[start..], &src[x0..x1], g.sw);
                }
            }
        }
    });
}

/// The phases of an image whose size is its output's times the stride (`h = oh·sh`,
/// `w = ow·sw`: the padded stride-2 layers of zoo's models and their transposes; not
/// CycleGAN's valid-padded 3×3 and 7×7 layers nor a DCGAN D's last), for [`unfold`] and
/// [`fold`] without strided element-by-element loops.
///
/// Such an image splits into `sh·sw` phases (`y mod sh`, `x mod sw`), each `oh × ow` like the
/// plane of a col row, and kernel tap `(i, j)` reads (unfold) or adds to (fold) exactly one
/// phase, shifted by `(dy, dx)` against its col plane. Flattened, a shift is a contiguous run,
/// so a tap is one long vector copy or add over the plane; where a horizontal shift carries
/// across a row end, a bit mask zeroes the element (exact, unlike multiplying by 0). A row of
/// `ow` (7 to 32) floats at stride `sw` is too short for vector code.
struct Phases {
    /// Per phase `py·sw + px`, its taps.
    taps: Vec<Vec<Tap>>,
    /// Per horizontal shift: `!0` where `0 ≤ x + shift < ow`, 0 elsewhere, per flat index.
    masks: Vec<Vec<u32>>,
    /// Floats of a phase (and col) plane, `oh·ow`.
    plane: usize,
    /// The taps whose plane lies wholly in the padding (no [`Tap`]): zeros in the col.
    padding_only: Vec<usize>,
}

/// One kernel tap of a [`Phases`] split.
struct Tap {
    /// Its col row within a channel, `i·kw + j`.
    t: usize,
    /// Col plane index = phase plane index + `off` (`dy·ow + dx`).
    off: isize,
    /// The phase plane indexes fold adds to.
    fold: Run,
    /// The col plane indexes unfold writes.
    unfold: Run,
}

/// A flat run `lo..hi` of destination indexes whose source (shifted by `±off`) is in its
/// plane, and the mask of those whose row it is not in.
struct Run {
    lo: usize,
    hi: usize,
    mask: Option<usize>,
}

impl Phases {
    fn new(g: &Geom) -> Option<Self> {
        if g.h != g.oh * g.sh || g.w != g.ow * g.sw {
            return None;
        }
        let (s, ow, oh) = (g.oh * g.ow, g.ow as isize, g.oh as isize);
        let mut shifts: Vec<isize> = Vec::new();
        // Destination `k` reads source `k + sy·ow + sx`, inside its plane and row.
        let mut run = |sy: isize, sx: isize| {
            let rows = ((-sy).max(0), oh.min(oh - sy));
            let off = sy * ow + sx;
            let lo = (rows.0 * ow).max(-off);
            let hi = (rows.1 * ow).min(s as isize - off);
            let mask = (sx != 0).then(|| match shifts.iter().position(|&d| d == sx) {
                Some(m) => m,
                None => {
                    shifts.push(sx);
                    shifts.len() - 1
                }
            });
            (hi > lo).then_some(Run {
                lo: lo as usize,
                hi: hi as usize,
                mask,
            })
        };
        let mut taps: Vec<Vec<Tap>> = (0..g.sh * g.sw).map(|_| Vec::new()).collect();
        for i in 0..g.kh {
            for j in 0..g.kw {
                // image row `sh·ty + py` = col row `oy·sh + i − ph`, so `oy = ty + dy`
                let py = (i as isize - g.ph as isize).rem_euclid(g.sh as isize);
                let px = (j as isize - g.pw as isize).rem_euclid(g.sw as isize);
                let dy = (py + g.ph as isize - i as isize) / g.sh as isize;
                let dx = (px + g.pw as isize - j as isize) / g.sw as isize;
                if dy.abs() >= oh || dx.abs() >= ow {
                    continue; // the tap's plane lies wholly in the padding
                }
                if let (Some(fold), Some(unfold)) = (run(dy, dx), run(-dy, -dx)) {
                    let t = i * g.kw + j;
                    let off = dy * ow + dx;
                    taps[py as usize * g.sw + px as usize].push(Tap {
                        t,
                        off,
                        fold,
                        unfold,
                    });
                }
            }
        }
        let masks = shifts
            .iter()
            .map(|&sx| {
                (0..s)
                    .map(|k| {
                        let inside = (0..ow).contains(&((k as isize % ow) + sx));
                        if inside { !0 } else { 0 }
                    })
                    .collect()
            })
            .collect();
        let mut padding_only: Vec<usize> = (0..g.kh * g.kw).collect();
        padding_only.retain(|&t| !taps.iter().flatten().any(|tap| tap.t == t));
        Some(Self {
            taps,
            masks,
            plane: s,
            padding_only,
        })
    }

    /// `dst[k] += src[k + off]` over `run`, masked (fold).
    #[inline(always)]
    fn add_run(&self, dst: &mut [f32], src: &[f32], off: isize, run: &Run) {
        let (lo, hi) = (run.lo, run.hi);
        let src = &src[(lo as isize + off) as usize..][..hi - lo];
        let dst = &mut dst[lo..hi];
        match run.mask {
            None => dst.iter_mut().zip(src).for_each(|(d, &v)| *d += v),
            Some(m) => {
                let mask = &self.masks[m][lo..hi];
                for ((d, &v), &m) in dst.iter_mut().zip(src).zip(mask) {
                    *d += f32::from_bits(v.to_bits() & m);
                }
            }
        }
    }

    /// `dst[k] = src[k + off]` over `run`, masked, and 0 on the rest of `dst` (unfold): every
    /// element of `dst` written.
    #[inline(always)]
    fn copy_run(&self, dst: &mut [MaybeUninit<f32>], src: &[f32], off: isize, run: &Run) {
        let (lo, hi) = (run.lo, run.hi);
        let src = &src[(lo as isize + off) as usize..][..hi - lo];
        let (head, rest) = dst.split_at_mut(lo);
        let (dst, tail) = rest.split_at_mut(hi - lo);
        head.fill(MaybeUninit::new(0.0));
        tail.fill(MaybeUninit::new(0.0));
        match run.mask {
            None => {
                dst.write_copy_of_slice(src);
            }
            Some(m) => {
                let mask = &self.masks[m][lo..hi];
                for ((d, &v), &m) in dst.iter_mut().zip(src).zip(mask) {
                    d.write(f32::from_bits(v.to_bits() & m));
                }
            }
        }
    }
}

/// [`unfold`] by phases ([`Phases`]): per channel (one block of `kh·kw` col rows) and image,
/// the plane split into its phases once, then every tap one masked copy.
fn unfold_phased(x: &[f32], g: &Geom, p: &Phases) -> Vec<f32> {
    let (s, n, taps) = (g.oh * g.ow, g.cols(), g.kh * g.kw);
    let single = g.sh * g.sw == 1;
    // SAFETY: a channel's block holds its `taps` col rows: those of the taps that see only
    // padding are zeroed, and every other tap (each exactly once, in one phase's list) writes
    // every element of its plane for every image (`copy_run`).
    unsafe {
        rows_new(g.rows() * n, taps * n, |ci, block| {
            for &t in &p.padding_only {
                block[t * n..][..n].fill(MaybeUninit::new(0.0));
            }
            with_scratch(if single { 0 } else { g.h * g.w }, |buf| {
                for bi in 0..g.b {
                    let plane = &x[(bi * g.c + ci) * g.h * g.w..][..g.h * g.w];
                    let phases: &[f32] = if single {
                        plane
                    } else {
                        split_phases(plane, g, buf);
                        buf
                    };
                    for (phase, list) in p.taps.iter().enumerate() {
                        let src = &phases[phase * s..][..s];
                        for tap in list {
                            let dst = &mut block[tap.t * n + bi * s..][..s];
                            p.copy_run(dst, src, -tap.off, &tap.unfold);
                        }
                    }
                }
            })
        })
    }
}

thread_local! {
    /// Each thread's buffer for [`with_scratch`].
    static SCRATCH: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer of `len` floats (contents unspecified). Kernels
/// that need a plane-sized buffer per parallel task use it instead of allocating one per task:
/// allocations on rayon's threads go to per-thread heaps of the allocator, which add to the
/// peak memory (+17 MiB on the DCGAN 28² step).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0.0);
            }
            f(&mut buf[..len])
        }
        // Re-entered on this thread (a nested parallel call ran another task here): its own.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// `[h, w]` → its `sh·sw` phase planes `[oh, ow]` (`h = oh·sh`, `w = ow·sw`), into `out`.
fn split_phases(plane: &[f32], g: &Geom, out: &mut [f32]) {
    let s = g.oh * g.ow;
    for y in 0..g.h {
        let (ty, py) = (y / g.sh, y % g.sh);
        let row = &plane[y * g.w..][..g.w];
        match g.sw {
            2 => {
                let (even, odd) = out[py * 2 * s..][..2 * s].split_at_mut(s);
                let (even, odd) = (
                    &mut even[ty * g.ow..][..g.ow],
                    &mut odd[ty * g.ow..][..g.ow],
                );
                for ((pair, e), o) in row.chunks_exact(2).zip(even).zip(odd) {
                    *e = pair[0];
                    *o = pair[1];
                }
            }
            sw => {
                for (xi, &v) in row.iter().enumerate() {
                    out[(py * sw + xi % sw) * s + ty * g.ow + xi / sw] = v;
                }
            }
        }
    }
}

/// [`fold`] by phases ([`Phases`]): per image plane, each phase summed tap by tap in a buffer
/// and written out once, interleaved (stride 1: summed in place).
fn fold_phased(col: &[f32], g: &Geom, p: &Phases, x: &mut [MaybeUninit<f32>]) {
    let (s, n, taps) = (g.oh * g.ow, g.cols(), g.kh * g.kw);
    let single = g.sh * g.sw == 1;
    channel_planes(x, g, |bi, ci, plane| {
        if single {
            return add_taps(col, p, zeroed(plane), (ci * taps) * n + bi * s, n);
        }
        with_scratch(g.h * g.w, |buf| {
            buf.fill(0.0);
            add_taps(col, p, buf, (ci * taps) * n + bi * s, n);
            for y in 0..g.h {
                let (ty, py) = (y / g.sh, y % g.sh);
                let row = &mut plane[y * g.w..][..g.w];
                let at = |px: usize| &buf[(py * g.sw + px) * s + ty * g.ow..][..g.ow];
                match g.sw {
                    2 => {
                        let (even, odd) = (at(0), at(1));
                        for (pair, (&e, &o)) in row.chunks_exact_mut(2).zip(even.iter().zip(odd)) {
                            pair[0].write(e);
                            pair[1].write(o);
                        }
                    }
                    sw => {
                        for (xi, v) in row.iter_mut().enumerate() {
                            v.write(at(xi % sw)[xi / sw]);
                        }
                    }
                }
            }
        })
    });
}

/// `f(image, channel, plane)` for every plane of `x` `[b, c, h, w]`, channel by channel and
/// image by image within a channel, in parallel over channels (and runs of images, so that
/// there are at least 8 tasks). A channel's col rows hold its images side by side, so this
/// order reads each col row front to back; image by image it would hop between `kh·kw` rows
/// `b·oh·ow` floats apart for every short run.
fn channel_planes(
    x: &mut [MaybeUninit<f32>],
    g: &Geom,
    f: impl Fn(usize, usize, &mut [MaybeUninit<f32>]) + Sync,
) {
    let plane = g.h * g.w;
    assert_eq!(x.len(), g.b * g.c * plane, "channel_planes: image size");
    let parts = (8 / g.c.max(1)).clamp(1, g.b.max(1));
    let run = g.b.div_ceil(parts).max(1);
    // No list of the planes: even a small allocation here moved the allocator's peak by 7-13
    // MiB on the DCGAN 28² step. Tasks take their planes from a shared pointer instead.
    let base = SharedMut(x.as_mut_ptr());
    let task = |t: usize| {
        let ci = t / parts;
        let images = (t % parts) * run..((t % parts + 1) * run).min(g.b);
        for bi in images {
            // SAFETY: plane `bi·c + ci` lies inside `x` (asserted above), and task `t` is the
            // only one with channel `ci` and image `bi`, so the slices never overlap; `x` is
            // borrowed mutably for the whole call.
            let p =
                unsafe { std::slice::from_raw_parts_mut(base.at((bi * g.c + ci) * plane), plane) };
            f(bi, ci, p);
        }
    };
    if x.len() < PAR_MIN {
        (0..g.c * parts).for_each(task);
    } else {
        (0..g.c * parts).into_par_iter().for_each(task);
    }
}

/// A pointer into a buffer whose disjoint parts tasks on several threads write.
#[derive(Clone, Copy)]
struct SharedMut(*mut MaybeUninit<f32>);

// SAFETY: the pointer is only turned into slices of disjoint parts (see its users).
unsafe impl Send for SharedMut {}
// SAFETY: as above.
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer `offset` floats in (a method, so that closures capture the whole wrapper).
    fn at(self, offset: usize) -> *mut MaybeUninit<f32> {
        self.0.wrapping_add(offset)
    }
}

/// Every tap of every phase added into `acc` (the phase planes, zeroed), from the col rows of
/// one channel and image (`at`: the index of its first tap's plane; rows `n` apart).
fn add_taps(col: &[f32], p: &Phases, acc: &mut [f32], at: usize, n: usize) {
    let s = p.plane;
    for (phase, acc) in acc.chunks_exact_mut(s).enumerate() {
        for tap in &p.taps[phase] {
            p.add_run(acc, &col[at + tap.t * n..][..s], tap.off, &tap.fold);
        }
    }
}

/// `lhs [m, k] · rhs [k, n]` as a new row-major `[m, n]` buffer, each operand given with its
/// (row, column) strides.
pub(crate) fn gemm(
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) -> Vec<f32> {
    crate::cpu::count_gemm(m, n, k);
    gemm_uncounted(m, n, k, lhs, lhs_strides, rhs, rhs_strides)
}

/// [`gemm`] without adding to [`crate::cpu::gemm_flops`] (the peak probe).
pub(crate) fn gemm_uncounted(
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) -> Vec<f32> {
    let len = m * n;
    if len == 0 || k == 0 {
        return vec![0.0; len];
    }
    check_operands(m, n, k, lhs, lhs_strides, rhs, rhs_strides);
    // SAFETY: the operands are checked; `dst` is the `m × n` row-major result, which gemm
    // writes in full (`read_dst` is false and `k > 0`).
    unsafe {
        filled(len, |dst| {
            gemm_raw(
                m,
                n,
                k,
                dst.as_mut_ptr().cast(),
                n,
                false,
                lhs,
                lhs_strides,
                rhs,
                rhs_strides,
                true,
            )
        })
    }
}

/// `dst [m, n] = lhs · rhs` (or `+=` with `accumulate`), `dst` row-major with row stride
/// `dst_rs` (it may be a column range of a wider matrix); every one of its `m × n` elements
/// is written.
///
/// # Safety
/// With `accumulate`, the elements of `dst` it addresses must be initialised (they are read).
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [MaybeUninit<f32>],
    dst_rs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * dst_rs + n <= dst.len(), "gemm: dst out of bounds");
    if k == 0 {
        if !accumulate {
            for row in 0..m {
                dst[row * dst_rs..][..n].fill(MaybeUninit::new(0.0));
            }
        }
        return;
    }
    check_operands(m, n, k, lhs, lhs_strides, rhs, rhs_strides);
    crate::cpu::count_gemm(m, n, k);
    // SAFETY: `dst` holds every element the strides address (asserted above) and is borrowed
    // mutably, so it aliases neither operand; it is read only with `accumulate`, when the
    // caller guarantees it is initialised; the operands are checked.
    unsafe {
        gemm_raw(
            m,
            n,
            k,
            dst.as_mut_ptr().cast(),
            dst_rs,
            accumulate,
            lhs,
            lhs_strides,
            rhs,
            rhs_strides,
            true,
        );
    }
}

/// Panics unless every element `lhs [m, k]` and `rhs [k, n]` address with their strides is
/// inside the slices (`m, n, k > 0`).
fn check_operands(
    m: usize,
    n: usize,
    k: usize,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
) {
    let last = |rs: usize, cs: usize, r: usize, c: usize| (r - 1) * rs + (c - 1) * cs;
    assert!(
        last(lhs_rs, lhs_cs, m, k) < lhs.len(),
        "gemm: lhs out of bounds"
    );
    assert!(
        last(rhs_rs, rhs_cs, k, n) < rhs.len(),
        "gemm: rhs out of bounds"
    );
}

/// The gemm crate's kernel on both cores (when `parallel` and the product is large enough to
/// share), else on the calling thread.
///
/// # Safety
/// `dst` must be valid for writes (and reads with `read_dst`) of the `m × n` elements at
/// `row · dst_rs + col`, and must not alias the operands, whose addressed elements must be in
/// bounds ([`check_operands`]); `m, n, k > 0`.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    dst_rs: usize,
    read_dst: bool,
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    parallel: bool,
) {
    let parallelism = if parallel && m * n * k >= 48 * 48 * 48 && rayon::current_num_threads() > 1 {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: forwarded from the caller.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            dst_rs as isize,
            read_dst,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            if read_dst { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::close;
    use super::*;
    use crate::rng_lock;
    use burn::module::Module;
    use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
    use burn::tensor::{Device, Distribution};
    use rand::{RngExt, SeedableRng, rngs::StdRng};

    /// Forward values and the gradients of x, weight and bias of `fast` against `reference`
    /// under a random linear loss, on the autodiff device; then the plain (inference) path.
    fn check<L: Module + Clone>(
        layer: L,
        x: Tensor<4>,
        fast: impl Fn(&L, Tensor<4>) -> Tensor<4>,
        reference: impl Fn(&L, Tensor<4>) -> Tensor<4>,
        params: impl Fn(&L) -> (Tensor<4>, Option<Tensor<1>>),
        what: &str,
    ) {
        let x = x.require_grad();
        let y_ref = reference(&layer, x.clone());
        let y = fast(&layer, x.clone());
        close(y.clone(), y_ref.clone(), &format!("{what}: forward"));
        let probe = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &y.device());
        let g = (y * probe.clone()).sum().backward();
        let g_ref = (y_ref * probe).sum().backward();
        let (w, b) = params(&layer);
        let grad = |t: &Tensor<4>, g| t.grad(g).expect("a gradient");
        close(
            grad(&x, &g),
            grad(&x, &g_ref),
            &format!("{what}: input gradient"),
        );
        close(
            grad(&w, &g),
            grad(&w, &g_ref),
            &format!("{what}: weight gradient"),
        );
        if let Some(b) = b {
            let (gb, gb_ref) = (b.grad(&g), b.grad(&g_ref));
            close(
                gb.expect("a bias gradient"),
                gb_ref.expect("a bias gradient"),
                what,
            );
        }
        let plain = layer.valid();
        let x = x.inner();
        close(
            fast(&plain, x.clone()),
            reference(&plain, x),
            &format!("{what}: inference"),
        );
    }

    /// The fast path, which must apply.
    fn fast<L: FastConv>(l: &L, x: Tensor<4>) -> Tensor<4> {
        l.try_fast(x).expect("the fast path applies to this layer")
    }

    fn conv_params(l: &Conv2d) -> (Tensor<4>, Option<Tensor<1>>) {
        (l.weight.val(), l.bias.as_ref().map(|b| b.val()))
    }
    fn convt_params(l: &ConvTranspose2d) -> (Tensor<4>, Option<Tensor<1>>) {
        (l.weight.val(), l.bias.as_ref().map(|b| b.val()))
    }

    #[test]
    fn conv2d_matches_burn_on_random_shapes() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(7);
        let mut rng = StdRng::seed_from_u64(7);
        for case in 0..40 {
            let (k, s) = (rng.random_range(1..=5), rng.random_range(1..=3));
            let pad: [usize; 4] = std::array::from_fn(|_| rng.random_range(0..=2));
            let (h, w) = (rng.random_range(k..=k + 9), rng.random_range(k..=k + 9));
            let (c, o, b) = (
                rng.random_range(1..=5),
                rng.random_range(1..=6),
                rng.random_range(1..=3),
            );
            let padding = if case % 5 == 0 {
                PaddingConfig2d::Valid
            } else {
                PaddingConfig2d::Explicit(pad[0], pad[1], pad[2], pad[3])
            };
            let layer = Conv2dConfig::new([c, o], [k, k + case % 2])
                .with_stride([s, 1 + case % 2])
                .with_padding(padding.clone())
                .with_bias(case % 3 != 0)
                .init(&device);
            let x = Tensor::<4>::random(
                [b, c, h, w + case % 2],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            let what = format!("case {case}: conv {c}->{o} k{k} s{s} {padding:?} on {b}x{h}x{w}");
            check(layer, x, fast, |l, x| l.forward(x), conv_params, &what);
        }
    }

    #[test]
    fn conv_transpose2d_matches_burn_on_random_shapes() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(8);
        let mut rng = StdRng::seed_from_u64(8);
        for case in 0..40 {
            let (k, s) = (rng.random_range(1..=5), rng.random_range(1..=3));
            let p = [rng.random_range(0..=2), rng.random_range(0..=2)];
            let op = [rng.random_range(0..s), rng.random_range(0..s)];
            let (h, w) = (rng.random_range(1..=8), rng.random_range(1..=8));
            let (c, o, b) = (
                rng.random_range(1..=5),
                rng.random_range(1..=6),
                rng.random_range(1..=3),
            );
            let layer = ConvTranspose2dConfig::new([c, o], [k, k + case % 2])
                .with_stride([s, s])
                .with_padding(p)
                .with_padding_out(op)
                .with_bias(case % 3 != 0)
                .init(&device);
            // Shapes whose output would be empty are burn's to reject.
            if (h - 1) * s + k + op[0] <= 2 * p[0] || (w - 1) * s + k + case % 2 + op[1] <= 2 * p[1]
            {
                continue;
            }
            let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let what =
                format!("case {case}: convT {c}->{o} k{k} s{s} p{p:?} op{op:?} on {b}x{h}x{w}");
            check(layer, x, fast, |l, x| l.forward(x), convt_params, &what);
        }
    }

    /// The layers of zoo's models, at their real sizes (batch 2).
    #[test]
    fn model_layers_match_burn() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(9);
        let conv = |c: [usize; 2], k: usize, s: usize, p: usize, size: usize| {
            let l = Conv2dConfig::new(c, [k, k])
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .init(&device);
            let x = Tensor::<4>::random(
                [2, c[0], size, size],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            check(
                l,
                x,
                fast,
                |l, x| l.forward(x),
                conv_params,
                &format!("conv {c:?} k{k} s{s} @ {size}"),
            );
        };
        conv([1, 64], 4, 2, 1, 28);
        conv([64, 128], 4, 2, 1, 14);
        conv([128, 1], 7, 1, 0, 7);
        conv([3, 64], 7, 1, 0, 22);
        conv([64, 64], 3, 1, 0, 18);
        conv([256, 256], 3, 1, 0, 10);
        conv([64, 3], 7, 1, 0, 22);
        conv([512, 1], 4, 1, 1, 7);
        conv([256, 1], 4, 1, 1, 5);
        let convt = |c: [usize; 2], k: usize, s: usize, p: usize, op: usize, size: usize| {
            let l = ConvTranspose2dConfig::new(c, [k, k])
                .with_stride([s, s])
                .with_padding([p, p])
                .with_padding_out([op, op])
                .init(&device);
            let x = Tensor::<4>::random(
                [2, c[0], size, size],
                Distribution::Normal(0.0, 1.0),
                &device,
            );
            check(
                l,
                x,
                fast,
                |l, x| l.forward(x),
                convt_params,
                &format!("convT {c:?} k{k} s{s} @ {size}"),
            );
        };
        convt([100, 128], 7, 1, 0, 0, 1);
        convt([128, 64], 4, 2, 1, 0, 7);
        convt([64, 1], 4, 2, 1, 0, 14);
        convt([64, 32], 3, 2, 1, 1, 8);
    }

    /// The phase and one-pixel paths of unfold and fold give exactly what the general ones
    /// give (same additions in the same order), over strides 1–3, kernels 1–5 and paddings
    /// 0–3 of images `oh·sh × ow·sw`, and kernels covering a whole image.
    #[test]
    fn phased_unfold_and_fold_equal_the_general_ones() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut phased = 0;
        for case in 0..300 {
            let (sh, sw) = (rng.random_range(1..=3), rng.random_range(1..=3));
            let (kh, kw) = (rng.random_range(1..=5), rng.random_range(1..=5));
            let (oh, ow) = (rng.random_range(1..=6), rng.random_range(1..=6));
            let one = case % 10 == 0;
            let g = Geom {
                b: rng.random_range(1..=3),
                c: rng.random_range(1..=3),
                h: if one { kh } else { oh * sh },
                w: if one { kw } else { ow * sw },
                kh,
                kw,
                sh,
                sw,
                ph: if one { 0 } else { rng.random_range(0..=3) },
                pw: if one { 0 } else { rng.random_range(0..=3) },
                oh: if one { 1 } else { oh },
                ow: if one { 1 } else { ow },
            };
            phased += usize::from(Phases::new(&g).is_some() && !g.is_one_pixel());
            let x: Vec<f32> = (0..g.b * g.c * g.h * g.w)
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            assert_eq!(
                unfold(&x, &g),
                unfold_rows(&x, &g),
                "unfold, case {case}: {g:?}"
            );
            let col: Vec<f32> = (0..g.rows() * g.cols())
                .map(|_| rng.random_range(-1.0..1.0))
                .collect();
            // NaN where fold has not written (it writes every element).
            let mut fast = vec![MaybeUninit::new(f32::NAN); x.len()];
            let mut general = fast.clone();
            fold(&col, &g, &mut fast);
            fold_scatter(&col, &g, &mut general);
            let read = |v: Vec<MaybeUninit<f32>>| -> Vec<f32> {
                // SAFETY: every element was initialised (NaN, or written by the fold).
                v.into_iter().map(|e| unsafe { e.assume_init() }).collect()
            };
            let (fast, general) = (read(fast), read(general));
            assert_eq!(fast, general, "fold, case {case}: {g:?}");
        }
        assert!(phased > 200, "{phased} phased cases of 300");
    }

    /// [`check`] for a convolution.
    fn check_conv(layer: Conv2d, x: Tensor<4>, what: &str) {
        check(layer, x, fast, |l, x| l.forward(x), conv_params, what);
    }

    /// [`check`] for a transposed convolution.
    fn check_convt(layer: ConvTranspose2d, x: Tensor<4>, what: &str) {
        check(layer, x, fast, |l, x| l.forward(x), convt_params, what);
    }

    /// `f` run on a pool of `threads` threads.
    fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(f)
    }

    /// The bits of each float, to compare results exactly.
    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    /// DCGAN's downsampling layer: `input → output` channels, 4×4, stride 2, padding 1.
    fn down4(input: usize, output: usize, device: &Device) -> Conv2d {
        Conv2dConfig::new([input, output], [4, 4])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(device)
    }

    /// DCGAN's upsampling layer: `input → output` channels, 4×4, stride 2, padding 1.
    fn up4(input: usize, output: usize, device: &Device) -> ConvTranspose2d {
        ConvTranspose2dConfig::new([input, output], [4, 4])
            .with_stride([2, 2])
            .with_padding([1, 1])
            .init(device)
    }

    /// Batches that span several blocks of images ([`blocks`]), with the forward's unfolded
    /// input kept for the weight gradient (batch 24) and recomputed block by block (batch 40,
    /// above [`KEEP_MAX`]): a CycleGAN-style 3×3 stride-2 downsampling (kept: 2.25× its input),
    /// and DCGAN 64²'s second G layer.
    #[test]
    fn multi_block_batches_match_burn() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(16);
        // The image side of both layers: 64 channels at 32², 4×4 kernel, stride 2, padding 1.
        let image = Geom {
            b: 24,
            c: 64,
            h: 32,
            w: 32,
            kh: 4,
            kw: 4,
            sh: 2,
            sw: 2,
            ph: 1,
            pw: 1,
            oh: 16,
            ow: 16,
        };
        // 128 channels at 32², 3×3 kernel, stride 2, padding 1.
        let down = Geom {
            c: 128,
            kh: 3,
            kw: 3,
            ..image
        };
        for b in [24, 40] {
            let conv = Conv2dConfig::new([128, 64], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&device);
            let g = Geom { b, ..down };
            assert!(
                blocks(&g, g.rows()).count() > 1,
                "the test must span several blocks"
            );
            assert_eq!(g.rows() * g.cols() <= KEEP_MAX, b == 24);
            assert!(g.rows() * g.cols() <= KEEP_RATIO * g.b * g.c * g.h * g.w);
            let x = Tensor::<4>::random([b, 128, 32, 32], Distribution::Normal(0.0, 1.0), &device);
            check_conv(conv, x, &format!("conv 128->64 3x3 @32, batch {b}"));
        }
        // DCGAN 64²'s second D layer (4×4, never kept), over several blocks.
        let conv = down4(64, 128, &device);
        let g = Geom { b: 40, ..image };
        assert!(
            blocks(&g, g.rows()).count() > 1
                && g.rows() * g.cols() > KEEP_RATIO * g.b * g.c * g.h * g.w
        );
        let x = Tensor::<4>::random([40, 64, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        check_conv(conv, x, "conv 64->128 4x4 @32, batch 40");
        let convt = up4(128, 64, &device);
        assert!(
            blocks(&image, image.rows()).count() > 1,
            "the test must span several blocks"
        );
        let x = Tensor::<4>::random([24, 128, 16, 16], Distribution::Normal(0.0, 1.0), &device);
        check_convt(convt, x, "convT 128->64 @16, batch 24");
    }

    /// Weight gradients whose reduction is split ([`SPLIT_PARTS`] runs): DCGAN 64²'s first D
    /// layer and last G layer against burn's, and the split product itself against an f64 sum,
    /// bit for bit the same on one thread and on two, in both orientations and accumulating.
    #[test]
    fn split_reductions_match_burn_on_any_threads() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(17);
        let split = |k: usize, r: usize, cols: usize| k * r <= SPLIT_MAX && cols >= SPLIT_MIN;
        let conv = down4(3, 64, &device);
        assert!(
            split(64, 3 * 16, 8 * 32 * 32),
            "the layer must take the split path"
        );
        let x = Tensor::<4>::random([8, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
        check_conv(conv, x, "conv 3->64 @64");
        let convt = up4(64, 3, &device);
        let x = Tensor::<4>::random([8, 64, 32, 32], Distribution::Normal(0.0, 1.0), &device);
        check_convt(convt, x, "convT 64->3 @32");

        let mut rng = StdRng::seed_from_u64(5);
        for (k, r) in [(64, 48), (16, 48)] {
            let cols = 3 * SPLIT_MIN + 5;
            assert!(split(k, r, cols));
            let a: Vec<f32> = (0..k * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
            let b: Vec<f32> = (0..r * cols).map(|_| rng.random_range(-1.0..1.0)).collect();
            let run = |threads: usize| {
                on_threads(threads, || {
                    let mut dw = WeightGrad::new(k, r, 2 * cols);
                    dw.add(cols, false, &a, cols, &b, cols);
                    dw.add(cols, true, &a, cols, &b, cols);
                    (dw.transposed, dw.finish())
                })
            };
            let ((transposed, one), (_, two)) = (run(1), run(2));
            assert_eq!(transposed, k < r, "both orientations are covered");
            assert_eq!(bits(&one), bits(&two), "{k}x{r}: one thread against two");
            for i in 0..k {
                for j in 0..r {
                    let dot: f64 = (0..cols)
                        .map(|t| a[i * cols + t] as f64 * b[j * cols + t] as f64)
                        .sum();
                    let got = one[i * r + j] as f64;
                    assert!(
                        (got - 2.0 * dot).abs() <= 1e-3 * (1.0 + dot.abs()),
                        "{k}x{r} at ({i}, {j}): {got} against {}",
                        2.0 * dot
                    );
                }
            }
        }
    }

    /// Layouts the fast path does not take (same padding, groups, dilation) fall back to burn.
    #[test]
    fn other_layouts_fall_back_to_burn() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(10);
        let x = Tensor::<4>::random([2, 4, 9, 9], Distribution::Normal(0.0, 1.0), &device);
        for cfg in [
            Conv2dConfig::new([4, 6], [3, 3]).with_padding(PaddingConfig2d::Same),
            Conv2dConfig::new([4, 6], [3, 3]).with_groups(2),
            Conv2dConfig::new([4, 6], [3, 3]).with_dilation([2, 2]),
        ] {
            let l = cfg.init(&device);
            assert!(l.try_fast(x.clone()).is_none(), "{cfg:?}");
            close(
                l.fast_forward(x.clone()),
                l.forward(x.clone()),
                &format!("{cfg:?}"),
            );
        }
    }

    /// 3×3 stride-1 convolutions with 128 or more channels on both sides take Winograd's path
    /// ([`wino`]): values and all three gradients against burn's op over paddings 0–2 on each
    /// side (so tiles running past odd outputs and images wider than the tiles read), batches
    /// of 1–3, with and without bias.
    #[test]
    fn winograd_matches_burn_on_random_shapes() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(18);
        let mut rng = StdRng::seed_from_u64(18);
        for case in 0..10 {
            let pad: [usize; 4] = std::array::from_fn(|_| rng.random_range(0..=2));
            let (h, w) = (rng.random_range(3..=12), rng.random_range(3..=12));
            let (c, o, b) = (
                rng.random_range(128..=136),
                rng.random_range(128..=136),
                rng.random_range(1..=3),
            );
            let padding = PaddingConfig2d::Explicit(pad[0], pad[1], pad[2], pad[3]);
            let layer = Conv2dConfig::new([c, o], [3, 3])
                .with_padding(padding.clone())
                .with_bias(case % 3 != 0)
                .init(&device);
            let x = Tensor::<4>::random([b, c, h, w], Distribution::Normal(0.0, 1.0), &device);
            let what = format!("case {case}: conv {c}->{o} 3x3 {padding:?} on {b}x{h}x{w}");
            check(layer, x, fast, |l, x| l.forward(x), conv_params, &what);
        }
    }

    /// Winograd's path over several blocks of images, against burn's op; and its three passes
    /// bit for bit the same on one thread and on two.
    #[test]
    fn winograd_blocks_and_threads() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(19);
        let layer = Conv2dConfig::new([128, 128], [3, 3]).init(&device);
        let x = Tensor::<4>::random([3, 128, 34, 34], Distribution::Normal(0.0, 1.0), &device);
        let g = Geom {
            b: 3,
            c: 128,
            h: 34,
            w: 34,
            kh: 3,
            kw: 3,
            sh: 1,
            sw: 1,
            ph: 0,
            pw: 0,
            oh: 32,
            ow: 32,
        };
        assert!(
            wino::applies(&g, 128),
            "the layer must take Winograd's path"
        );
        let mut rng = StdRng::seed_from_u64(19);
        let mut draw =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
        let (xs, ws, dys) = (
            draw(3 * 128 * 34 * 34),
            draw(128 * 128 * 9),
            draw(3 * 128 * 32 * 32),
        );
        let a = ConvArgs { g, k: 128 };
        let run = |threads: usize| {
            on_threads(threads, || {
                let (y, _, _) = wino::Wino::forward(&xs, &ws, a, false);
                let (dx, dw) = wino::Wino::backward(&xs, &ws, &dys, a, None, true, true);
                (y, dx.expect("dx"), dw.expect("dw"))
            })
        };
        let (one, two) = (run(1), run(2));
        assert_eq!(
            bits(&one.0),
            bits(&two.0),
            "forward: one thread against two"
        );
        assert_eq!(
            bits(&one.1),
            bits(&two.1),
            "input gradient: one thread against two"
        );
        assert_eq!(
            bits(&one.2),
            bits(&two.2),
            "weight gradient: one thread against two"
        );
        check_conv(layer, x, "conv 128->128 3x3 @34, 3 images");
    }
}

//! Times the layers of a training step one by one on flex (see benches/NOTES.md):
//! `ops_profile` for DCGAN 28² at batch 64, `ops_profile cyclegan` for CycleGAN 64² at batch 1.
//! Convolutions: forward, forward + input gradient, forward + weight gradient; other layers:
//! forward, forward + backward. Each convolution is timed twice: burn's op, and zoo's one-GEMM
//! path (`zoo_kernels::FastConv`).
use std::time::Instant;

use burn::module::{Param, ParamId};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2dConfig, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions, PadMode};
use zoo_kernels::FastConv;

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let n = 5;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64 * 1e3
}

fn random(shape: [usize; 4], std: f64, ad: &Device) -> Tensor<4> {
    Tensor::random(shape, Distribution::Normal(0.0, std), ad)
}

/// A layer `f(x, w)`: forward, and the gradient with respect to each input.
fn layer(name: &str, xs: Tensor<4>, ws: Tensor<4>, f: impl Fn(Tensor<4>, Tensor<4>) -> Tensor<4>) {
    let fwd = time(|| {
        let _ = f(xs.clone(), ws.clone()).into_data();
    });
    let xg = time(|| {
        let x = xs.clone().require_grad();
        let g = f(x.clone(), ws.clone()).sum().backward();
        let _ = x.grad(&g).map(|t| t.into_data());
    });
    let wg = time(|| {
        let w = ws.clone().require_grad();
        let g = f(xs.clone(), w.clone()).sum().backward();
        let _ = w.grad(&g).map(|t| t.into_data());
    });
    println!("{name:<30} fwd {fwd:7.2} ms   fwd+dx {xg:7.2} ms   fwd+dw {wg:7.2} ms");
}

/// (name, input, weight, stride, padding, transposed)
type Conv = (&'static str, [usize; 4], [usize; 4], usize, usize, bool);

fn convs(ad: &Device, list: &[Conv]) {
    for &(name, x, w, s, p, transposed) in list {
        let (xs, ws) = (random(x, 1.0, ad), random(w, 0.1, ad));
        let k = [w[2], w[3]];
        // zoo's one-GEMM path (`FastConv`) on a layer holding `w` as it is (no extra grad).
        let param = |w: Tensor<4>| Param::initialized(ParamId::new(), w);
        if transposed {
            let o = ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1);
            layer(&format!("{name} (burn)"), xs.clone(), ws.clone(), |x, w| {
                conv_transpose2d(x, w, None, o.clone())
            });
            let base = ConvTranspose2dConfig::new([w[0], w[1]], k)
                .with_stride([s, s])
                .with_padding([p, p])
                .with_bias(false)
                .init(ad);
            layer(&format!("{name} (zoo)"), xs, ws, |x, w| {
                let mut l = base.clone();
                l.weight = param(w);
                l.fast_forward(x)
            });
        } else {
            let o = ConvOptions::new([s, s], [p, p], [1, 1], 1);
            layer(&format!("{name} (burn)"), xs.clone(), ws.clone(), |x, w| {
                conv2d(x, w, None, o.clone())
            });
            let base = Conv2dConfig::new([w[1], w[0]], k)
                .with_stride([s, s])
                .with_padding(PaddingConfig2d::Explicit(p, p, p, p))
                .with_bias(false)
                .init(ad);
            layer(&format!("{name} (zoo)"), xs, ws, |x, w| {
                let mut l = base.clone();
                l.weight = param(w);
                l.fast_forward(x)
            });
        }
    }
}

/// A one-input layer: forward, and forward + backward of the sum of squares.
fn unary(ad: &Device, shape: [usize; 4], name: &str, f: impl Fn(Tensor<4>) -> Tensor<4>) {
    let xs = random(shape, 1.0, ad);
    let fwd = time(|| {
        let _ = f(xs.clone()).into_data();
    });
    let bwd = time(|| {
        let x = xs.clone().require_grad();
        let g = f(x.clone()).powi_scalar(2).sum().backward();
        let _ = x.grad(&g).map(|t| t.into_data());
    });
    println!("{name:<30} fwd {fwd:7.2} ms   fwd+bwd {bwd:7.2} ms");
}

/// Batch norm (training mode) from reductions over a contiguous [N, C, HW] view.
fn bn_ops(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let x3 = x.reshape([n, c, h * w]);
    let count = (n * h * w) as f64;
    let mean = x3.clone().sum_dim(2).sum_dim(0).div_scalar(count);
    let centered = x3 - mean;
    let var = centered.clone().powi_scalar(2);
    let var = var.sum_dim(2).sum_dim(0).div_scalar(count);
    let scale = var.add_scalar(1e-5).sqrt().recip() * gamma.reshape([1, c, 1]);
    (centered * scale + beta.reshape([1, c, 1])).reshape([n, c, h, w])
}

fn batch_norms(ad: &Device, shape: [usize; 4]) {
    let c = shape[1];
    let m = burn::nn::BatchNormConfig::new(c).init(ad);
    let gamma = Tensor::<1>::ones([c], ad).require_grad();
    let beta = Tensor::<1>::zeros([c], ad).require_grad();
    let xs = random(shape, 1.0, ad);
    let ours = bn_ops(xs.clone(), gamma.clone(), beta.clone());
    let diff = (m.forward(xs) - ours).abs().max().into_scalar::<f32>();
    let at = format!("{c} @{}x{}", shape[2], shape[3]);
    unary(ad, shape, &format!("BN {at}"), |x| m.forward(x));
    unary(ad, shape, &format!("contiguous BN {at}"), |x| {
        bn_ops(x, gamma.clone(), beta.clone())
    });
    println!("  (the two differ by at most {diff:.1e})");
}

fn main() {
    let ad = Device::flex().autodiff();
    if std::env::args().any(|a| a == "cyclegan") {
        let in256 = burn::nn::InstanceNormConfig::new(256)
            .with_affine(false)
            .init(&ad);
        let in64 = burn::nn::InstanceNormConfig::new(64)
            .with_affine(false)
            .init(&ad);
        unary(&ad, [1, 256, 16, 16], "InstanceNorm 256 @16x16", |x| {
            in256.forward(x)
        });
        unary(&ad, [1, 64, 64, 64], "InstanceNorm 64 @64x64", |x| {
            in64.forward(x)
        });
        let reflect = |p| move |x: Tensor<4>| x.pad((p, p, p, p), PadMode::Reflect);
        unary(&ad, [1, 256, 16, 16], "reflect pad 1 @16x16", reflect(1));
        unary(&ad, [1, 3, 64, 64], "reflect pad 3 @64x64", reflect(3));
        unary(
            &ad,
            [1, 256, 16, 16],
            "relu 256 @16x16",
            burn::tensor::activation::relu,
        );
        convs(
            &ad,
            &[
                (
                    "res conv 256 3x3 @16",
                    [1, 256, 18, 18],
                    [256, 256, 3, 3],
                    1,
                    0,
                    false,
                ),
                ("c7s1-64 @64", [1, 3, 70, 70], [64, 3, 7, 7], 1, 0, false),
                (
                    "d128 @64->32",
                    [1, 64, 64, 64],
                    [128, 64, 3, 3],
                    2,
                    1,
                    false,
                ),
                (
                    "d256 @32->16",
                    [1, 128, 32, 32],
                    [256, 128, 3, 3],
                    2,
                    1,
                    false,
                ),
                (
                    "u128 @16->31",
                    [1, 256, 16, 16],
                    [256, 128, 3, 3],
                    2,
                    1,
                    true,
                ),
                ("u64 @32->63", [1, 128, 32, 32], [128, 64, 3, 3], 2, 1, true),
                ("c7s1-3 @64", [1, 64, 70, 70], [3, 64, 7, 7], 1, 0, false),
            ],
        );
        return;
    }
    convs(
        &ad,
        &[
            (
                "D conv 1->64 28->14",
                [64, 1, 28, 28],
                [64, 1, 4, 4],
                2,
                1,
                false,
            ),
            (
                "D conv 64->128 14->7",
                [64, 64, 14, 14],
                [128, 64, 4, 4],
                2,
                1,
                false,
            ),
            (
                "D conv 128->1 7->1",
                [64, 128, 7, 7],
                [1, 128, 7, 7],
                1,
                0,
                false,
            ),
            (
                "G convT 100->128 1->7",
                [64, 100, 1, 1],
                [100, 128, 7, 7],
                1,
                0,
                true,
            ),
            (
                "G convT 128->64 7->14",
                [64, 128, 7, 7],
                [128, 64, 4, 4],
                2,
                1,
                true,
            ),
            (
                "G convT 64->1 14->28",
                [64, 64, 14, 14],
                [64, 1, 4, 4],
                2,
                1,
                true,
            ),
        ],
    );
    batch_norms(&ad, [64, 128, 7, 7]);
    batch_norms(&ad, [64, 64, 14, 14]);
}

//! Times the convolution and batch-norm ops of the DCGAN 28² step at batch 64 on flex:
//! forward, input gradient and weight gradient separately.
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{conv_transpose2d, conv2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};

fn time<F: FnMut()>(mut f: F) -> f64 {
    f();
    let n = 5;
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / n as f64 * 1e3
}

fn conv(dev: &Device, x: [usize; 4], w: [usize; 4], s: usize, p: usize, name: &str) {
    let ad = dev.clone().autodiff();
    let xs = Tensor::<4>::random(x, Distribution::Normal(0.0, 1.0), &ad);
    let ws = Tensor::<4>::random(w, Distribution::Normal(0.0, 0.1), &ad);
    let o = ConvOptions::new([s, s], [p, p], [1, 1], 1);
    let fwd = time(|| {
        let _ = conv2d(xs.clone(), ws.clone(), None, o.clone()).into_data();
    });
    let xg = time(|| {
        let x = xs.clone().require_grad();
        let y = conv2d(x.clone(), ws.clone(), None, o.clone());
        let g = y.sum().backward();
        let _ = x.grad(&g).map(|t| t.into_data());
    });
    let wg = time(|| {
        let w = ws.clone().require_grad();
        let y = conv2d(xs.clone(), w.clone(), None, o.clone());
        let g = y.sum().backward();
        let _ = w.grad(&g).map(|t| t.into_data());
    });
    println!("{name:<28} fwd {fwd:7.2} ms   fwd+dx {xg:7.2} ms   fwd+dw {wg:7.2} ms");
}

fn convt(dev: &Device, x: [usize; 4], w: [usize; 4], s: usize, p: usize, name: &str) {
    let ad = dev.clone().autodiff();
    let xs = Tensor::<4>::random(x, Distribution::Normal(0.0, 1.0), &ad);
    let ws = Tensor::<4>::random(w, Distribution::Normal(0.0, 0.1), &ad);
    let o = ConvTransposeOptions::new([s, s], [p, p], [0, 0], [1, 1], 1);
    let fwd = time(|| {
        let _ = conv_transpose2d(xs.clone(), ws.clone(), None, o.clone()).into_data();
    });
    let xg = time(|| {
        let x = xs.clone().require_grad();
        let y = conv_transpose2d(x.clone(), ws.clone(), None, o.clone());
        let g = y.sum().backward();
        let _ = x.grad(&g).map(|t| t.into_data());
    });
    let wg = time(|| {
        let w = ws.clone().require_grad();
        let y = conv_transpose2d(xs.clone(), w.clone(), None, o.clone());
        let g = y.sum().backward();
        let _ = w.grad(&g).map(|t| t.into_data());
    });
    println!("{name:<28} fwd {fwd:7.2} ms   fwd+dx {xg:7.2} ms   fwd+dw {wg:7.2} ms");
}

fn bn(dev: &Device, shape: [usize; 4], name: &str) {
    let ad = dev.clone().autodiff();
    let m = burn::nn::BatchNormConfig::new(shape[1]).init(&ad);
    let xs = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
    let fwd = time(|| {
        let _ = m.forward(xs.clone()).into_data();
    });
    let bwd = time(|| {
        let x = xs.clone().require_grad();
        let g = m.forward(x.clone()).powi_scalar(2).sum().backward();
        let _ = x.grad(&g).map(|t| t.into_data());
    });
    println!("{name:<28} fwd {fwd:7.2} ms   fwd+bwd {bwd:7.2} ms");
}

/// Batch norm (training mode) from reductions over a contiguous [N, C, HW] view.
fn bn_ops(x: Tensor<4>, gamma: Tensor<1>, beta: Tensor<1>) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let x3 = x.reshape([n, c, h * w]);
    let count = (n * h * w) as f64;
    let mean = x3.clone().sum_dim(2).sum_dim(0).div_scalar(count);
    let centered = x3 - mean;
    let var = centered
        .clone()
        .powi_scalar(2)
        .sum_dim(2)
        .sum_dim(0)
        .div_scalar(count);
    let scale = var.add_scalar(1e-5).sqrt().recip() * gamma.reshape([1, c, 1]);
    (centered * scale + beta.reshape([1, c, 1])).reshape([n, c, h, w])
}

fn bn2(dev: &Device, shape: [usize; 4], name: &str) {
    let ad = dev.clone().autodiff();
    let gamma = Tensor::<1>::ones([shape[1]], &ad).require_grad();
    let beta = Tensor::<1>::zeros([shape[1]], &ad).require_grad();
    let xs = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
    let m = burn::nn::BatchNormConfig::new(shape[1]).init(&ad);
    let a = m.forward(xs.clone());
    let b = bn_ops(xs.clone(), gamma.clone(), beta.clone());
    let diff = (a - b).abs().max().into_scalar::<f32>();
    let fwd = time(|| {
        let _ = bn_ops(xs.clone(), gamma.clone(), beta.clone()).into_data();
    });
    let bwd = time(|| {
        let x = xs.clone().require_grad();
        let g = bn_ops(x.clone(), gamma.clone(), beta.clone())
            .powi_scalar(2)
            .sum()
            .backward();
        let _ = x.grad(&g).map(|t| t.into_data());
    });
    println!("{name:<28} fwd {fwd:7.2} ms   fwd+bwd {bwd:7.2} ms  (max diff {diff:.2e})");
}

fn unary(dev: &Device, shape: [usize; 4], name: &str, f: impl Fn(Tensor<4>) -> Tensor<4>) {
    let ad = dev.clone().autodiff();
    let xs = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &ad);
    let fwd = time(|| {
        let _ = f(xs.clone()).into_data();
    });
    let bwd = time(|| {
        let x = xs.clone().require_grad();
        let g = f(x.clone()).powi_scalar(2).sum().backward();
        let _ = x.grad(&g).map(|t| t.into_data());
    });
    println!("{name:<28} fwd {fwd:7.2} ms   fwd+bwd {bwd:7.2} ms");
}

fn main() {
    if std::env::args().any(|a| a == "cyclegan") {
        let dev = Device::flex();
        let ad = dev.clone().autodiff();
        let inorm = burn::nn::InstanceNormConfig::new(256)
            .with_affine(false)
            .init(&ad);
        unary(&dev, [1, 256, 16, 16], "InstanceNorm 256 @16x16", |x| {
            inorm.forward(x)
        });
        let inorm64 = burn::nn::InstanceNormConfig::new(64)
            .with_affine(false)
            .init(&ad);
        unary(&dev, [1, 64, 64, 64], "InstanceNorm 64 @64x64", |x| {
            inorm64.forward(x)
        });
        unary(&dev, [1, 256, 16, 16], "reflect pad 1 @16x16", |x| {
            x.pad((1, 1, 1, 1), burn::tensor::ops::PadMode::Reflect)
        });
        unary(&dev, [1, 3, 64, 64], "reflect pad 3 @64x64 (3 ch)", |x| {
            x.pad((3, 3, 3, 3), burn::tensor::ops::PadMode::Reflect)
        });
        unary(
            &dev,
            [1, 256, 16, 16],
            "relu 256 @16x16",
            burn::tensor::activation::relu,
        );
        conv(
            &dev,
            [1, 256, 18, 18],
            [256, 256, 3, 3],
            1,
            0,
            "res conv 256 3x3 @16",
        );
        conv(&dev, [1, 3, 70, 70], [64, 3, 7, 7], 1, 0, "c7s1-64 @64");
        conv(&dev, [1, 64, 64, 64], [128, 64, 3, 3], 2, 1, "d128 @64->32");
        conv(
            &dev,
            [1, 128, 32, 32],
            [256, 128, 3, 3],
            2,
            1,
            "d256 @32->16",
        );
        convt(
            &dev,
            [1, 256, 16, 16],
            [256, 128, 3, 3],
            2,
            1,
            "u128 @16->31",
        );
        convt(&dev, [1, 128, 32, 32], [128, 64, 3, 3], 2, 1, "u64 @32->63");
        conv(&dev, [1, 64, 70, 70], [3, 64, 7, 7], 1, 0, "c7s1-3 @64");
        return;
    }
    let dev = Device::flex();
    conv(
        &dev,
        [64, 1, 28, 28],
        [64, 1, 4, 4],
        2,
        1,
        "D conv 1->64 28->14",
    );
    conv(
        &dev,
        [64, 64, 14, 14],
        [128, 64, 4, 4],
        2,
        1,
        "D conv 64->128 14->7",
    );
    conv(
        &dev,
        [64, 128, 7, 7],
        [1, 128, 7, 7],
        1,
        0,
        "D conv 128->1 7->1",
    );
    convt(
        &dev,
        [64, 100, 1, 1],
        [100, 128, 7, 7],
        1,
        0,
        "G convT 100->128 1->7",
    );
    convt(
        &dev,
        [64, 128, 7, 7],
        [128, 64, 4, 4],
        2,
        1,
        "G convT 128->64 7->14",
    );
    convt(
        &dev,
        [64, 64, 14, 14],
        [64, 1, 4, 4],
        2,
        1,
        "G convT 64->1 14->28",
    );
    bn(&dev, [64, 128, 7, 7], "BN 128 @7x7");
    bn(&dev, [64, 64, 14, 14], "BN 64 @14x14");
    bn2(&dev, [64, 128, 7, 7], "ops BN 128 @7x7");
    bn2(&dev, [64, 64, 14, 14], "ops BN 64 @14x14");
}

//! DCGAN's generator and discriminator, sized from the image.

use anyhow::{Result, bail};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{relu, tanh};
use zoo_core::kernels::{FastConv, FastNorm, leaky_relu};
use zoo_export::{Graph, Value, layers};

use crate::DcganConfig;

/// How a square image decomposes into DCGAN stages: `size = base · 2^stages`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Side of the first (G) / last (D) feature map, 4 to 7.
    pub base: usize,
    /// Number of ×2 up-sampling (G) / down-sampling (D) stages.
    pub stages: usize,
    /// Image channels.
    pub channels: usize,
}

impl Layout {
    /// The layout of `size`×`size` images, or an error listing valid sizes.
    pub fn new(size: usize, channels: usize) -> Result<Self> {
        let mut base = size;
        let mut stages = 0;
        while base > 7 && base.is_multiple_of(2) {
            base /= 2;
            stages += 1;
        }
        if !(4..=7).contains(&base) || stages == 0 {
            bail!(
                "data.image_size = {size} does not suit DCGAN: it must be a base of 4 to 7 times a \
                 power of two, at least 8 (e.g. 28, 32, 56, 64, 128)"
            );
        }
        Ok(Self {
            base,
            stages,
            channels,
        })
    }

    /// Image side.
    pub fn size(&self) -> usize {
        self.base << self.stages
    }
}

/// N(0, σ) weights.
pub fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}

/// Batch norm with γ ~ N(1, σ), β = 0 (the paper's init).
pub fn batch_norm(features: usize, std: f64, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(features).init(device);
    let gamma = Tensor::random([features], Distribution::Normal(1.0, std), device);
    bn.gamma = Param::from_tensor(gamma);
    bn
}

/// The generator: z → transposed conv (base×base) → [transposed conv ×2, BN, ReLU]… → tanh.
#[derive(Module, Debug)]
pub struct Generator {
    convs: Vec<ConvTranspose2d>,
    norms: Vec<BatchNorm>,
}

impl Generator {
    /// Builds the paper's generator for `layout`.
    pub fn new(layout: &Layout, cfg: &DcganConfig, device: &Device) -> Self {
        let n = layout.stages;
        let init = normal(cfg.init_std);
        // Widths: ngf·2^(n-1), …, ngf, then the image channels.
        let ngf = cfg.g_filters_at(layout.size());
        let widths: Vec<usize> = (0..n).rev().map(|i| ngf << i).collect();
        let mut convs = vec![
            ConvTranspose2dConfig::new([cfg.latent_dim, widths[0]], [layout.base; 2])
                .with_bias(false)
                .with_initializer(init.clone())
                .init(device),
        ];
        let mut norms = vec![batch_norm(widths[0], cfg.init_std, device)];
        for i in 0..n {
            let out = widths.get(i + 1).copied().unwrap_or(layout.channels);
            convs.push(
                ConvTranspose2dConfig::new([widths[i], out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_bias(false)
                    .with_initializer(init.clone())
                    .init(device),
            );
            if i + 1 < n {
                norms.push(batch_norm(out, cfg.init_std, device));
            }
        }
        Self { convs, norms }
    }

    /// Images `[N, C, H, W]` in [-1, 1] from codes `[N, latent]`.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let [n, l] = z.dims();
        let mut x: Tensor<4> = z.reshape([n, l, 1, 1]);
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.fast_forward(x);
            if i < last {
                x = relu(self.norms[i].fast_forward(x));
            }
        }
        tanh(x)
    }

    /// The same forward as an ONNX graph from codes `z` `[N, latent]` (batch norm with its
    /// running statistics).
    pub fn to_onnx(&self, g: &mut Graph, z: &Value) -> Result<Value> {
        let l = self.convs[0].weight.dims()[0] as i64;
        let mut x = layers::reshape(g, z, &[0, l, 1, 1], "g.reshape");
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            x = layers::conv_transpose2d(g, &x, conv, &format!("g.convs.{i}"))?;
            if i < last {
                x = layers::batch_norm(g, &x, &self.norms[i], &format!("g.norms.{i}"))?;
                x = layers::relu(g, &x, &format!("g.relu.{i}"));
            }
        }
        Ok(layers::tanh(g, &x, "g.tanh"))
    }
}

/// The discriminator: [conv ×½, (BN), LeakyReLU]… → a base×base conv to one logit.
#[derive(Module, Debug)]
pub struct Discriminator {
    convs: Vec<Conv2d>,
    norms: Vec<BatchNorm>,
    #[module(skip)]
    slope: f64,
}

impl Discriminator {
    /// Builds the paper's discriminator for `layout`.
    pub fn new(layout: &Layout, cfg: &DcganConfig, device: &Device) -> Self {
        let n = layout.stages;
        let init = normal(cfg.init_std);
        let widths: Vec<usize> = (0..n).map(|i| cfg.d_filters << i).collect();
        let mut convs = Vec::with_capacity(n + 1);
        let mut norms = Vec::with_capacity(n - 1);
        for i in 0..n {
            let input = if i == 0 {
                layout.channels
            } else {
                widths[i - 1]
            };
            convs.push(
                Conv2dConfig::new([input, widths[i]], [4, 4])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .with_bias(false)
                    .with_initializer(init.clone())
                    .init(device),
            );
            if i > 0 {
                norms.push(batch_norm(widths[i], cfg.init_std, device));
            }
        }
        convs.push(
            Conv2dConfig::new([widths[n - 1], 1], [layout.base; 2])
                .with_bias(false)
                .with_initializer(init)
                .init(device),
        );
        Self {
            convs,
            norms,
            slope: cfg.leaky_slope,
        }
    }

    /// The trunk: every layer before the last convolution, `[N, C, base, base]` (shared with
    /// heads such as AC-GAN's class logits).
    pub fn features(&self, images: Tensor<4>) -> Tensor<4> {
        let mut x = images;
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs[..last].iter().enumerate() {
            x = conv.fast_forward(x);
            if i > 0 {
                x = self.norms[i - 1].fast_forward(x);
            }
            x = leaky_relu(x, self.slope);
        }
        x
    }

    /// The last convolution: logits `[N, 1]` from [`Discriminator::features`].
    pub fn head(&self, features: Tensor<4>) -> Tensor<2> {
        let n = features.dims()[0];
        let last = self.convs.len() - 1;
        self.convs[last].fast_forward(features).reshape([n, 1])
    }

    /// Logits `[N, 1]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head(self.features(images))
    }

    /// Channels of [`Discriminator::features`].
    pub fn feature_channels(&self) -> usize {
        self.convs[self.convs.len() - 1].weight.dims()[1]
    }
}

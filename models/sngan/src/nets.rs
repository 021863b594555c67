//! SNGAN's "standard CNN" networks (the paper's Table 3, for 32×32 CIFAR-10), sized from the
//! image as DCGAN's are: `size = base · 2ⁿ`.
//!
//! - **G**: z → dense to `base²·(ngf·2ⁿ)` → BN, ReLU → n × [4×4 stride-2 transposed conv
//!   halving the width, BN, ReLU] → 3×3 conv to the image channels → tanh. At 32 px with
//!   ngf = 64: 512@4² → 256@8² → 128@16² → 64@32² → 3, the paper's.
//! - **D**: n × [3×3 conv stride 1, LeakyReLU, 4×4 conv stride 2, LeakyReLU] with widths
//!   ndf·2ⁱ, then a 3×3 conv to twice the last width, LeakyReLU, and a dense layer to one
//!   logit; **every** layer spectrally normalised, no batch norm. At 32 px with ndf = 64:
//!   64, 64, 128, 128, 256, 256, 512, dense — the paper's.

use anyhow::Result;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::{relu, tanh};
use zoo_core::kernels::{FastConv, FastLinear, FastNorm, leaky_relu};
use zoo_core::nn::{SpectralNorm, spectral_norm};
use zoo_dcgan::Layout;
use zoo_dcgan::nets::{batch_norm, normal};
use zoo_export::{Graph, Value, layers};

use crate::SnganConfig;

/// The generator (see the module docs).
#[derive(Module, Debug)]
pub struct Generator {
    dense: Linear,
    dense_norm: BatchNorm,
    ups: Vec<ConvTranspose2d>,
    norms: Vec<BatchNorm>,
    out: Conv2d,
    #[module(skip)]
    base: usize,
}

impl Generator {
    /// The generator for `layout`.
    pub fn new(layout: &Layout, cfg: &SnganConfig, device: &Device) -> Self {
        let n = layout.stages;
        let init = normal(cfg.init_std);
        let top = cfg.g_filters << n;
        let dense = LinearConfig::new(cfg.latent_dim, layout.base * layout.base * top)
            .with_initializer(init.clone())
            .init(device);
        let mut ups = Vec::with_capacity(n);
        let mut norms = Vec::with_capacity(n);
        for i in 0..n {
            let (from, to) = (top >> i, top >> (i + 1));
            ups.push(
                ConvTranspose2dConfig::new([from, to], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_initializer(init.clone())
                    .init(device),
            );
            norms.push(batch_norm(to, cfg.init_std, device));
        }
        let out = Conv2dConfig::new([cfg.g_filters, layout.channels], [3, 3])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_initializer(init)
            .init(device);
        Self {
            dense,
            dense_norm: batch_norm(top, cfg.init_std, device),
            ups,
            norms,
            out,
            base: layout.base,
        }
    }

    /// Images `[N, C, H, W]` in [-1, 1] from codes `[N, latent]`.
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let n = z.dims()[0];
        let top = self.dense.weight.dims()[1] / (self.base * self.base);
        let x = self
            .dense
            .fast_forward(z)
            .reshape([n, top, self.base, self.base]);
        let mut x = relu(self.dense_norm.fast_forward(x));
        for (up, norm) in self.ups.iter().zip(&self.norms) {
            x = relu(norm.fast_forward(up.fast_forward(x)));
        }
        tanh(self.out.fast_forward(x))
    }

    /// The same forward as an ONNX graph (batch norm with its running statistics).
    pub fn to_onnx(&self, g: &mut Graph, z: &Value) -> Result<Value> {
        let top = (self.dense.weight.dims()[1] / (self.base * self.base)) as i64;
        let b = self.base as i64;
        let x = layers::linear(g, z, &self.dense, "g.dense")?;
        let x = layers::reshape(g, &x, &[0, top, b, b], "g.reshape");
        let x = layers::batch_norm(g, &x, &self.dense_norm, "g.dense_norm")?;
        let mut x = layers::relu(g, &x, "g.dense_relu");
        for (i, (up, norm)) in self.ups.iter().zip(&self.norms).enumerate() {
            x = layers::conv_transpose2d(g, &x, up, &format!("g.ups.{i}"))?;
            x = layers::batch_norm(g, &x, norm, &format!("g.norms.{i}"))?;
            x = layers::relu(g, &x, &format!("g.relu.{i}"));
        }
        let x = layers::conv2d(g, &x, &self.out, "g.out")?;
        Ok(layers::tanh(g, &x, "g.tanh"))
    }
}

/// The discriminator: spectrally normalised convolutions and dense head (see the module docs).
#[derive(Module, Debug)]
pub struct Discriminator {
    pub(crate) convs: Vec<SpectralNorm<Conv2d>>,
    pub(crate) head: SpectralNorm<Linear>,
    #[module(skip)]
    slope: f64,
}

impl Discriminator {
    /// The discriminator for `layout` (Xavier-uniform weights, zero biases, as mimicry's
    /// SNGAN; with spectral normalisation the scale of the init sets the step size, not the
    /// function).
    pub fn new(layout: &Layout, cfg: &SnganConfig, device: &Device) -> Self {
        let n = layout.stages;
        let init = Initializer::XavierUniform { gain: 1.0 };
        let conv = |from: usize, to: usize, k: usize, stride: usize| {
            let c = Conv2dConfig::new([from, to], [k, k])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_initializer(init.clone())
                .init(device);
            spectral_norm(c, device)
        };
        let mut convs = Vec::with_capacity(2 * n + 1);
        let mut width = layout.channels;
        for i in 0..n {
            let w = cfg.d_filters << i;
            convs.push(conv(width, w, 3, 1));
            convs.push(conv(w, w, 4, 2));
            width = w;
        }
        convs.push(conv(width, 2 * width, 3, 1));
        let head = LinearConfig::new(2 * width * layout.base * layout.base, 1)
            .with_initializer(init.clone())
            .init(device);
        Self {
            convs,
            head: spectral_norm(head, device),
            slope: cfg.leaky_slope,
        }
    }

    /// Logits `[N, 1]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = images;
        for conv in &self.convs {
            x = leaky_relu(conv.forward(x), self.slope);
        }
        self.head.forward(x.flatten::<2>(1, 3))
    }
}

//! The projection cGAN's networks: DCGAN's generator with conditional batch norm, and a
//! spectrally normalised DCGAN-style discriminator with a projection head.

use anyhow::Result;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{relu, tanh};
use serde::{Deserialize, Serialize};
use zoo_core::kernels::{FastConv, FastLinear, FastNorm, leaky_relu};
use zoo_core::nn::{ConditionalBatchNorm, SpectralNorm, spectral_norm};
use zoo_dcgan::Layout;
use zoo_export::{Graph, Value, layers};

use crate::CganConfig;

fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}

/// z (and a class embedding, with `model.g_embed` > 0) → transposed conv (base×base) → [CBN,
/// ReLU, transposed conv ×2]… → tanh; the class enters through every conditional batch norm.
#[derive(Module, Debug)]
pub struct Generator {
    convs: Vec<ConvTranspose2d>,
    norms: Vec<ConditionalBatchNorm>,
    /// The class embedding concatenated to z, `[classes, g_embed]` (absent when 0).
    embed: Option<burn::module::Param<Tensor<2>>>,
}

/// How the generator's batch norms take the class (`model.g_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GNorm {
    /// Conditional batch norm: γ and β of each image's class (the paper's).
    #[default]
    Conditional,
    /// Plain batch norm (the class enters through `g_embed` only).
    Batch,
}

impl Generator {
    /// DCGAN's generator for `layout` with `classes`-way conditional batch norms.
    pub fn new(layout: &Layout, cfg: &CganConfig, classes: usize, device: &Device) -> Self {
        let n = layout.stages;
        let init = normal(cfg.init_std);
        let widths: Vec<usize> = (0..n).rev().map(|i| cfg.g_filters << i).collect();
        let mut convs = vec![
            ConvTranspose2dConfig::new([cfg.latent_dim + cfg.g_embed, widths[0]], [layout.base; 2])
                .with_bias(false)
                .with_initializer(init.clone())
                .init(device),
        ];
        let embed = (cfg.g_embed > 0).then(|| {
            burn::module::Param::from_tensor(Tensor::random(
                [classes, cfg.g_embed],
                Distribution::Normal(0.0, 1.0),
                device,
            ))
        });
        let rows = match cfg.g_norm {
            GNorm::Conditional => classes,
            GNorm::Batch => 1,
        };
        let mut norms = vec![ConditionalBatchNorm::new(
            rows,
            widths[0],
            cfg.init_std,
            device,
        )];
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
                norms.push(ConditionalBatchNorm::new(
                    classes,
                    out,
                    cfg.init_std,
                    device,
                ));
            }
        }
        Self {
            convs,
            norms,
            embed,
        }
    }

    /// Images `[N, C, H, W]` in [-1, 1] of classes `labels` `[N]` from codes `[N, latent]`.
    pub fn forward(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        let z = match &self.embed {
            Some(e) => Tensor::cat(vec![z, e.val().select(0, labels.clone())], 1),
            None => z,
        };
        let [n, l] = z.dims();
        // `model.g_norm = "batch"`: one affine row, shared by every class.
        let rows = if self.norms[0].gamma.dims()[0] == 1 {
            labels.zeros_like()
        } else {
            labels
        };
        let mut x: Tensor<4> = z.reshape([n, l, 1, 1]);
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.fast_forward(x);
            if i < last {
                x = relu(self.norms[i].forward(x, rows.clone()));
            }
        }
        tanh(x)
    }

    /// The same forward as an ONNX graph from codes `z` `[N, latent]` and `class` `[N]`
    /// (batch norms with their running statistics).
    pub fn to_onnx(&self, g: &mut Graph, z: &Value, class: &Value) -> Result<Value> {
        let z = match &self.embed {
            Some(e) => {
                let table = g.weight("g.embed", e.val())?;
                let e = layers::rows(g, &table, class, "g.embed_of_class");
                layers::concat(g, &[z, &e], 1, "g.z_and_embed")
            }
            None => z.clone(),
        };
        // `model.g_norm = "batch"`: row 0 of every affine table, as the forward takes it.
        let rows = (self.norms[0].gamma.dims()[0] != 1).then_some(class);
        let l = self.convs[0].weight.dims()[0] as i64;
        let mut x = layers::reshape(g, &z, &[0, l, 1, 1], "g.reshape");
        let last = self.convs.len() - 1;
        for (i, conv) in self.convs.iter().enumerate() {
            x = layers::conv_transpose2d(g, &x, conv, &format!("g.convs.{i}"))?;
            if i < last {
                x = layers::conditional_batch_norm(
                    g,
                    &x,
                    &self.norms[i],
                    rows,
                    &format!("g.norms.{i}"),
                )?;
                x = layers::relu(g, &x, &format!("g.relu.{i}"));
            }
        }
        Ok(layers::tanh(g, &x, "g.tanh"))
    }
}

/// How the discriminator's layers are normalised (`model.d_norm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DNorm {
    /// Spectral normalisation of every layer, the embedding included (the paper's).
    Spectral,
    /// DCGAN's batch norm after every convolution but the first; plain head and embedding
    /// (zoo's default: far better samples at CPU budgets, see the README).
    #[default]
    Batch,
}

/// One of D's convolutions.
#[derive(Module, Debug)]
pub enum DConv {
    /// Spectrally normalised.
    Spectral(SpectralNorm<Conv2d>),
    /// Plain (batch norm follows, where it does).
    Plain(Conv2d),
}

impl DConv {
    fn new(conv: Conv2d, norm: DNorm, device: &Device) -> Self {
        match norm {
            DNorm::Spectral => DConv::Spectral(spectral_norm(conv, device)),
            DNorm::Batch => DConv::Plain(conv),
        }
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            DConv::Spectral(c) => c.forward(x),
            DConv::Plain(c) => c.fast_forward(x),
        }
    }
}

/// D's linear head or class embedding.
#[derive(Module, Debug)]
pub enum DLinear {
    /// Spectrally normalised.
    Spectral(SpectralNorm<Linear>),
    /// Plain.
    Plain(Linear),
}

impl DLinear {
    fn new(linear: Linear, norm: DNorm, device: &Device) -> Self {
        match norm {
            DNorm::Spectral => DLinear::Spectral(spectral_norm(linear, device)),
            DNorm::Batch => DLinear::Plain(linear),
        }
    }
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        match self {
            DLinear::Spectral(l) => l.forward(x),
            DLinear::Plain(l) => l.fast_forward(x),
        }
    }
    /// Rows `index` of the (normalised) weight: an embedding lookup.
    pub fn rows(&self, index: Tensor<1, Int>) -> Tensor<2> {
        match self {
            DLinear::Spectral(l) => l.rows(index),
            DLinear::Plain(l) => l.weight.val().select(0, index),
        }
    }
}

/// φ: [conv ×½, (norm), LeakyReLU]… flattened; ψ: a linear head; the projection: the inner
/// product of φ(x) with a class embedding.
#[derive(Module, Debug)]
pub struct ProjectionDiscriminator {
    convs: Vec<DConv>,
    norms: Vec<BatchNorm>,
    head: DLinear,
    pub(crate) embed: DLinear,
    #[module(skip)]
    slope: f64,
    #[module(skip)]
    projection: Projection,
}

/// What the class embedding of the projection discriminator is dotted with
/// (`model.projection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// The flattened features, as ψ sees them (a per-class spatial template).
    #[default]
    Flat,
    /// The features summed over space (the paper's global sum pooling).
    Pooled,
}

impl ProjectionDiscriminator {
    /// The discriminator for `layout` and `classes` classes.
    pub fn new(layout: &Layout, cfg: &CganConfig, classes: usize, device: &Device) -> Self {
        let n = layout.stages;
        let init = normal(cfg.init_std);
        let widths: Vec<usize> = (0..n).map(|i| cfg.d_filters << i).collect();
        let mut convs = Vec::with_capacity(n);
        let mut norms = Vec::new();
        for i in 0..n {
            let input = if i == 0 {
                layout.channels
            } else {
                widths[i - 1]
            };
            let conv = Conv2dConfig::new([input, widths[i]], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .with_bias(cfg.d_norm == DNorm::Spectral)
                .with_initializer(init.clone())
                .init(device);
            convs.push(DConv::new(conv, cfg.d_norm, device));
            if cfg.d_norm == DNorm::Batch && i > 0 {
                norms.push(batch_norm(widths[i], cfg.init_std, device));
            }
        }
        let features = widths[n - 1] * layout.base * layout.base;
        let head = LinearConfig::new(features, 1)
            .with_initializer(init.clone())
            .init(device);
        let projected = match cfg.projection {
            Projection::Flat => features,
            Projection::Pooled => widths[n - 1],
        };
        let embed = LinearConfig::new(classes, projected)
            .with_bias(false)
            .with_initializer(init)
            .init(device);
        Self {
            convs,
            norms,
            head: DLinear::new(head, cfg.d_norm, device),
            embed: DLinear::new(embed, cfg.d_norm, device),
            slope: cfg.leaky_slope,
            projection: cfg.projection,
        }
    }

    /// φ(x): the flattened features `[N, F]`.
    pub fn features(&self, images: Tensor<4>) -> Tensor<2> {
        let n = images.dims()[0];
        let mut x = images;
        for (i, conv) in self.convs.iter().enumerate() {
            x = conv.forward(x);
            if i > 0
                && let Some(norm) = self.norms.get(i - 1)
            {
                x = norm.fast_forward(x);
            }
            x = leaky_relu(x, self.slope);
        }
        x.reshape([n as i32, -1])
    }

    /// The unconditional term ψ(φ(x)) and the projection ⟨embed(y), φ(x)⟩, each `[N, 1]`.
    pub fn terms(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> (Tensor<2>, Tensor<2>) {
        let n = images.dims()[0];
        let phi = self.features(images);
        let psi = self.head.forward(phi.clone());
        // The embedding is as wide as what it is dotted with: the flat features or the channels.
        let e = self.embed.rows(labels);
        let projected = match self.projection {
            Projection::Flat => phi,
            Projection::Pooled => {
                let (c, f) = (e.dims()[1], phi.dims()[1]);
                phi.reshape([n, c, f / c]).sum_dim(2).reshape([n, c])
            }
        };
        let proj = (e * projected).sum_dim(1);
        (psi, proj)
    }

    /// Logits `[N, 1]` of images of classes `labels`.
    pub fn forward(&self, images: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<2> {
        let (psi, proj) = self.terms(images, labels);
        psi + proj
    }
}

/// Batch norm with γ ~ N(1, σ), β = 0 (DCGAN's init).
fn batch_norm(features: usize, std: f64, device: &Device) -> BatchNorm {
    let mut bn = BatchNormConfig::new(features).init(device);
    let gamma = Tensor::random([features], Distribution::Normal(1.0, std), device);
    bn.gamma = burn::module::Param::from_tensor(gamma);
    bn
}

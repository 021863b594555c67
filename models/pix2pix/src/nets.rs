//! The reference pix2pix networks: the U-Net generator and the conditional PatchGAN, with
//! batch norm (the reference's pix2pix default) or instance norm, N(0, 0.02) weights, zero
//! biases and batch-norm scales N(1, 0.02).

use anyhow::Result;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, InstanceNorm, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::activation::{relu, tanh};
use serde::{Deserialize, Serialize};
use zoo_core::kernels::{FastConv, FastDropout, FastNorm, leaky_relu};
use zoo_cyclegan::nets::{conv, conv_t, instance_norm};
use zoo_export::{Graph, Value, layers};

/// Which normalisation the networks use (`--norm` of the reference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NormKind {
    /// Batch norm (the reference's pix2pix default); running statistics at inference.
    #[default]
    Batch,
    /// Instance norm without affine parameters (the reference's CycleGAN default).
    Instance,
}

impl NormKind {
    /// The reference gives convolutions a bias only under instance norm (batch norm's shift
    /// makes it redundant).
    fn conv_bias(self) -> bool {
        self == NormKind::Instance
    }

    fn layer(self, features: usize, std: f64, device: &Device) -> Norm {
        match self {
            NormKind::Batch => {
                let mut bn = BatchNormConfig::new(features).init(device);
                let gamma = Tensor::random([features], Distribution::Normal(1.0, std), device);
                bn.gamma = Param::from_tensor(gamma);
                Norm::Batch(bn)
            }
            NormKind::Instance => Norm::Instance(instance_norm(features, device)),
        }
    }
}

/// A normalisation layer of either kind.
#[derive(Module, Debug)]
pub enum Norm {
    /// Batch norm.
    Batch(BatchNorm),
    /// Instance norm.
    Instance(InstanceNorm),
}

impl Norm {
    /// Normalises `[N, C, H, W]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        match self {
            Norm::Batch(n) => n.fast_forward(x),
            Norm::Instance(n) => n.fast_forward(x),
        }
    }

    fn to_onnx(&self, g: &mut Graph, x: &Value, name: &str) -> Result<Value> {
        match self {
            Norm::Batch(n) => layers::batch_norm(g, x, n, name),
            Norm::Instance(n) => layers::instance_norm(g, x, n, name),
        }
    }
}

/// How to build the U-Net.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnetShape {
    /// Channels in and out.
    pub channels: (usize, usize),
    /// Filters of the first level (ngf).
    pub filters: usize,
    /// Down-sampling levels (the reference's `num_downs`: 8 = `unet_256`, 7 = `unet_128`).
    pub depth: usize,
    /// Decoder levels just outside the innermost with dropout 0.5 (the reference: 3 at depth 8).
    pub dropout_levels: usize,
    /// Normalisation.
    pub norm: NormKind,
    /// σ of the N(0, σ) weight init.
    pub init_std: f64,
}

impl UnetShape {
    /// Filters of level `i`'s inner side: ngf·2^min(i, 3) (the reference's widths, capped at
    /// 8·ngf).
    pub fn inner(&self, i: usize) -> usize {
        self.filters << i.min(3)
    }

    /// Whether level `i`'s decoder block has dropout.
    pub fn has_dropout(&self, i: usize) -> bool {
        let n = self.depth;
        i >= 1 && i + 1 < n && i + 1 + self.dropout_levels >= n
    }
}

/// The U-Net generator (Ronneberger et al. 2015, as pix2pix builds it): `depth` levels of
/// [LeakyReLU 0.2, conv 4×4 stride 2, norm] down to a 1×1 bottleneck at the reference depth,
/// then [ReLU, transposed conv 4×4 stride 2, norm, (dropout)] up, each level's decoder output
/// concatenated with its encoder input (after the LeakyReLU, as the reference's in-place
/// activation makes it); no norm on the outermost and innermost encoder convs, tanh out.
#[derive(Module, Debug)]
pub struct UnetGenerator {
    pub(crate) downs: Vec<Conv2d>,
    /// Norms of encoder levels 1..depth-1.
    down_norms: Vec<Norm>,
    pub(crate) ups: Vec<ConvTranspose2d>,
    /// Norms of decoder levels 1..depth.
    up_norms: Vec<Norm>,
    dropout: Dropout,
    #[module(skip)]
    dropped: Vec<bool>,
}

fn k4(a: usize, b: usize, stride: usize, bias: bool, std: f64, device: &Device) -> Conv2d {
    conv(
        Conv2dConfig::new([a, b], [4, 4])
            .with_stride([stride, stride])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_bias(bias),
        std,
        device,
    )
}

impl UnetGenerator {
    /// Builds the U-Net.
    pub fn new(shape: &UnetShape, device: &Device) -> Self {
        let (n, std) = (shape.depth, shape.init_std);
        let bias = shape.norm.conv_bias();
        let outer = |i: usize| if i == 0 { 0 } else { shape.inner(i - 1) };
        let mut downs = Vec::new();
        let mut down_norms = Vec::new();
        let mut ups = Vec::new();
        let mut up_norms = Vec::new();
        for i in 0..n {
            let input = if i == 0 { shape.channels.0 } else { outer(i) };
            downs.push(k4(input, shape.inner(i), 2, bias, std, device));
            if i > 0 && i + 1 < n {
                down_norms.push(shape.norm.layer(shape.inner(i), std, device));
            }
            // The innermost decoder sees the bottleneck; the others a concatenation.
            let up_in = if i + 1 == n { 1 } else { 2 } * shape.inner(i);
            let (up_out, up_bias) = if i == 0 {
                (shape.channels.1, true)
            } else {
                (outer(i), bias)
            };
            ups.push(conv_t(
                ConvTranspose2dConfig::new([up_in, up_out], [4, 4])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_bias(up_bias),
                std,
                device,
            ));
            if i > 0 {
                up_norms.push(shape.norm.layer(up_out, std, device));
            }
        }
        Self {
            downs,
            down_norms,
            ups,
            up_norms,
            dropout: DropoutConfig::new(0.5).init(),
            dropped: (0..n).map(|i| shape.has_dropout(i)).collect(),
        }
    }

    /// Levels (down-sampling steps).
    pub fn depth(&self) -> usize {
        self.downs.len()
    }

    /// Translates `[N, C_in, H, W]` in [-1, 1] to `[N, C_out, H, W]` in [-1, 1].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let n = self.downs.len();
        let mut skips = Vec::with_capacity(n);
        let mut h = x;
        for i in 0..n {
            if i > 0 {
                h = leaky_relu(h, 0.2);
                skips.push(h.clone());
            }
            h = self.downs[i].fast_forward(h);
            if i > 0 && i + 1 < n {
                h = self.down_norms[i - 1].forward(h);
            }
        }
        for i in (0..n).rev() {
            let u = self.ups[i].fast_forward(relu(h));
            if i == 0 {
                return tanh(u);
            }
            let mut u = self.up_norms[i - 1].forward(u);
            if self.dropped[i] {
                u = self.dropout.fast_forward(u);
            }
            h = Tensor::cat(vec![skips[i - 1].clone(), u], 1);
        }
        unreachable!("the outermost level returns")
    }

    /// The same forward as an ONNX graph (norms in inference mode, dropout off).
    pub fn to_onnx(&self, g: &mut Graph, x: &Value) -> Result<Value> {
        let n = self.downs.len();
        let mut skips = Vec::with_capacity(n);
        let mut h = x.clone();
        for i in 0..n {
            if i > 0 {
                h = layers::leaky_relu(g, &h, 0.2, &format!("g.down_leaky.{i}"));
                skips.push(h.clone());
            }
            h = layers::conv2d(g, &h, &self.downs[i], &format!("g.downs.{i}"))?;
            if i > 0 && i + 1 < n {
                h = self.down_norms[i - 1].to_onnx(g, &h, &format!("g.down_norms.{}", i - 1))?;
            }
        }
        for i in (0..n).rev() {
            let r = layers::relu(g, &h, &format!("g.up_relu.{i}"));
            let u = layers::conv_transpose2d(g, &r, &self.ups[i], &format!("g.ups.{i}"))?;
            if i == 0 {
                return Ok(layers::tanh(g, &u, "g.tanh"));
            }
            let u = self.up_norms[i - 1].to_onnx(g, &u, &format!("g.up_norms.{}", i - 1))?;
            h = layers::concat(g, &[&skips[i - 1], &u], 1, &format!("g.skip.{i}"));
        }
        unreachable!("the outermost level returns")
    }
}

/// The conditional PatchGAN (`layers = 3`: 70×70 receptive field): it judges an input and an
/// output image concatenated along the channels. C(ndf) without norm, then C(2·ndf), C(4·ndf)
/// with stride 2 and C(8·ndf) with stride 1 (widths capped at 8·ndf), each with norm, then a
/// 1-channel 4×4 convolution; LeakyReLU 0.2.
#[derive(Module, Debug)]
pub struct PatchDiscriminator {
    convs: Vec<Conv2d>,
    norms: Vec<Norm>,
}

impl PatchDiscriminator {
    /// A PatchGAN over `channels` input channels (input's plus output's).
    pub fn new(
        channels: usize,
        filters: usize,
        layers: usize,
        norm: NormKind,
        std: f64,
        device: &Device,
    ) -> Self {
        let width = |i: usize| filters << i.min(3);
        let bias = norm.conv_bias();
        let mut convs = vec![k4(channels, filters, 2, true, std, device)];
        let mut norms = Vec::new();
        for i in 1..=layers {
            let stride = if i < layers { 2 } else { 1 };
            convs.push(k4(width(i - 1), width(i), stride, bias, std, device));
            norms.push(norm.layer(width(i), std, device));
        }
        convs.push(k4(width(layers), 1, 1, true, std, device));
        Self { convs, norms }
    }

    /// One logit per patch, `[N, 1, h, w]`, for inputs and outputs concatenated.
    pub fn forward(&self, input: Tensor<4>, output: Tensor<4>) -> Tensor<4> {
        let last = self.convs.len() - 1;
        let mut x = Tensor::cat(vec![input, output], 1);
        for (i, c) in self.convs.iter().enumerate() {
            x = c.fast_forward(x);
            if i == last {
                break;
            }
            if i > 0 {
                x = self.norms[i - 1].forward(x);
            }
            x = leaky_relu(x, 0.2);
        }
        x
    }
}

//! The reference implementation's networks: the ResNet generator and the PatchGAN
//! discriminator, with instance norm (no affine), reflection padding and N(0, 0.02) weights
//! with zero biases.

use anyhow::{Result, ensure};
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::nn::{
    Dropout, DropoutConfig, Initializer, InstanceNorm, InstanceNormConfig, PaddingConfig2d,
};
use burn::prelude::*;
use burn::tensor::activation::{relu, tanh};
use zoo_core::kernels::{FastConv, FastDropout, FastNorm, leaky_relu};

use zoo_export::{Graph, Value, layers};

use crate::CycleGanConfig;

/// Reflection padding of `p` pixels on every side (`torch.nn.ReflectionPad2d(p)`).
pub fn reflect_pad(x: Tensor<4>, p: usize) -> Tensor<4> {
    zoo_core::kernels::reflect_pad(x, p)
}

/// Instance norm without affine parameters (the reference's `InstanceNorm2d` default).
pub fn instance_norm(channels: usize, device: &Device) -> InstanceNorm {
    InstanceNormConfig::new(channels)
        .with_affine(false)
        .init(device)
}

fn normal(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}

/// A convolution with N(0, σ) weights and a zero bias (the reference's `init_type=normal`).
pub fn conv(cfg: Conv2dConfig, std: f64, device: &Device) -> Conv2d {
    let mut c = cfg.with_initializer(normal(std)).init(device);
    if let Some(b) = &c.bias {
        c.bias = Some(Param::from_tensor(Tensor::zeros(b.shape(), device)));
    }
    c
}

/// A transposed convolution with N(0, σ) weights and a zero bias.
pub fn conv_t(cfg: ConvTranspose2dConfig, std: f64, device: &Device) -> ConvTranspose2d {
    let mut c = cfg.with_initializer(normal(std)).init(device);
    if let Some(b) = &c.bias {
        c.bias = Some(Param::from_tensor(Tensor::zeros(b.shape(), device)));
    }
    c
}

/// A residual block: x + [pad 1, conv 3×3, IN, ReLU, (dropout 0.5), pad 1, conv 3×3, IN](x).
#[derive(Module, Debug)]
pub struct ResBlock {
    conv1: Conv2d,
    conv2: Conv2d,
    norm1: InstanceNorm,
    norm2: InstanceNorm,
    dropout: Option<Dropout>,
}

impl ResBlock {
    fn new(dim: usize, dropout: bool, std: f64, device: &Device) -> Self {
        let c = || conv(Conv2dConfig::new([dim, dim], [3, 3]), std, device);
        Self {
            conv1: c(),
            conv2: c(),
            norm1: instance_norm(dim, device),
            norm2: instance_norm(dim, device),
            dropout: dropout.then(|| DropoutConfig::new(0.5).init()),
        }
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut h = relu(
            self.norm1
                .fast_forward(self.conv1.fast_forward(reflect_pad(x.clone(), 1))),
        );
        if let Some(d) = &self.dropout {
            h = d.fast_forward(h);
        }
        let h = self
            .norm2
            .fast_forward(self.conv2.fast_forward(reflect_pad(h, 1)));
        x + h
    }

    fn to_onnx(&self, g: &mut Graph, x: &Value, name: &str) -> Result<Value> {
        let h = layers::reflect_pad(g, x, 1, &format!("{name}.pad1"));
        let h = layers::conv2d(g, &h, &self.conv1, &format!("{name}.conv1"))?;
        let h = layers::instance_norm(g, &h, &self.norm1, &format!("{name}.norm1"))?;
        // Dropout is off in inference.
        let h = layers::relu(g, &h, &format!("{name}.relu"));
        let h = layers::reflect_pad(g, &h, 1, &format!("{name}.pad2"));
        let h = layers::conv2d(g, &h, &self.conv2, &format!("{name}.conv2"))?;
        let h = layers::instance_norm(g, &h, &self.norm2, &format!("{name}.norm2"))?;
        Ok(layers::add(g, x, &h, &format!("{name}.residual")))
    }
}

/// The ResNet generator: c7s1-ngf, d(2·ngf), d(4·ngf), N residual blocks, u(2·ngf), u(ngf),
/// c7s1-channels, tanh — with the reference's two down-sampling steps (`model.g_down`; each
/// more halves the blocks' side and doubles their width).
#[derive(Module, Debug)]
pub struct ResnetGenerator {
    head: Conv2d,
    head_norm: InstanceNorm,
    down: Vec<Conv2d>,
    down_norms: Vec<InstanceNorm>,
    blocks: Vec<ResBlock>,
    up: Vec<ConvTranspose2d>,
    up_norms: Vec<InstanceNorm>,
    tail: Conv2d,
}

impl ResnetGenerator {
    /// Builds a generator from `input`-channel to `output`-channel images.
    pub fn new(cfg: &CycleGanConfig, (input, output): (usize, usize), device: &Device) -> Self {
        let (ngf, std, down_steps) = (cfg.g_filters, cfg.init_std, cfg.g_down);
        let mut down = Vec::new();
        let mut down_norms = Vec::new();
        for i in 0..down_steps {
            let (a, b) = (ngf << i, ngf << (i + 1));
            down.push(conv(
                Conv2dConfig::new([a, b], [3, 3])
                    .with_stride([2, 2])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                std,
                device,
            ));
            down_norms.push(instance_norm(b, device));
        }
        let width = ngf << down_steps;
        let blocks = (0..cfg.g_blocks)
            .map(|_| ResBlock::new(width, cfg.dropout, std, device))
            .collect();
        let mut up = Vec::new();
        let mut up_norms = Vec::new();
        for i in (0..down_steps).rev() {
            let (a, b) = (ngf << (i + 1), ngf << i);
            up.push(conv_t(
                ConvTranspose2dConfig::new([a, b], [3, 3])
                    .with_stride([2, 2])
                    .with_padding([1, 1])
                    .with_padding_out([1, 1]),
                std,
                device,
            ));
            up_norms.push(instance_norm(b, device));
        }
        Self {
            head: conv(Conv2dConfig::new([input, ngf], [7, 7]), std, device),
            head_norm: instance_norm(ngf, device),
            down,
            down_norms,
            blocks,
            up,
            up_norms,
            tail: conv(Conv2dConfig::new([ngf, output], [7, 7]), std, device),
        }
    }

    /// Translates images `[N, C, H, W]` in [-1, 1].
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = relu(
            self.head_norm
                .fast_forward(self.head.fast_forward(reflect_pad(x, 3))),
        );
        for (c, n) in self.down.iter().zip(&self.down_norms) {
            x = relu(n.fast_forward(c.fast_forward(x)));
        }
        for b in &self.blocks {
            x = b.forward(x);
        }
        for (c, n) in self.up.iter().zip(&self.up_norms) {
            x = relu(n.fast_forward(c.fast_forward(x)));
        }
        tanh(self.tail.fast_forward(reflect_pad(x, 3)))
    }

    /// The same forward as an ONNX graph (layers named under `name`, e.g. `g` or `f`).
    pub fn to_onnx(&self, g: &mut Graph, x: &Value, name: &str) -> Result<Value> {
        let h = layers::reflect_pad(g, x, 3, &format!("{name}.head_pad"));
        let h = layers::conv2d(g, &h, &self.head, &format!("{name}.head"))?;
        let h = layers::instance_norm(g, &h, &self.head_norm, &format!("{name}.head_norm"))?;
        let mut h = layers::relu(g, &h, &format!("{name}.head_relu"));
        for (i, (c, n)) in self.down.iter().zip(&self.down_norms).enumerate() {
            h = layers::conv2d(g, &h, c, &format!("{name}.down.{i}"))?;
            h = layers::instance_norm(g, &h, n, &format!("{name}.down_norms.{i}"))?;
            h = layers::relu(g, &h, &format!("{name}.down_relu.{i}"));
        }
        for (i, b) in self.blocks.iter().enumerate() {
            h = b.to_onnx(g, &h, &format!("{name}.blocks.{i}"))?;
        }
        for (i, (c, n)) in self.up.iter().zip(&self.up_norms).enumerate() {
            h = layers::conv_transpose2d(g, &h, c, &format!("{name}.up.{i}"))?;
            h = layers::instance_norm(g, &h, n, &format!("{name}.up_norms.{i}"))?;
            h = layers::relu(g, &h, &format!("{name}.up_relu.{i}"));
        }
        let h = layers::reflect_pad(g, &h, 3, &format!("{name}.tail_pad"));
        let h = layers::conv2d(g, &h, &self.tail, &format!("{name}.tail"))?;
        Ok(layers::tanh(g, &h, &format!("{name}.tanh")))
    }
}

/// The PatchGAN discriminator (`n_layers = 3` is the 70×70 one): C(ndf) without norm, then
/// C(2·ndf), C(4·ndf) with stride 2, C(8·ndf) with stride 1 (widths capped at 8·ndf), then a
/// 1-channel 4×4 convolution; LeakyReLU 0.2, instance norm.
#[derive(Module, Debug)]
pub struct PatchDiscriminator {
    convs: Vec<Conv2d>,
    norms: Vec<InstanceNorm>,
    #[module(skip)]
    slope: f64,
}

impl PatchDiscriminator {
    /// Builds a discriminator for `channels`-channel images.
    pub fn new(cfg: &CycleGanConfig, channels: usize, device: &Device) -> Self {
        let (ndf, std, n) = (cfg.d_filters, cfg.init_std, cfg.d_layers);
        let width = |i: usize| ndf * (1 << i.min(3));
        let k4 = |a: usize, b: usize, stride: usize| {
            conv(
                Conv2dConfig::new([a, b], [4, 4])
                    .with_stride([stride, stride])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1)),
                std,
                device,
            )
        };
        let mut convs = vec![k4(channels, ndf, 2)];
        let mut norms = Vec::new();
        for i in 1..=n {
            let stride = if i < n { 2 } else { 1 };
            convs.push(k4(width(i - 1), width(i), stride));
            norms.push(instance_norm(width(i), device));
        }
        convs.push(k4(width(n), 1, 1));
        Self {
            convs,
            norms,
            slope: 0.2,
        }
    }

    /// One logit per patch: `[N, 1, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let last = self.convs.len() - 1;
        let mut x = x;
        for (i, c) in self.convs.iter().enumerate() {
            x = c.fast_forward(x);
            if i == last {
                break;
            }
            if i > 0 {
                x = self.norms[i - 1].fast_forward(x);
            }
            x = leaky_relu(x, self.slope);
        }
        x
    }

    /// Side of the patch map for `size`×`size` inputs with `layers` layers, or an error when
    /// the image is too small.
    pub fn patch_side(size: usize, layers: usize) -> Result<usize> {
        // k4 s2 p1 halves (floor); k4 s1 p1 shrinks by one.
        let mut s = size;
        for _ in 0..layers {
            ensure!(
                s >= 2,
                "data.image_size = {size} is too small for model.d_layers = {layers}"
            );
            s /= 2;
        }
        ensure!(
            s >= 3,
            "data.image_size = {size} is too small for model.d_layers = {layers}: lower \
             d_layers or raise the image size"
        );
        Ok(s - 2)
    }
}

/// CycleGAN's two generators: `g` = G: A→B (the reference's G_A) and `f` = F: B→A (G_B).
#[derive(Module, Debug)]
pub struct Generators {
    /// G: A → B.
    pub g: ResnetGenerator,
    /// F: B → A.
    pub f: ResnetGenerator,
}

/// CycleGAN's two discriminators, named as in the reference: `d_a` judges domain B (real B
/// against G(a)), `d_b` judges domain A (real A against F(b)).
#[derive(Module, Debug)]
pub struct Discriminators {
    /// D_A: real B vs G(A).
    pub d_a: PatchDiscriminator,
    /// D_B: real A vs F(B).
    pub d_b: PatchDiscriminator,
}

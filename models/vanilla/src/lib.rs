//! The 2014 GAN (Goodfellow et al., "Generative Adversarial Nets"): an MLP generator and an MLP
//! discriminator with dropout, trained on flattened images.
//!
//! Defaults follow the paper (z of dimension 100, dropout in D, the minimax value function
//! with the non-saturating generator loss it recommends in practice) and the widely used
//! PyTorch reference MLPs (G 100→256→512→1024→784 with LeakyReLU(0.2) and tanh; D
//! 784→1024→512→256→1 with LeakyReLU(0.2) and dropout 0.3; Adam 2e-4, β1 = 0.5).

use anyhow::{Result, ensure};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, LeakyRelu, LeakyReluConfig, Linear,
    LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::tanh;
use serde::{Deserialize, Serialize};
use zoo_core::config::RunConfig;
use zoo_core::game::Direction;
use zoo_core::gan::{GanModel, Losses, Prior};
use zoo_core::kernels::{FastDropout, FastLinear, leaky_relu};
use zoo_core::loss::Adversarial;
use zoo_export::{Dim, Export, Graph, OnnxModel, Value, layers};

/// `[model]` of `zoo train vanilla`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VanillaConfig {
    /// Dimension of z.
    pub latent_dim: usize,
    /// Latent prior: `normal` or `uniform` (U(-1, 1)).
    pub prior: Prior,
    /// Hidden widths of the generator, input to output.
    pub g_hidden: Vec<usize>,
    /// Batch normalisation after each hidden layer of G (as in the PyTorch-GAN reference).
    pub g_batchnorm: bool,
    /// Hidden widths of the discriminator, input to output.
    pub d_hidden: Vec<usize>,
    /// Negative slope of the LeakyReLUs.
    pub leaky_slope: f64,
    /// Dropout probability after each hidden layer of D.
    pub dropout: f64,
    /// Adversarial objective: `minimax`, `non_saturating`, `least_squares`, `hinge`, `wasserstein`.
    pub loss: Adversarial,
}

impl Default for VanillaConfig {
    fn default() -> Self {
        Self {
            latent_dim: 100,
            prior: Prior::Normal,
            g_hidden: vec![256, 512, 1024],
            g_batchnorm: true,
            d_hidden: vec![1024, 512, 256],
            leaky_slope: 0.2,
            dropout: 0.3,
            loss: Adversarial::NonSaturating,
        }
    }
}

/// MLP generator: z → hidden layers (LeakyReLU) → pixels (tanh).
#[derive(Module, Debug)]
pub struct Generator {
    layers: Vec<Linear>,
    norms: Vec<BatchNorm>,
    act: LeakyRelu,
    #[module(skip)]
    shape: [usize; 3],
    /// A linear output (2-D points) instead of tanh (pixels).
    #[module(skip)]
    linear_out: bool,
}

impl Generator {
    /// Images `[N, C, H, W]` in [-1, 1] (or 2-D points `[N, 2, 1, 1]`).
    pub fn forward(&self, z: Tensor<2>) -> Tensor<4> {
        let last = self.layers.len() - 1;
        let mut x = z;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.fast_forward(x);
            if i < last {
                if let Some(norm) = self.norms.get(i) {
                    x = norm.forward(x);
                }
                x = leaky_relu(x, self.act.negative_slope);
            }
        }
        let n = x.dims()[0];
        let [c, h, w] = self.shape;
        let x = if self.linear_out { x } else { tanh(x) };
        x.reshape([n, c, h, w])
    }

    /// The same forward as an ONNX graph from `z` (batch norm with its running statistics).
    pub fn to_onnx(&self, g: &mut Graph, z: &Value) -> Result<Value> {
        let last = self.layers.len() - 1;
        let mut x = z.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layers::linear(g, &x, layer, &format!("g.layers.{i}"))?;
            if i < last {
                if let Some(norm) = self.norms.get(i) {
                    x = layers::batch_norm(g, &x, norm, &format!("g.norms.{i}"))?;
                }
                x = layers::leaky_relu(g, &x, self.act.negative_slope, &format!("g.act.{i}"));
            }
        }
        if !self.linear_out {
            x = layers::tanh(g, &x, "g.tanh");
        }
        let [c, h, w] = self.shape;
        Ok(layers::reshape(
            g,
            &x,
            &[0, c as i64, h as i64, w as i64],
            "g.reshape",
        ))
    }
}

/// MLP discriminator: pixels → hidden layers (LeakyReLU, dropout) → one logit.
#[derive(Module, Debug)]
pub struct Discriminator {
    layers: Vec<Linear>,
    act: LeakyRelu,
    dropout: Dropout,
}

impl Discriminator {
    /// Logits `[N, 1]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let n = images.dims()[0];
        let mut x: Tensor<2> = images.reshape([n as i64, -1]);
        let last = self.layers.len() - 1;
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.fast_forward(x);
            if i < last {
                x = self
                    .dropout
                    .fast_forward(leaky_relu(x, self.act.negative_slope));
            }
        }
        x
    }
}

fn mlp(widths: &[usize], device: &Device) -> Vec<Linear> {
    widths
        .windows(2)
        .map(|w| LinearConfig::new(w[0], w[1]).init(device))
        .collect()
}

/// The vanilla GAN recipe.
#[derive(Debug, Clone)]
pub struct Vanilla {
    cfg: VanillaConfig,
    shape: [usize; 3],
    points: bool,
}

impl GanModel for Vanilla {
    type Config = VanillaConfig;
    type G = Generator;
    type D = Discriminator;

    const NAME: &'static str = "vanilla";
    const ABOUT: &'static str = "Goodfellow et al. 2014: MLP generator and discriminator (dropout), minimax / non-saturating loss";

    /// MNIST, batch 64, Adam 2e-4 / β1 0.5, and 8,000 steps: clearly recognisable digits in
    /// about nine minutes on a 2-core CPU.
    fn defaults() -> RunConfig<VanillaConfig> {
        let mut cfg = RunConfig::<VanillaConfig>::default();
        cfg.train.steps = 8000;
        // The moving average of G: the grids lose the white speckles of the raw generator.
        // With the ramp-up its half-life is at most 5% of the steps so far, capped at 693
        // steps (0.999): FD 9.82 -> 6.47 at the default 8,000 steps, and a short run does not
        // carry its first generators (2,814 steps: 21.86 against 41.46 without it; README).
        cfg.train.ema.decay = 0.999;
        cfg.train.ema.rampup = 0.05;
        cfg
    }

    fn new(cfg: &RunConfig<VanillaConfig>) -> Result<Self> {
        let m = &cfg.model;
        ensure!(
            m.latent_dim > 0,
            "model.latent_dim must be at least 1 (got 0)"
        );
        ensure!(
            m.g_hidden.iter().chain(&m.d_hidden).all(|&w| w > 0),
            "model.g_hidden and model.d_hidden must list positive widths"
        );
        ensure!(
            (0.0..1.0).contains(&m.dropout),
            "model.dropout must be in [0, 1) (got {})",
            m.dropout
        );
        ensure!(
            m.leaky_slope.is_finite() && m.leaky_slope >= 0.0,
            "model.leaky_slope must be a non-negative number (got {})",
            m.leaky_slope
        );
        m.loss.validate()?;
        // The 2-D mixtures are points: 2 inputs to D, 2 linear outputs from G.
        let points = cfg.data.dataset.is_toy();
        Ok(Self {
            cfg: m.clone(),
            shape: if points {
                [2, 1, 1]
            } else {
                [cfg.data.channels, cfg.data.image_size, cfg.data.image_size]
            },
            points,
        })
    }

    fn init_g(&self, device: &Device) -> Generator {
        let pixels: usize = self.shape.iter().product();
        let mut widths = vec![self.cfg.latent_dim];
        widths.extend(&self.cfg.g_hidden);
        widths.push(pixels);
        let norms = if self.cfg.g_batchnorm {
            self.cfg
                .g_hidden
                .iter()
                .map(|&w| BatchNormConfig::new(w).init(device))
                .collect()
        } else {
            Vec::new()
        };
        Generator {
            layers: mlp(&widths, device),
            norms,
            act: LeakyReluConfig::new()
                .with_negative_slope(self.cfg.leaky_slope)
                .init(),
            shape: self.shape,
            linear_out: self.points,
        }
    }

    fn init_d(&self, device: &Device) -> Discriminator {
        let pixels: usize = self.shape.iter().product();
        let mut widths = vec![pixels];
        widths.extend(&self.cfg.d_hidden);
        widths.push(1);
        Discriminator {
            layers: mlp(&widths, device),
            act: LeakyReluConfig::new()
                .with_negative_slope(self.cfg.leaky_slope)
                .init(),
            dropout: DropoutConfig::new(self.cfg.dropout).init(),
        }
    }

    fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.cfg.prior.sample(n, self.cfg.latent_dim, device)
    }

    fn generate(&self, g: &Generator, noise: Tensor<2>) -> Tensor<4> {
        g.forward(noise)
    }

    fn d_loss(&mut self, d: &Discriminator, real: Tensor<4>, fake: Tensor<4>) -> Losses {
        self.cfg.loss.d_losses(d.forward(real), d.forward(fake))
    }

    fn g_loss(&mut self, d: &Discriminator, fake: Tensor<4>) -> Losses {
        self.cfg.loss.g_losses(d.forward(fake))
    }
}

impl Export for Vanilla {
    fn export(&self, g: &Generator, _direction: Option<Direction>) -> Result<OnnxModel> {
        let mut graph = Graph::new();
        let z = zoo_export::noise_input(&mut graph, self.cfg.latent_dim, self.cfg.prior);
        let x = g.to_onnx(&mut graph, &z)?;
        if self.points {
            graph.output(
                x,
                "points",
                vec![Dim::Batch, Dim::Fixed(2), Dim::Fixed(1), Dim::Fixed(1)],
                "2-D points [N, 2, 1, 1] (x, y)",
            );
        } else {
            let [c, h, _] = self.shape;
            zoo_export::image_output(&mut graph, x, "image", c, h);
        }
        zoo_export::finish(
            graph,
            "vanilla",
            None,
            "MLP, LeakyReLU, batch norm in eval mode, tanh",
        )
    }
}

#[cfg(test)]
mod tests;

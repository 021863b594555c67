//! SNGAN (Miyato, Kataoka, Koyama & Yoshida, ICLR 2018, "Spectral Normalization for
//! Generative Adversarial Networks").
//!
//! Every layer of D is spectrally normalised ([`zoo_core::nn::SpectralNorm`]: W / σ(W), σ from
//! one power iteration per training forward, warm-started), which bounds D's Lipschitz
//! constant without batch norm, gradient penalties or weight clipping. The paper's recipe:
//! the hinge loss (`D: E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))]`, `G: −E[D(G(z))]`),
//! `n_dis` discriminator updates per generator update (`train.d_steps`, 5 here as in the
//! paper's ResNet setting) and Adam with lr 2e-4, β = (0, 0.9). The networks are the paper's
//! "standard CNN" ([`nets`]), sized from the image like DCGAN's (28, 32, 64 px, …); z ∈ R¹²⁸.
//!
//! The cost of the recipe: each generator step runs five discriminator updates on a D that is
//! deeper than DCGAN's (a stride-1 3×3 convolution before every stride-2 one), so one step is
//! many times DCGAN's; `--set train.d_steps=1` is the paper's cheaper setting "C" (with
//! `optim.*.beta1 = 0.5`, `beta2 = 0.999`). The README measures both.

pub mod nets;

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::config::RunConfig;
use zoo_core::game::Direction;
use zoo_core::gan::{GanModel, Losses, Prior};
use zoo_core::loss::Adversarial;
use zoo_dcgan::{Layout, checked_layout, conv_defaults};
use zoo_export::{Export, OnnxModel};

pub use nets::{Discriminator, Generator};

/// `[model]` of `zoo train sngan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SnganConfig {
    /// Dimension of z (the paper's 128).
    pub latent_dim: usize,
    /// Latent prior: `normal` or `uniform`.
    pub prior: Prior,
    /// Filters of G's last up-sampling stage (ngf); each earlier stage doubles it.
    pub g_filters: usize,
    /// Filters of D's first stage (ndf); each later stage doubles it.
    pub d_filters: usize,
    /// Standard deviation of G's N(0, σ) weight init (batch-norm γ: N(1, σ)).
    pub init_std: f64,
    /// Negative slope of D's LeakyReLUs (the paper's 0.1).
    pub leaky_slope: f64,
    /// Adversarial objective (the paper's hinge; see `zoo config vanilla` for the kinds).
    pub loss: Adversarial,
}

impl Default for SnganConfig {
    fn default() -> Self {
        Self {
            latent_dim: 128,
            prior: Prior::Normal,
            g_filters: 64,
            d_filters: 64,
            init_std: 0.02,
            leaky_slope: 0.1,
            loss: Adversarial::Hinge,
        }
    }
}

/// SNGAN.
#[derive(Debug, Clone)]
pub struct Sngan {
    cfg: SnganConfig,
    layout: Layout,
}

impl Sngan {
    /// The network layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

impl GanModel for Sngan {
    type Config = SnganConfig;
    type G = Generator;
    type D = Discriminator;
    const NAME: &'static str = "sngan";
    const ABOUT: &'static str = "Miyato et al. 2018: spectrally normalised CNN D, hinge loss, \
                                 5 D steps per G step, Adam 2e-4 (0, 0.9)";

    /// MNIST at 28×28, batch 64, 5 D steps per G step, Adam 2e-4 / β (0, 0.9).
    fn defaults() -> RunConfig<SnganConfig> {
        let mut cfg = conv_defaults::<SnganConfig>();
        cfg.train.d_steps = 5;
        for adam in [&mut cfg.optim.g, &mut cfg.optim.d] {
            adam.lr = 2e-4;
            adam.beta1 = 0.0;
            adam.beta2 = 0.9;
        }
        cfg
    }

    fn new(cfg: &RunConfig<SnganConfig>) -> Result<Self> {
        let m = &cfg.model;
        let layout = checked_layout(
            (m.latent_dim, m.g_filters, m.d_filters),
            (m.init_std, m.leaky_slope),
            &m.loss,
            &cfg.data,
        )?;
        Ok(Self {
            cfg: m.clone(),
            layout,
        })
    }

    fn init_g(&self, device: &Device) -> Generator {
        Generator::new(&self.layout, &self.cfg, device)
    }
    fn init_d(&self, device: &Device) -> Discriminator {
        Discriminator::new(&self.layout, &self.cfg, device)
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

impl Export for Sngan {
    fn export(&self, g: &Generator, _direction: Option<Direction>) -> Result<OnnxModel> {
        zoo_export::noise_to_image(
            Self::NAME,
            (self.cfg.latent_dim, self.cfg.prior),
            (self.layout.channels, self.layout.size()),
            "dense, transposed convolutions, batch norm in eval mode, ReLU, 3x3 conv, tanh",
            |graph, z| g.to_onnx(graph, z),
        )
    }
}

#[cfg(test)]
mod tests;

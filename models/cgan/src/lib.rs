//! The conditional GAN with a projection discriminator (Miyato & Koyama, ICLR 2018, "cGANs
//! with Projection Discriminator"; mimicry's cGAN-PD, StudioGAN's ProjGAN).
//!
//! D(x, y) = ψ(φ(x)) + ⟨embed(y), φ(x)⟩: φ is a DCGAN-style convolutional trunk, ψ a linear
//! head, and the class enters only through the inner product of a learned class embedding
//! with the features, which the paper derives from the log-density ratio of a conditional
//! model. The generator is DCGAN's with **conditional batch norm** (each norm's γ and β are
//! rows of a per-class table, de Vries et al. 2017) and a learned class embedding
//! concatenated to z (`model.g_embed`, as BigGAN feeds its shared embedding). Nets are sized
//! from the image like `dcgan` (28×28 from a 7×7 base in two stages, 32/64 px from 4×4).
//! Hinge loss by default; any core loss can be chosen with `model.loss`.
//!
//! D's layers are batch-normalised as in DCGAN by default; `model.d_norm = "spectral"` puts
//! spectral norm on every layer of D and on the embedding, the paper's choice. At the budgets
//! of a 2-core CPU (1,500 steps on MNIST) the batch-norm D gave FD 5.4 and 97% label
//! agreement, the spectral one FD 11.3 and 93%; without G's class embedding, the class
//! reached G too slowly through the norms alone (≤ 34% agreement). The README has the table.

pub mod nets;

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::config::RunConfig;
use zoo_core::data::classes::run_classes;
use zoo_core::gan::{ConditionalGan, Losses, Prior};
use zoo_core::loss::Adversarial;
use zoo_dcgan::{Layout, check_nets, conditional_layout, conv_defaults};

pub use nets::{DNorm, GNorm, Generator, Projection, ProjectionDiscriminator};

/// `[model]` of `zoo train cgan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CganConfig {
    /// Dimension of z.
    pub latent_dim: usize,
    /// Latent prior: `normal` or `uniform`.
    pub prior: Prior,
    /// Filters of G's last hidden layer; each earlier stage doubles it.
    pub g_filters: usize,
    /// Width of a learned class embedding concatenated to z at G's input, besides the
    /// conditional batch norms (0: the class enters through the norms only).
    pub g_embed: usize,
    /// G's norms: `conditional` (per-class γ and β, the paper's) or `batch` (shared).
    pub g_norm: GNorm,
    /// Filters of D's first layer; each later stage doubles it.
    pub d_filters: usize,
    /// Standard deviation of the N(0, σ) weight init (conditional γ: N(1, σ)).
    pub init_std: f64,
    /// Negative slope of D's LeakyReLUs.
    pub leaky_slope: f64,
    /// D's normalisation: `batch` (DCGAN's, the default) or `spectral` (every layer, the
    /// paper's).
    pub d_norm: DNorm,
    /// What the class embedding is dotted with: `flat` features or `pooled` (summed over space,
    /// the paper's).
    pub projection: Projection,
    /// Adversarial objective (see `zoo config vanilla` for the kinds).
    pub loss: Adversarial,
}

impl Default for CganConfig {
    fn default() -> Self {
        Self {
            latent_dim: 100,
            prior: Prior::Normal,
            g_filters: 64,
            g_embed: 32,
            g_norm: GNorm::Conditional,
            d_filters: 64,
            init_std: 0.02,
            leaky_slope: 0.2,
            d_norm: DNorm::Batch,
            projection: Projection::Flat,
            loss: Adversarial::Hinge,
        }
    }
}

/// The projection cGAN.
#[derive(Debug, Clone)]
pub struct Cgan {
    cfg: CganConfig,
    layout: Layout,
    classes: Vec<String>,
}

impl Cgan {
    /// The network layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }
}

impl ConditionalGan for Cgan {
    type Config = CganConfig;
    type G = Generator;
    type D = ProjectionDiscriminator;
    const NAME: &'static str = "cgan";
    const ABOUT: &'static str = "Miyato & Koyama 2018: projection discriminator, G with \
                                 conditional batch norm and a class embedding, hinge loss";

    /// MNIST at 28×28, batch 64, Adam 2e-4 / β (0.5, 0.999), 2,000 steps.
    fn defaults() -> RunConfig<CganConfig> {
        conv_defaults()
    }

    fn new(cfg: &RunConfig<CganConfig>) -> Result<Self> {
        let m = &cfg.model;
        check_nets(
            m.latent_dim,
            m.g_filters,
            m.d_filters,
            m.init_std,
            m.leaky_slope,
        )?;
        anyhow::ensure!(
            m.g_embed > 0 || m.g_norm == GNorm::Conditional,
            "model.g_norm = \"batch\" with model.g_embed = 0 would never show G the class; set \
             model.g_embed (e.g. 32) or model.g_norm = \"conditional\""
        );
        m.loss.validate()?;
        let layout = conditional_layout(Self::NAME, &cfg.data)?;
        let classes = run_classes(&cfg.data)?;
        Ok(Self {
            cfg: m.clone(),
            layout,
            classes,
        })
    }

    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn init_g(&self, device: &Device) -> Generator {
        Generator::new(&self.layout, &self.cfg, self.classes.len(), device)
    }
    fn init_d(&self, device: &Device) -> ProjectionDiscriminator {
        ProjectionDiscriminator::new(&self.layout, &self.cfg, self.classes.len(), device)
    }
    fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.cfg.prior.sample(n, self.cfg.latent_dim, device)
    }
    fn generate(&self, g: &Generator, noise: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        g.forward(noise, labels)
    }
    fn d_loss(
        &mut self,
        d: &ProjectionDiscriminator,
        real: Tensor<4>,
        fake: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> Losses {
        let r = d.forward(real, labels.clone());
        let f = d.forward(fake, labels);
        self.cfg.loss.d_losses(r, f)
    }
    fn g_loss(
        &mut self,
        d: &ProjectionDiscriminator,
        fake: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> Losses {
        self.cfg.loss.g_losses(d.forward(fake, labels))
    }
}

impl zoo_export::ExportConditional for Cgan {
    fn export_generator(&self, g: &Generator) -> Result<zoo_export::OnnxModel> {
        zoo_export::class_to_image(
            Self::NAME,
            (self.cfg.latent_dim, self.cfg.prior),
            &self.classes,
            (self.layout.channels, self.layout.size()),
            "class embedding, transposed convolutions, conditional batch norm in eval mode, tanh",
            |graph, z, class| g.to_onnx(graph, z, class),
        )
    }
}

/// `zoo train cgan`'s [`zoo_core::game::Game`].
pub type CganGame = zoo_core::gan::Conditional<Cgan>;

#[cfg(test)]
mod tests;

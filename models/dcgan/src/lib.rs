//! DCGAN (Radford, Metz & Chintala 2016), and the convolutional generator/discriminator pair
//! that other models (LSGAN) reuse through [`ConvGan`].
//!
//! The paper's rules: strided convolutions in D and transposed convolutions in G, no pooling;
//! batch norm in both except G's output and D's input layers; ReLU in G with a tanh output;
//! LeakyReLU(0.2) in D; no fully connected hidden layers; weights from N(0, 0.02) and batch-norm
//! γ from N(1, 0.02); Adam β1 = 0.5 with D at the paper's 2e-4 and G at 4e-4 (zoo's measured
//! default, see [`G_LR`]); the non-saturating loss.
//!
//! The networks are built from the image size: `size = base · 2ⁿ` with a base of 4 to 7, so
//! 64×64 is the paper's net (4×4 base, four stages), 32×32 has three stages from 4×4, and
//! MNIST's 28×28 two stages from a 7×7 base (no padding or resizing of the data).

pub mod nets;

use std::marker::PhantomData;

use anyhow::Result;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::config::RunConfig;
use zoo_core::game::Direction;
use zoo_core::gan::{GanModel, Losses, Prior};
use zoo_core::loss::Adversarial;
use zoo_export::{Export, OnnxModel};

pub use nets::{Discriminator, Generator, Layout};

/// `[model]` of `zoo train dcgan` (and `lsgan`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DcganConfig {
    /// Dimension of z.
    pub latent_dim: usize,
    /// Latent prior: `normal` or `uniform`.
    pub prior: Prior,
    /// Filters of G's last hidden layer (ngf); each earlier stage doubles it. Unset: 128 for
    /// images of 28 px or less (MNIST's two-stage net, whose generator is otherwise what limits
    /// the game per step: measured in the README), 64 above (the paper's 64-px net).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub g_filters: Option<usize>,
    /// Filters of D's first layer (ndf); each later stage doubles it.
    pub d_filters: usize,
    /// Standard deviation of the N(0, σ) weight init (batch-norm γ: N(1, σ)).
    pub init_std: f64,
    /// Negative slope of D's LeakyReLUs.
    pub leaky_slope: f64,
    /// Adversarial objective (see `zoo config vanilla` for the kinds).
    pub loss: Adversarial,
    /// D sees each step's real and fake images as one batch (its batch norm normalises them
    /// together, in D's update and in G's) instead of a batch of each.
    pub d_joint_batch: bool,
}

impl Default for DcganConfig {
    fn default() -> Self {
        Self {
            latent_dim: 100,
            prior: Prior::Normal,
            g_filters: None,
            d_filters: 64,
            init_std: 0.02,
            leaky_slope: 0.2,
            loss: Adversarial::NonSaturating,
            d_joint_batch: false,
        }
    }
}

impl DcganConfig {
    /// G's filters at this image size: `g_filters`, or where unset 128 for images of 28 px or
    /// less and 64 above.
    pub fn g_filters_at(&self, image_size: usize) -> usize {
        self.g_filters.unwrap_or(if image_size <= SMALL_IMAGE {
            SMALL_IMAGE_G_FILTERS
        } else {
            64
        })
    }
}

/// The largest image side whose default generator is [`SMALL_IMAGE_G_FILTERS`] wide.
pub const SMALL_IMAGE: usize = 28;

/// G's default filters for images of [`SMALL_IMAGE`] px or less: twice the paper's 64 (at
/// 1,876 steps on MNIST, three seeds, FD 11.75 → 10.34, for 1.8× the GEMM work and 1.4–1.6× the
/// step's time).
pub const SMALL_IMAGE_G_FILTERS: usize = 128;

/// A convolutional GAN: DCGAN's networks with any adversarial loss. [`Dcgan`] and LSGAN are
/// thin named wrappers around it.
#[derive(Debug, Clone)]
pub struct ConvGan {
    cfg: DcganConfig,
    layout: Layout,
}

impl ConvGan {
    /// Checks the model section against the data shape and derives the layout.
    pub fn new(cfg: &RunConfig<DcganConfig>) -> Result<Self> {
        let m = &cfg.model;
        let layout = checked_layout(
            (
                m.latent_dim,
                m.g_filters_at(cfg.data.image_size),
                m.d_filters,
            ),
            (m.init_std, m.leaky_slope),
            &m.loss,
            &cfg.data,
        )?;
        Ok(Self {
            cfg: m.clone(),
            layout,
        })
    }

    /// The network layout.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The model section.
    pub fn config(&self) -> &DcganConfig {
        &self.cfg
    }

    /// A fresh generator.
    pub fn init_g(&self, device: &Device) -> Generator {
        Generator::new(&self.layout, &self.cfg, device)
    }

    /// A fresh discriminator.
    pub fn init_d(&self, device: &Device) -> Discriminator {
        Discriminator::new(&self.layout, &self.cfg, device)
    }

    /// Latent codes.
    pub fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.cfg.prior.sample(n, self.cfg.latent_dim, device)
    }

    /// D's logits on a real and a fake batch: two forwards, or one of the two batches joined
    /// (`d_joint_batch`), split back into the real half and the fake half.
    pub fn d_logits(
        &self,
        d: &Discriminator,
        real: Tensor<4>,
        fake: Tensor<4>,
    ) -> (Tensor<2>, Tensor<2>) {
        if !self.cfg.d_joint_batch {
            return (d.forward(real), d.forward(fake));
        }
        let (n, m) = (real.dims()[0], fake.dims()[0]);
        let logits = d.forward(Tensor::cat(vec![real, fake], 0));
        (logits.clone().narrow(0, 0, n), logits.narrow(0, n, m))
    }

    /// The discriminator's loss.
    pub fn d_loss(&self, d: &Discriminator, real: Tensor<4>, fake: Tensor<4>) -> Losses {
        let (real, fake) = self.d_logits(d, real, fake);
        self.cfg.loss.d_losses(real, fake)
    }

    /// The generator's loss (a fresh D forward of the fakes alone).
    pub fn g_loss(&self, d: &Discriminator, fake: Tensor<4>) -> Losses {
        self.cfg.loss.g_losses(d.forward(fake))
    }

    /// The generator's loss in training: with `d_joint_batch`, D sees the step's real batch
    /// beside the fakes, as in its own update.
    pub fn g_loss_beside_real(
        &self,
        d: &Discriminator,
        real: Tensor<4>,
        fake: Tensor<4>,
    ) -> Losses {
        if !self.cfg.d_joint_batch {
            return self.g_loss(d, fake);
        }
        self.cfg.loss.g_losses(self.d_logits(d, real, fake).1)
    }

    /// The defaults of DCGAN and LSGAN: MNIST at 28×28, batch 64, Adam β (0.5, 0.999) with
    /// D at the paper's 2e-4 and G at twice that, 4e-4 (measured in the README: at 1,876 steps,
    /// seed 1, FD −25% for DCGAN and −38% for LSGAN, at the same cost per step).
    pub fn defaults(loss: Adversarial) -> RunConfig<DcganConfig> {
        let mut cfg = conv_defaults::<DcganConfig>();
        cfg.model.loss = loss;
        cfg.optim.g.lr = G_LR;
        cfg
    }
}

/// G's learning rate in [`ConvGan::defaults`]: twice D's.
pub const G_LR: f64 = 4e-4;

/// The run defaults of every model on DCGAN's layout (dcgan, lsgan, cgan, acgan): MNIST at
/// 28×28, batch 64, Adam 2e-4 / β (0.5, 0.999), 2,000 steps, a grid every 200.
pub fn conv_defaults<C: Default>() -> RunConfig<C> {
    let mut cfg = RunConfig::<C>::default();
    cfg.train.steps = 2000;
    cfg.train.sample_every = 200;
    cfg
}

/// The checks of the `[model]` keys every model on DCGAN's layout has, each message naming
/// its key.
pub fn check_nets(
    latent_dim: usize,
    g_filters: usize,
    d_filters: usize,
    init_std: f64,
    leaky_slope: f64,
) -> Result<()> {
    anyhow::ensure!(
        latent_dim > 0,
        "model.latent_dim must be at least 1 (got 0)"
    );
    anyhow::ensure!(
        g_filters > 0 && d_filters > 0,
        "model.g_filters and model.d_filters must be at least 1"
    );
    anyhow::ensure!(
        init_std.is_finite() && init_std > 0.0,
        "model.init_std must be a positive number (got {init_std})"
    );
    anyhow::ensure!(
        leaky_slope.is_finite() && leaky_slope >= 0.0,
        "model.leaky_slope must be a non-negative number (got {leaky_slope})"
    );
    Ok(())
}

/// The checks of an unconditional model on DCGAN's layout ([`check_nets`] on
/// `(latent_dim, g_filters, d_filters)` and `(init_std, leaky_slope)`, the loss, images rather
/// than 2-D points) and the layout of its images.
pub fn checked_layout(
    (latent_dim, g_filters, d_filters): (usize, usize, usize),
    (init_std, leaky_slope): (f64, f64),
    loss: &Adversarial,
    data: &zoo_core::config::DataConfig,
) -> Result<Layout> {
    check_nets(latent_dim, g_filters, d_filters, init_std, leaky_slope)?;
    loss.validate()?;
    anyhow::ensure!(
        !data.dataset.is_toy(),
        "data.dataset = \"{}\" is 2-D points, not images; train it with `zoo train vanilla`",
        data.dataset.name()
    );
    Layout::new(data.image_size, data.channels)
}

/// The layout of a conditional model's images, refusing the unlabelled 2-D mixtures.
pub fn conditional_layout(name: &str, data: &zoo_core::config::DataConfig) -> Result<Layout> {
    anyhow::ensure!(
        !data.dataset.is_toy(),
        "data.dataset = \"{}\" is 2-D points without classes; {name} trains on mnist, \
         fashion-mnist or a folder with one sub-folder per class",
        data.dataset.name()
    );
    Layout::new(data.image_size, data.channels)
}

/// What distinguishes one named convolutional model from another: its name, description
/// and default loss. DCGAN and LSGAN are flavours of [`ConvModel`].
pub trait Flavor: 'static {
    /// Registry name.
    const NAME: &'static str;
    /// One line for `zoo list`.
    const ABOUT: &'static str;
    /// The default adversarial objective.
    const LOSS: Adversarial;
}

/// A named convolutional GAN: [`ConvGan`] under the flavour `F`.
#[derive(Debug, Clone)]
pub struct ConvModel<F> {
    inner: ConvGan,
    flavor: PhantomData<fn() -> F>,
}

impl<F> ConvModel<F> {
    /// The shared convolutional GAN.
    pub fn inner(&self) -> &ConvGan {
        &self.inner
    }
}

impl<F: Flavor> GanModel for ConvModel<F> {
    type Config = DcganConfig;
    type G = Generator;
    type D = Discriminator;
    const NAME: &'static str = F::NAME;
    const ABOUT: &'static str = F::ABOUT;

    fn defaults() -> RunConfig<DcganConfig> {
        ConvGan::defaults(F::LOSS)
    }
    fn unset_notes(cfg: &RunConfig<DcganConfig>) -> Vec<String> {
        let size = cfg.data.image_size;
        match cfg.model.g_filters {
            Some(_) => Vec::new(),
            None => vec![format!(
                "# g_filters = {}    # unset: {SMALL_IMAGE_G_FILTERS} for images of \
                 {SMALL_IMAGE} px or less, 64 above (data.image_size = {size})",
                cfg.model.g_filters_at(size)
            )],
        }
    }
    fn new(cfg: &RunConfig<DcganConfig>) -> Result<Self> {
        Ok(Self {
            inner: ConvGan::new(cfg)?,
            flavor: PhantomData,
        })
    }
    fn init_g(&self, device: &Device) -> Generator {
        self.inner.init_g(device)
    }
    fn init_d(&self, device: &Device) -> Discriminator {
        self.inner.init_d(device)
    }
    fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.inner.noise(n, device)
    }
    fn generate(&self, g: &Generator, noise: Tensor<2>) -> Tensor<4> {
        g.forward(noise)
    }
    fn d_loss(&mut self, d: &Discriminator, real: Tensor<4>, fake: Tensor<4>) -> Losses {
        self.inner.d_loss(d, real, fake)
    }
    fn g_loss(&mut self, d: &Discriminator, fake: Tensor<4>) -> Losses {
        self.inner.g_loss(d, fake)
    }
    fn g_loss_beside_real(
        &mut self,
        d: &Discriminator,
        real: Tensor<4>,
        fake: Tensor<4>,
    ) -> Losses {
        self.inner.g_loss_beside_real(d, real, fake)
    }
}

impl<F: Flavor> Export for ConvModel<F> {
    fn export(&self, g: &Generator, _direction: Option<Direction>) -> Result<OnnxModel> {
        let cfg = self.inner.config();
        let layout = self.inner.layout();
        zoo_export::noise_to_image(
            F::NAME,
            (cfg.latent_dim, cfg.prior),
            (layout.channels, layout.size()),
            "transposed convolutions, batch norm in eval mode, ReLU, tanh",
            |graph, z| g.to_onnx(graph, z),
        )
    }
}

/// DCGAN's flavour: the non-saturating loss.
#[derive(Debug, Clone, Copy)]
pub struct DcganFlavor;

impl Flavor for DcganFlavor {
    const NAME: &'static str = "dcgan";
    const ABOUT: &'static str =
        "Radford et al. 2016: strided-conv D, transposed-conv G, batch norm, non-saturating loss";
    const LOSS: Adversarial = Adversarial::NonSaturating;
}

/// DCGAN.
pub type Dcgan = ConvModel<DcganFlavor>;

#[cfg(test)]
mod tests;

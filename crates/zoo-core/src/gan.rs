//! The plugin trait a model crate implements.
//!
//! The split follows mimicry's `Trainer` and CycleGAN's `BaseModel` hooks: the **model** owns
//! its networks' construction, its noise, and its loss recipe (plus per-model tricks such as an
//! image pool or weight clipping, in [`GanModel::after_d_step`]); the **engine**
//! ([`crate::engine`]) owns the networks once built, both optimizers, the schedule, the RNG,
//! logging, sample grids and checkpoints.
//!
//! # Contract
//! - [`GanModel::d_loss`] receives fakes that are already detached; it must not call backward.
//! - [`GanModel::g_loss`] receives fakes attached to G's graph and must run a *fresh*
//!   discriminator forward on them (burn cannot run backward twice through one graph).
//! - Loss parts are `(name, scalar tensor)` pairs, logged as metrics.csv columns. A D loss
//!   reports `d_real` and `d_fake` (mean D(x), mean D(G(z))), which the engine shows live.
//! - All randomness goes through the device RNG, which the engine seeds per step, so a run
//!   is reproducible and resumable bit for bit on the CPU.

use std::fmt::{Debug, Display};

use anyhow::Result;
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::RunConfig;

/// A loss to minimise and the named terms to log.
pub struct Losses {
    /// The scalar that backward runs through.
    pub total: Tensor<1>,
    /// Named scalars to log (detached by the model or not; the engine only reads them).
    pub parts: Vec<(&'static str, Tensor<1>)>,
}

impl Losses {
    /// A loss with no extra parts.
    pub fn new(total: Tensor<1>) -> Self {
        Self {
            total,
            parts: Vec::new(),
        }
    }

    /// Adds a named part.
    pub fn with(mut self, name: &'static str, value: Tensor<1>) -> Self {
        self.parts.push((name, value.detach()));
        self
    }
}

/// A GAN family member, driven by the generic engine.
pub trait GanModel: Sized + 'static {
    /// The `[model]` section of the config.
    type Config: Serialize + DeserializeOwned + Default + Clone + Debug;
    /// The generator (a bundle module when a model has several, e.g. CycleGAN's G and F).
    type G: Module + Clone + Display;
    /// The discriminator (or a bundle of discriminators).
    type D: Module + Clone + Display;

    /// Registry name (`zoo train <NAME>`).
    const NAME: &'static str;
    /// One line for `zoo list`.
    const ABOUT: &'static str;

    /// The full default run config: the model's section plus its preferred data, training
    /// and optimizer settings.
    fn defaults() -> RunConfig<Self::Config> {
        RunConfig::default()
    }

    /// Builds the model recipe from a resolved config, rejecting invalid values with a
    /// message that names the key.
    fn new(cfg: &RunConfig<Self::Config>) -> Result<Self>;

    /// A freshly initialised generator.
    fn init_g(&self, device: &Device) -> Self::G;
    /// A freshly initialised discriminator.
    fn init_d(&self, device: &Device) -> Self::D;

    /// A batch of `n` latent codes (the batch size comes from the caller, never the config).
    fn noise(&self, n: usize, device: &Device) -> Tensor<2>;
    /// Images `[N, C, H, W]` in [-1, 1] from latent codes.
    fn generate(&self, g: &Self::G, noise: Tensor<2>) -> Tensor<4>;

    /// The discriminator's loss on a real batch and a (detached) fake batch.
    fn d_loss(&mut self, d: &Self::D, real: Tensor<4>, fake: Tensor<4>) -> Losses;
    /// The generator's loss on fakes attached to its graph.
    fn g_loss(&mut self, d: &Self::D, fake: Tensor<4>) -> Losses;

    /// Hook after each discriminator update (e.g. WGAN weight clipping).
    fn after_d_step(&mut self, d: Self::D) -> Self::D {
        d
    }
}

/// The latent prior p(z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prior {
    /// z ~ N(0, I).
    #[default]
    Normal,
    /// z ~ U(-1, 1) per coordinate (the 2014 paper's choice).
    Uniform,
}

impl Prior {
    /// `n` codes of dimension `dim`.
    pub fn sample(self, n: usize, dim: usize, device: &Device) -> Tensor<2> {
        let dist = match self {
            Prior::Normal => burn::tensor::Distribution::Normal(0.0, 1.0),
            Prior::Uniform => burn::tensor::Distribution::Uniform(-1.0, 1.0),
        };
        Tensor::random([n, dim], dist, device)
    }
}

/// Every float parameter of a module, flattened, in visiting order (for tests and
/// reproducibility checks: two modules are equal when these are bit-identical).
pub fn param_values<M: Module>(module: &M) -> Vec<Vec<f32>> {
    struct Collect(Vec<Vec<f32>>);
    impl burn::module::ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let v = param
                .val()
                .into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .unwrap_or_default();
            self.0.push(v);
        }
    }
    let mut c = Collect(Vec::new());
    module.visit(&mut c);
    c.0
}

/// Trainable parameters of a module built on an autodiff device (batch norm's running
/// statistics, which [`Module::num_params`] also counts, are excluded).
pub fn trainable_params<M: Module>(module: &M) -> usize {
    struct Count(usize);
    impl burn::module::ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if param.val().is_require_grad() {
                self.0 += param.lazy_shape().num_elements();
            }
        }
    }
    let mut c = Count(0);
    module.visit(&mut c);
    c.0
}

//! The two-player game the engine drives.
//!
//! [`Game`] is what [`crate::engine`] needs from a model: networks, data and batches, the
//! fakes of one step, each player's loss, the fixed inputs of the sample grids, and any
//! extra state to checkpoint. Noise-to-image GANs implement the simpler
//! [`GanModel`](crate::gan::GanModel) and get a `Game` from the blanket impl below;
//! image-to-image models (CycleGAN) implement `Game` directly.
//!
//! # One step
//! For each of `train.d_steps` discriminator updates: `batch` → `fakes` (attached to G's graph)
//! → `d_loss` (which must detach the fakes) → D update → `after_d_step`. Then `g_loss` on the
//! last batch and fakes, through a *fresh* D forward → G update. The device RNG is reseeded
//! from `(seed, step)` before the step, and `batch` must be a pure function of its index and
//! the seed, so runs are reproducible and resumable bit for bit on the CPU.

use std::fmt::{Debug, Display};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Result, bail, ensure};
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::RunConfig;
use crate::data::{Batches, ImageSet, load_training_set, mix};
use crate::gan::{GanModel, Losses};

/// Stream id of the fixed noise behind the sample grids.
const FIXED_NOISE_STREAM: u64 = 0xF1CED;

/// Which way an image-to-image model translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Domain A to domain B (CycleGAN's G).
    AToB,
    /// Domain B to domain A (CycleGAN's F).
    BToA,
}

impl Direction {
    /// `a2b` or `b2a`.
    pub fn name(self) -> &'static str {
        match self {
            Direction::AToB => "a2b",
            Direction::BToA => "b2a",
        }
    }
}

/// A model the engine can train: see the module docs for the order of calls.
pub trait Game: Sized + 'static {
    /// The `[model]` section of the config.
    type Config: Serialize + DeserializeOwned + Default + Clone + Debug;
    /// The generator (or a bundle of generators), checkpointed as `generator.bpk`.
    type G: Module + Clone + Display;
    /// The discriminator (or a bundle), checkpointed as `discriminator.bpk`.
    type D: Module + Clone + Display;
    /// The training data with its batching state.
    type Data;
    /// The real inputs of one update.
    type Batch;
    /// The generator's outputs for one batch, attached to its graph.
    type Fakes;
    /// The fixed inputs behind every sample grid of a run.
    type Probe;

    /// Registry name (`zoo train <NAME>`).
    const NAME: &'static str;
    /// One line for `zoo list`.
    const ABOUT: &'static str;
    /// Whether the model translates images (`zoo translate`), i.e. implements
    /// [`Game::translate`].
    const TRANSLATES: bool = false;

    /// The full default run config.
    fn defaults() -> RunConfig<Self::Config>;
    /// Builds the model from a resolved config, rejecting invalid values with a message that
    /// names the key.
    fn new(cfg: &RunConfig<Self::Config>) -> Result<Self>;
    /// A freshly initialised generator (bundle).
    fn init_g(&self, device: &Device) -> Self::G;
    /// A freshly initialised discriminator (bundle).
    fn init_d(&self, device: &Device) -> Self::D;

    /// Loads the training data the config names.
    fn load_data(&self, cfg: &RunConfig<Self::Config>) -> Result<Self::Data>;
    /// Random data of the configured shape (for `zoo bench`).
    fn synthetic_data(&self, cfg: &RunConfig<Self::Config>) -> Result<Self::Data>;
    /// One line describing the data, for the log.
    fn describe(&self, data: &Self::Data) -> String;
    /// Batches in one pass over the data.
    fn per_epoch(&self, data: &Self::Data) -> u64;
    /// Batch number `index`, counting from the start of training: a pure function of the index
    /// and the run's seed.
    fn batch(&self, data: &mut Self::Data, index: u64, device: &Device) -> Self::Batch;

    /// The generator's outputs for `batch`, attached to its graph.
    fn fakes(&mut self, g: &Self::G, batch: &Self::Batch) -> Self::Fakes;
    /// The discriminator's loss; the fakes must be detached here.
    fn d_loss(&mut self, d: &Self::D, batch: &Self::Batch, fakes: &Self::Fakes) -> Losses;
    /// Hook after each discriminator update (e.g. WGAN weight clipping).
    fn after_d_step(&mut self, d: Self::D) -> Self::D {
        d
    }
    /// The generator's loss, through a fresh discriminator forward on the attached fakes.
    fn g_loss(
        &mut self,
        g: &Self::G,
        d: &Self::D,
        batch: Self::Batch,
        fakes: Self::Fakes,
    ) -> Losses;

    /// The fixed inputs of the sample grids (`n` = `train.grid_samples`).
    fn probe(&self, data: &Self::Data, seed: u64, n: usize, device: &Device) -> Self::Probe;
    /// A sample grid from an inference-mode generator: the images and how many per row.
    fn grid(&self, g: &Self::G, probe: &Self::Probe) -> (Tensor<4>, usize);

    /// Trainable parameters of each network inside the generator and discriminator bundles,
    /// for `zoo info` (empty when each bundle is one network).
    fn networks(&self, _g: &Self::G, _d: &Self::D) -> Vec<(&'static str, usize)> {
        Vec::new()
    }

    /// Writes model state beyond the networks and optimizers (e.g. an image pool) into a
    /// checkpoint folder.
    fn save_state(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
    /// Restores what [`Game::save_state`] wrote.
    fn load_state(&mut self, _dir: &Path, _device: &Device) -> Result<()> {
        Ok(())
    }

    /// The latent codes of `zoo sample`, or an error when the model does not sample from noise.
    fn sample_noise(&self, _n: usize, _device: &Device) -> Result<Tensor<2>> {
        bail!(
            "{} translates images rather than sampling noise; use `zoo translate`",
            Self::NAME
        )
    }
    /// Images from latent codes (inference-mode generator).
    fn sample(&self, _g: &Self::G, _noise: Tensor<2>) -> Result<Tensor<4>> {
        bail!("{} does not sample from noise", Self::NAME)
    }
    /// `zoo eval` of an image-to-image model: translation metrics on held-out images.
    fn eval_translation(
        &self,
        _g: &Self::G,
        _cfg: &RunConfig<Self::Config>,
        _n: usize,
        _device: &Device,
    ) -> Result<crate::eval::TranslationEval> {
        bail!("{} does not translate images", Self::NAME)
    }

    /// `zoo translate`: the translations of `images` and their reconstructions (translated
    /// back), or an error when the model does not translate.
    fn translate(
        &self,
        _g: &Self::G,
        _direction: Direction,
        _images: Tensor<4>,
    ) -> Result<(Tensor<4>, Tensor<4>)> {
        bail!("{} does not translate images", Self::NAME)
    }
}

/// Noise-to-image GANs: real batches from one image set, fakes from fresh noise of the batch's
/// size, grids from a fixed noise batch.
impl<M: GanModel> Game for M {
    type Config = M::Config;
    type G = M::G;
    type D = M::D;
    type Data = Batches;
    type Batch = Tensor<4>;
    type Fakes = Tensor<4>;
    type Probe = Tensor<2>;
    const NAME: &'static str = <M as GanModel>::NAME;
    const ABOUT: &'static str = <M as GanModel>::ABOUT;

    fn defaults() -> RunConfig<M::Config> {
        <M as GanModel>::defaults()
    }
    fn new(cfg: &RunConfig<M::Config>) -> Result<Self> {
        <M as GanModel>::new(cfg)
    }
    fn init_g(&self, device: &Device) -> M::G {
        <M as GanModel>::init_g(self, device)
    }
    fn init_d(&self, device: &Device) -> M::D {
        <M as GanModel>::init_d(self, device)
    }

    fn load_data(&self, cfg: &RunConfig<M::Config>) -> Result<Batches> {
        ensure!(
            cfg.data.domains.is_empty(),
            "{} learns one image set; --domains (data.domains) is for image-to-image models \
             such as cyclegan",
            <M as GanModel>::NAME
        );
        let set = load_training_set(&cfg.data)?;
        Batches::new(Arc::new(set), cfg.train.batch_size, cfg.train.seed)
    }
    fn synthetic_data(&self, cfg: &RunConfig<M::Config>) -> Result<Batches> {
        let set = ImageSet::synthetic(
            cfg.train.batch_size * cfg.train.d_steps * 4,
            cfg.data.channels,
            cfg.data.image_size,
        );
        Batches::new(Arc::new(set), cfg.train.batch_size, cfg.train.seed)
    }
    fn describe(&self, data: &Batches) -> String {
        let s = data.set();
        format!("{} images of {}x{}x{}", s.len, s.channels, s.size, s.size)
    }
    fn per_epoch(&self, data: &Batches) -> u64 {
        data.per_epoch()
    }
    fn batch(&self, data: &mut Batches, index: u64, device: &Device) -> Tensor<4> {
        data.batch(index, device)
    }

    fn fakes(&mut self, g: &M::G, real: &Tensor<4>) -> Tensor<4> {
        let n = real.dims()[0];
        self.generate(g, self.noise(n, &real.device()))
    }
    fn d_loss(&mut self, d: &M::D, real: &Tensor<4>, fake: &Tensor<4>) -> Losses {
        <M as GanModel>::d_loss(self, d, real.clone(), fake.clone().detach())
    }
    fn after_d_step(&mut self, d: M::D) -> M::D {
        <M as GanModel>::after_d_step(self, d)
    }
    fn g_loss(&mut self, _g: &M::G, d: &M::D, _real: Tensor<4>, fake: Tensor<4>) -> Losses {
        <M as GanModel>::g_loss(self, d, fake)
    }

    fn probe(&self, _data: &Batches, seed: u64, n: usize, device: &Device) -> Tensor<2> {
        device.seed(mix(seed, FIXED_NOISE_STREAM));
        self.noise(n, device)
    }
    fn grid(&self, g: &M::G, probe: &Tensor<2>) -> (Tensor<4>, usize) {
        let n = probe.dims()[0];
        let per_row = ((n as f64).sqrt().ceil() as usize).max(1);
        (self.generate(g, probe.clone()), per_row)
    }

    fn sample_noise(&self, n: usize, device: &Device) -> Result<Tensor<2>> {
        Ok(self.noise(n, device))
    }
    fn sample(&self, g: &M::G, noise: Tensor<2>) -> Result<Tensor<4>> {
        Ok(self.generate(g, noise))
    }
}

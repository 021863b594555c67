//! The two-player game the engine drives, and what a trained generator can be used for.
//!
//! [`Game`] is what the engine needs from a model: networks, data and batches, the fakes of
//! one step, each player's loss, the fixed inputs of the sample grids, and any extra state to
//! checkpoint. Noise-to-image GANs implement the simpler [`GanModel`](crate::gan::GanModel)
//! and get a `Game` from its blanket impl; image-to-image models (CycleGAN) implement `Game`
//! directly.
//!
//! # One step
//! For each of `train.d_steps` discriminator updates: `batch` → `fakes` (attached to G's graph)
//! → `d_loss` (which must detach the fakes) → D update → `after_d_step`. Then `g_loss` on the
//! last batch and fakes, through a *fresh* D forward → G update. The device RNG is reseeded
//! from `(seed, step)` before the step, and `batch` must be a pure function of its index and
//! the seed, so runs are reproducible and resumable bit for bit on the CPU.
//!
//! # Capabilities
//! What a trained generator can do is part of the model's type, not discovered when a command
//! fails: [`Game::Role`] is [`NoiseToImage`] (the model implements [`Sample`]: `zoo sample`,
//! image metrics), [`ClassToImage`] (it implements [`SampleClass`] too: `zoo sample --class`)
//! or [`ImageToImage`] (it implements [`Translate`]: `zoo translate`, translation metrics). The
//! compiler checks that the role's trait is implemented; `zoo list` prints
//! [`Role::CAPABILITIES`].

use std::fmt::{Debug, Display};
use std::path::{Path, PathBuf};

use anyhow::Result;
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::augment::DiffAugment;
use crate::config::RunConfig;
use crate::data::ImageSet;
use crate::data::paired::PairedSet;
use crate::loss::Losses;

/// Which way an image-to-image model translates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Direction {
    /// Domain A to domain B (CycleGAN's G).
    #[serde(rename = "a2b")]
    AToB,
    /// Domain B to domain A (CycleGAN's F).
    #[serde(rename = "b2a")]
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

    /// The other way.
    pub fn reverse(self) -> Self {
        match self {
            Direction::AToB => Direction::BToA,
            Direction::BToA => Direction::AToB,
        }
    }
}

/// Images per row of a square-ish grid of `n` (⌈√n⌉, at least 1).
pub fn grid_columns(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(1)
}

/// A grid with one row per class: `(rows, per_row)` for at most `n` images of `k` classes
/// (every class a row while `n ≥ k`; rows of `n / rows` images, at least one).
pub fn class_rows(n: usize, k: usize) -> (usize, usize) {
    let rows = k.clamp(1, n.max(1));
    (rows, (n / rows).max(1))
}

/// The labels of a [`class_rows`] grid: class `r` for each of the `per_row` images of row `r`.
pub fn class_row_labels(rows: usize, per_row: usize) -> Vec<i64> {
    (0..rows * per_row).map(|i| (i / per_row) as i64).collect()
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
    /// What the trained generator is for: [`NoiseToImage`], [`ClassToImage`] or
    /// [`ImageToImage`] (see the module docs).
    type Role: Role<Self>;

    /// Registry name (`zoo train <NAME>`).
    const NAME: &'static str;
    /// One line for `zoo list`.
    const ABOUT: &'static str;

    /// The full default run config.
    fn defaults() -> RunConfig<Self::Config>;
    /// Comment lines `zoo config` shows under `[model]` for keys left unset by default (an
    /// `Option` the model resolves from other keys, which TOML cannot write as a value): each
    /// the key set to what it resolves to in `cfg`, commented out, with the rule. None by
    /// default.
    fn unset_notes(_cfg: &RunConfig<Self::Config>) -> Vec<String> {
        Vec::new()
    }
    /// Builds the model from a resolved config, rejecting invalid values with a message that
    /// names the key.
    fn new(cfg: &RunConfig<Self::Config>) -> Result<Self>;
    /// A freshly initialised generator (bundle).
    fn init_g(&self, device: &Device) -> Self::G;
    /// A freshly initialised discriminator (bundle).
    fn init_d(&self, device: &Device) -> Self::D;

    /// The config as the run records it in `config.toml`: with what the model took from the
    /// data and needs without it (a conditional model's class names). Unchanged by default.
    fn recorded(&self, cfg: RunConfig<Self::Config>) -> RunConfig<Self::Config> {
        cfg
    }

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
    /// The discriminator's loss; the fakes must be detached here. Regularisers computed from
    /// the real and fake batches are added here too (see [`crate::reg`]).
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

    /// Whether D's inputs are plain image batches that [`Game::augment`] can transform
    /// (`train.diffaug`). A run asking for DiffAugment of a model without it is refused by name
    /// before anything loads.
    const DIFF_AUGMENT: bool = false;
    /// The batch and fakes as D sees them under DiffAugment, each augmented with its own draw
    /// (the fakes stay attached to G's graph). The engine calls it before every `d_loss` and
    /// before `g_loss` when `train.diffaug` is on; `None` (the default) leaves them as they
    /// are, which only models without [`Game::DIFF_AUGMENT`] do.
    fn augment(
        &self,
        _aug: &DiffAugment,
        _batch: &Self::Batch,
        _fakes: &Self::Fakes,
    ) -> Option<(Self::Batch, Self::Fakes)> {
        None
    }

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
}

/// A model whose generator draws images from noise.
pub trait Sample: Game {
    /// `n` latent codes (the caller's `n`, never a configured batch size).
    fn sample_noise(&self, n: usize, device: &Device) -> Tensor<2>;
    /// Images `[N, C, H, W]` in [-1, 1] from latent codes (an inference-mode generator; a
    /// conditional model draws the classes from the device RNG).
    fn sample(&self, g: &Self::G, noise: Tensor<2>) -> Tensor<4>;
}

/// A model whose generator is conditioned on a class.
pub trait SampleClass: Sample {
    /// The class names, index order (digits `0`–`9` for MNIST).
    fn class_names(&self) -> Vec<String>;
    /// Images of the requested classes (one label per latent code).
    fn sample_classes(&self, g: &Self::G, noise: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4>;
}

/// Held-out images of both domains of an image-to-image run, for its metrics.
pub struct HeldOut {
    /// Domain A images.
    pub a: ImageSet,
    /// Domain B images.
    pub b: ImageSet,
    /// The true B counterpart of each image of `a`, in order, when the data has them (paired
    /// test folders).
    pub truth_a: Option<ImageSet>,
    /// The true A counterpart of each image of `b`.
    pub truth_b: Option<ImageSet>,
    /// The folder holding the pair's `zoo-pair.toml`, when the domains have a known mapping.
    pub root: Option<PathBuf>,
}

impl HeldOut {
    /// Held-out pairs whose image `i` are counterparts, at most `n` of them.
    pub fn paired(mut set: PairedSet, n: usize, root: Option<PathBuf>) -> Self {
        set.a.truncate(n);
        set.b.truncate(n);
        Self {
            truth_a: Some(set.b.clone()),
            truth_b: Some(set.a.clone()),
            a: set.a,
            b: set.b,
            root,
        }
    }
}

/// A translation and, for a model with generators both ways, its reconstruction (the
/// translation translated back).
pub type Translated = (Tensor<4>, Option<Tensor<4>>);

/// A model whose generators translate images between two domains.
pub trait Translate: Game {
    /// The directions the trained generators translate (both, by default).
    fn directions(&self) -> Vec<Direction> {
        vec![Direction::AToB, Direction::BToA]
    }
    /// The translations of `images` (a direction of [`Translate::directions`]) and their
    /// reconstructions where the model has the way back.
    fn translate(&self, g: &Self::G, direction: Direction, images: Tensor<4>) -> Translated;
    /// Up to `n` held-out images per domain (the test folders when the data has them).
    fn held_out(&self, cfg: &RunConfig<Self::Config>, n: usize) -> Result<HeldOut>;
}

/// One thing a trained generator can be used for, as `zoo list` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// `zoo sample` and image metrics.
    Sample,
    /// `zoo sample --class` and per-class metrics.
    Condition,
    /// `zoo translate` and translation metrics.
    Translate,
}

impl Capability {
    /// The name `zoo list` prints.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Sample => "sample",
            Capability::Condition => "class",
            Capability::Translate => "translate",
        }
    }
}

/// The object-safe view of [`Sample`] that [`Role::sampler`] hands out.
pub trait Sampler<M: Game> {
    /// [`Sample::sample_noise`].
    fn noise(&self, n: usize, device: &Device) -> Tensor<2>;
    /// [`Sample::sample`].
    fn images(&self, g: &M::G, noise: Tensor<2>) -> Tensor<4>;
}

impl<M: Sample> Sampler<M> for M {
    fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.sample_noise(n, device)
    }
    fn images(&self, g: &M::G, noise: Tensor<2>) -> Tensor<4> {
        self.sample(g, noise)
    }
}

/// The object-safe view of [`SampleClass`].
pub trait ClassSampler<M: Game>: Sampler<M> {
    /// [`SampleClass::class_names`].
    fn classes(&self) -> Vec<String>;
    /// [`SampleClass::sample_classes`].
    fn images_of(&self, g: &M::G, noise: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4>;
}

impl<M: SampleClass> ClassSampler<M> for M {
    fn classes(&self) -> Vec<String> {
        self.class_names()
    }
    fn images_of(&self, g: &M::G, noise: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        self.sample_classes(g, noise, labels)
    }
}

/// The object-safe view of [`Translate`].
pub trait Translator<M: Game> {
    /// [`Translate::directions`].
    fn directions(&self) -> Vec<Direction>;
    /// [`Translate::translate`].
    fn translate(&self, g: &M::G, direction: Direction, images: Tensor<4>) -> Translated;
    /// [`Translate::held_out`].
    fn held_out(&self, cfg: &RunConfig<M::Config>, n: usize) -> Result<HeldOut>;
}

impl<M: Translate> Translator<M> for M {
    fn directions(&self) -> Vec<Direction> {
        Translate::directions(self)
    }
    fn translate(&self, g: &M::G, direction: Direction, images: Tensor<4>) -> Translated {
        Translate::translate(self, g, direction, images)
    }
    fn held_out(&self, cfg: &RunConfig<M::Config>, n: usize) -> Result<HeldOut> {
        Translate::held_out(self, cfg, n)
    }
}

/// Declares what a model's trained generator can do; see the module docs. Implemented by
/// [`NoiseToImage`], [`ClassToImage`] and [`ImageToImage`] only for models with the matching
/// trait, so a wrong declaration does not compile.
pub trait Role<M: Game>: 'static {
    /// What `zoo list` shows.
    const CAPABILITIES: &'static [Capability];
    /// The model as a sampler, when it samples from noise.
    fn sampler(_model: &M) -> Option<&dyn Sampler<M>> {
        None
    }
    /// The model as a class-conditional sampler, when it is one.
    fn class_sampler(_model: &M) -> Option<&dyn ClassSampler<M>> {
        None
    }
    /// The model as a translator, when it translates.
    fn translator(_model: &M) -> Option<&dyn Translator<M>> {
        None
    }
}

/// Noise in, image out ([`Sample`]).
pub struct NoiseToImage;
/// Noise and a class in, image out ([`SampleClass`]).
pub struct ClassToImage;
/// Image in, image out ([`Translate`]).
pub struct ImageToImage;

impl<M: Sample> Role<M> for NoiseToImage {
    const CAPABILITIES: &'static [Capability] = &[Capability::Sample];
    fn sampler(model: &M) -> Option<&dyn Sampler<M>> {
        Some(model)
    }
}

impl<M: SampleClass> Role<M> for ClassToImage {
    const CAPABILITIES: &'static [Capability] = &[Capability::Sample, Capability::Condition];
    fn sampler(model: &M) -> Option<&dyn Sampler<M>> {
        Some(model)
    }
    fn class_sampler(model: &M) -> Option<&dyn ClassSampler<M>> {
        Some(model)
    }
}

impl<M: Translate> Role<M> for ImageToImage {
    const CAPABILITIES: &'static [Capability] = &[Capability::Translate];
    fn translator(model: &M) -> Option<&dyn Translator<M>> {
        Some(model)
    }
}

//! pix2pix (Isola, Zhu, Zhou & Efros, CVPR 2017): paired image-to-image translation with a
//! conditional GAN, after the authors' reference implementation
//! (junyanz/pytorch-CycleGAN-and-pix2pix, `pix2pix_model.py`).
//!
//! - Generator: the U-Net (`unet_256` at 256 px: 8 levels down to 1×1; `model.g_depth`
//!   smaller for smaller images, default: as many as the crop side halves), skip connections at every
//!   level, dropout 0.5 in the three decoder blocks just outside the bottleneck (the
//!   reference's noise: pix2pix has no z). Dropout is on in training only: zoo translates with
//!   the inference-mode generator (the reference keeps it on at test time unless `--eval`).
//! - Discriminator: the 70×70 PatchGAN conditioned on the input (input and output images
//!   concatenated along the channels).
//! - Losses: non-saturating GAN loss on logits (the reference's `vanilla` = BCE with logits),
//!   D loss halved; G adds λ·L1(G(x), y) with λ = 100.
//! - Norm: batch norm by default (the reference's pix2pix setting), or instance norm.
//! - Training: Adam 2e-4, β = (0.5, 0.999) for both; constant rate for `n_epochs`, linear
//!   decay over `n_epochs_decay` (100 + 100 by default); batch 1, images resized to 286 and
//!   randomly cropped to 256 and mirrored, the same window for input and target.
//!
//! Data: `--domains ROOT` with `trainA/ trainB/ (testA/ testB/)` matched by file name, the
//! reference's side-by-side `train/ (test/)`, or two folders `--domains A B`. A and B may
//! have different channels (`data.channels`, `data.channels_b`: gray → RGB colourisation).

pub mod data;
pub mod nets;

use anyhow::{Result, ensure};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::config::{DatasetKind, RunConfig};
use zoo_core::data::ImageSet;
use zoo_core::data::similarity::conform;
use zoo_core::game::{Direction, Game, HeldOut, ImageToImage, Translate, Translated};
use zoo_core::gan::{Losses, trainable_params};
use zoo_core::loss::Adversarial;
use zoo_cyclegan::nets::PatchDiscriminator as Geometry;

pub use data::{PairDirs, PairedData, Pairs};
pub use nets::{NormKind, PatchDiscriminator, UnetGenerator, UnetShape};

/// `[model]` of `zoo train pix2pix`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pix2PixConfig {
    /// Which way the generator translates: `a2b` (input A, target B) or `b2a` (the
    /// reference's `--direction BtoA`).
    pub direction: Direction,
    /// Filters of the generator's first level (ngf).
    pub g_filters: usize,
    /// Down-sampling levels of the U-Net (8 = `unet_256`, 7 = `unet_128`); unset: as many as
    /// `data.image_size` halves (log₂ of a power of two: down to a 1×1 bottleneck).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub g_depth: Option<usize>,
    /// Decoder levels just outside the bottleneck with dropout 0.5 (the reference: 3).
    pub dropout_levels: usize,
    /// Filters of the discriminator's first layer (ndf).
    pub d_filters: usize,
    /// Strided layers of the PatchGAN (3 = the 70×70 PatchGAN).
    pub d_layers: usize,
    /// `batch` (the reference's pix2pix default) or `instance`.
    pub norm: NormKind,
    /// Standard deviation of the N(0, σ) weight init.
    pub init_std: f64,
    /// Adversarial objective (default: non-saturating on logits, the reference's `vanilla`).
    pub loss: Adversarial,
    /// Weight of the L1 loss between G(x) and its target.
    pub lambda_l1: f64,
    /// Images are resized to this side, then randomly cropped to `data.image_size`.
    pub load_size: usize,
    /// Random left-right mirroring of training pairs.
    pub flip: bool,
}

impl Default for Pix2PixConfig {
    fn default() -> Self {
        Self {
            direction: Direction::AToB,
            g_filters: 64,
            g_depth: None,
            dropout_levels: 3,
            d_filters: 64,
            d_layers: 3,
            norm: NormKind::Batch,
            init_std: 0.02,
            loss: Adversarial::NonSaturating,
            lambda_l1: 100.0,
            load_size: 286,
            flip: true,
        }
    }
}

/// The pix2pix model.
#[derive(Debug, Clone)]
pub struct Pix2Pix {
    cfg: Pix2PixConfig,
    /// Channels of A and of B.
    channels: (usize, usize),
    crop: usize,
    depth: usize,
}

/// The generator's outputs for one batch.
pub struct Fakes {
    /// G(x).
    pub output: Tensor<4>,
}

impl Pix2Pix {
    /// The model section.
    pub fn config(&self) -> &Pix2PixConfig {
        &self.cfg
    }

    /// The U-Net's levels.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Channels of the generator's input and output, in the trained direction.
    pub fn io_channels(&self) -> (usize, usize) {
        let (a, b) = self.channels;
        match self.cfg.direction {
            Direction::AToB => (a, b),
            Direction::BToA => (b, a),
        }
    }

    /// The U-Net's shape.
    pub fn unet(&self) -> UnetShape {
        UnetShape {
            channels: self.io_channels(),
            filters: self.cfg.g_filters,
            depth: self.depth,
            dropout_levels: self.cfg.dropout_levels,
            norm: self.cfg.norm,
            init_std: self.cfg.init_std,
        }
    }

    /// (input, target) sets in the trained direction.
    fn oriented(&self, a: ImageSet, b: ImageSet) -> (ImageSet, ImageSet) {
        match self.cfg.direction {
            Direction::AToB => (a, b),
            Direction::BToA => (b, a),
        }
    }
}

impl Pix2PixConfig {
    /// The U-Net's levels at this image size: `g_depth`, or where unset as many as the side
    /// halves (its trailing zero bits).
    pub fn g_depth_at(&self, image_size: usize) -> usize {
        self.g_depth.unwrap_or(image_size.trailing_zeros() as usize)
    }
}

impl Game for Pix2Pix {
    type Config = Pix2PixConfig;
    type G = UnetGenerator;
    type D = PatchDiscriminator;
    type Data = PairedData;
    type Batch = Pairs;
    type Fakes = Fakes;
    type Probe = Pairs;
    type Role = ImageToImage;
    const NAME: &'static str = "pix2pix";
    const ABOUT: &'static str = "Isola et al. 2017: paired image-to-image translation with a U-Net, \
                                 a conditional PatchGAN and an L1 loss";

    /// The reference's settings: 256 px RGB, batch 1, 100 + 100 epochs.
    fn defaults() -> RunConfig<Pix2PixConfig> {
        zoo_cyclegan::reference_run()
    }
    fn unset_notes(cfg: &RunConfig<Pix2PixConfig>) -> Vec<String> {
        let size = cfg.data.image_size;
        match cfg.model.g_depth {
            Some(_) => Vec::new(),
            None => vec![format!(
                "# g_depth = {}    # unset: as many levels as data.image_size = {size} halves",
                cfg.model.g_depth_at(size)
            )],
        }
    }

    fn new(cfg: &RunConfig<Pix2PixConfig>) -> Result<Self> {
        let m = &cfg.model;
        zoo_cyclegan::check_widths(m.g_filters, m.d_filters, m.d_layers, m.init_std)?;
        ensure!(
            m.lambda_l1.is_finite() && m.lambda_l1 >= 0.0,
            "model.lambda_l1 must be a non-negative number (got {})",
            m.lambda_l1
        );
        m.loss.validate()?;
        let size = cfg.data.image_size;
        let full = size.trailing_zeros() as usize;
        let depth = m.g_depth_at(size);
        ensure!(
            depth >= 2 && size.is_multiple_of(1 << depth),
            "data.image_size = {size} does not suit a U-Net of {depth} levels: the side must be \
             a multiple of 2^levels (at least 2 levels), e.g. 32, 64, 128, 256 (set \
             model.g_depth to at most {full})"
        );
        ensure!(
            m.load_size >= size,
            "model.load_size ({}) must be at least data.image_size ({size}), the crop size",
            m.load_size
        );
        Geometry::patch_side(size, m.d_layers)?;
        ensure!(
            cfg.data.dataset == DatasetKind::Folder,
            "pix2pix reads paired image folders: leave data.dataset = \"folder\" and pass \
             --domains"
        );
        Ok(Self {
            cfg: m.clone(),
            channels: cfg.data.domain_channels(),
            crop: size,
            depth,
        })
    }

    fn init_g(&self, device: &Device) -> UnetGenerator {
        UnetGenerator::new(&self.unet(), device)
    }

    fn init_d(&self, device: &Device) -> PatchDiscriminator {
        let (i, o) = self.io_channels();
        let m = &self.cfg;
        PatchDiscriminator::new(i + o, m.d_filters, m.d_layers, m.norm, m.init_std, device)
    }

    fn load_data(&self, cfg: &RunConfig<Pix2PixConfig>) -> Result<PairedData> {
        let dirs = PairDirs::resolve(&cfg.data.domains)?;
        let load = self.cfg.load_size;
        let train = dirs
            .load(false, self.channels, load)?
            .expect("training pairs always load");
        tracing::info!("{} training pairs", train.a.len);
        let test = dirs.load(true, self.channels, load)?;
        PairedData::new(
            self.oriented(train.a, train.b),
            test.map(|t| self.oriented(t.a, t.b)),
            (self.crop, self.cfg.flip),
            cfg.train.batch_size,
            cfg.train.seed,
        )
    }

    fn synthetic_data(&self, cfg: &RunConfig<Pix2PixConfig>) -> Result<PairedData> {
        let n = cfg.train.batch_size * cfg.train.d_steps * 4;
        let (i, o) = self.io_channels();
        let set = |c| ImageSet::synthetic(n, c, self.cfg.load_size);
        PairedData::new(
            (set(i), set(o)),
            None,
            (self.crop, self.cfg.flip),
            cfg.train.batch_size,
            cfg.train.seed,
        )
    }

    fn describe(&self, data: &PairedData) -> String {
        let (i, o) = self.io_channels();
        let s = self.crop;
        format!(
            "{} training pairs ({}), {i}->{o} channels, {s}x{s} crops, a U-Net of {} levels",
            data.len(),
            data.held_out_len()
                .map_or("no test split".into(), |n| format!("{n} held out")),
            self.depth
        )
    }

    fn per_epoch(&self, data: &PairedData) -> u64 {
        data.per_epoch()
    }

    fn batch(&self, data: &mut PairedData, index: u64, device: &Device) -> Pairs {
        data.batch(index, device)
    }

    fn fakes(&mut self, g: &UnetGenerator, pairs: &Pairs) -> Fakes {
        Fakes {
            output: g.forward(pairs.input.clone()),
        }
    }

    fn d_loss(&mut self, d: &PatchDiscriminator, pairs: &Pairs, fakes: &Fakes) -> Losses {
        let (scale, _) = self.cfg.loss.reference_scale();
        let real = d.forward(pairs.input.clone(), pairs.target.clone());
        let fake = d.forward(pairs.input.clone(), fakes.output.clone().detach());
        let loss = &self.cfg.loss;
        Losses::new(loss.d_loss(real.clone(), fake.clone()).mul_scalar(scale))
            .with("d_real", loss.score(real))
            .with("d_fake", loss.score(fake))
    }

    fn g_loss(
        &mut self,
        _g: &UnetGenerator,
        d: &PatchDiscriminator,
        pairs: Pairs,
        fakes: Fakes,
    ) -> Losses {
        let m = &self.cfg;
        let (_, scale) = m.loss.reference_scale();
        let gan = m
            .loss
            .g_loss(d.forward(pairs.input, fakes.output.clone()))
            .mul_scalar(scale);
        let l1 = (fakes.output - pairs.target)
            .abs()
            .mean()
            .mul_scalar(m.lambda_l1);
        Losses::new(gan.clone() + l1.clone())
            .with("G_GAN", gan)
            .with("G_L1", l1)
    }

    fn probe(&self, data: &PairedData, _seed: u64, n: usize, device: &Device) -> Pairs {
        data.probe(n, device)
    }

    /// Rows: input, G(input), target (gray rows shown as RGB when the other side is colour).
    fn grid(&self, g: &UnetGenerator, probe: &Pairs) -> (Tensor<4>, usize) {
        let out = g.forward(probe.input.clone());
        let k = probe.input.dims()[0];
        let c = self.channels.0.max(self.channels.1);
        let rows = [probe.input.clone(), out, probe.target.clone()].map(|t| conform(t, c));
        (Tensor::cat(rows.to_vec(), 0), k)
    }

    fn networks(&self, g: &UnetGenerator, d: &PatchDiscriminator) -> Vec<(&'static str, usize)> {
        vec![
            ("G (U-Net)", trainable_params(g)),
            ("D (PatchGAN)", trainable_params(d)),
        ]
    }
}

impl zoo_export::Export for Pix2Pix {
    /// The trained direction (`model.direction`).
    fn export(
        &self,
        g: &UnetGenerator,
        _direction: Option<Direction>,
    ) -> Result<zoo_export::OnnxModel> {
        let (cin, cout) = self.io_channels();
        let mut graph = zoo_export::Graph::new();
        let x = zoo_export::image_input(&mut graph, "image", cin, self.crop);
        let y = g.to_onnx(&mut graph, &x)?;
        zoo_export::image_output(&mut graph, y, "translated", cout, self.crop);
        zoo_export::finish(
            graph,
            <Self as Game>::NAME,
            Some(self.cfg.direction),
            "U-Net generator: strided convolutions, skip connections, batch or instance norm \
             in eval mode, dropout off, transposed convolutions, tanh",
        )
    }
}

impl Translate for Pix2Pix {
    /// The one direction the generator was trained for.
    fn directions(&self) -> Vec<Direction> {
        vec![self.cfg.direction]
    }

    fn translate(&self, g: &UnetGenerator, _direction: Direction, images: Tensor<4>) -> Translated {
        (g.forward(images), None)
    }

    /// The test pairs (testA/ testB/ or test/) when the data has them, else the training
    /// pairs; each image's counterpart is its truth.
    fn held_out(&self, cfg: &RunConfig<Pix2PixConfig>, n: usize) -> Result<HeldOut> {
        let dirs = PairDirs::resolve(&cfg.data.domains)?;
        let size = cfg.data.image_size;
        let set = match dirs.load(true, self.channels, size)? {
            Some(s) => s,
            None => {
                tracing::warn!("no test split: scoring on training pairs");
                dirs.load(false, self.channels, size)?
                    .expect("training pairs always load")
            }
        };
        Ok(HeldOut::paired(set, n, dirs.root()))
    }
}

#[cfg(test)]
mod tests;

//! CycleGAN (Zhu, Park, Isola & Efros 2017): unpaired image-to-image translation, after the
//! authors' reference implementation.
//!
//! - Generators G: A→B and F: B→A (the reference's G_A and G_B): ResNet style, c7s1-64, d128,
//!   d256, N residual blocks, u128, u64, c7s1-3; instance norm without affine parameters,
//!   reflection padding, ReLU, tanh output; optional dropout in the blocks.
//! - Discriminators D_A (real B vs G(a)) and D_B (real A vs F(b)): the 70×70 PatchGAN.
//! - Losses: the core's least squares by default (targets 0/1, the reference's `lsgan` mode),
//!   in the reference's `GANLoss` scaling (D loss halved); L1 cycle consistency with
//!   λ_A = λ_B = 10; identity loss with weight λ_idt·λ (λ_idt = 0.5).
//! - Training: both generators under one Adam, both discriminators under another; an image
//!   pool of 50 fakes per domain feeds D; the learning rate is constant for `n_epochs` and
//!   decays linearly over `n_epochs_decay` (the engine's `linear_decay` schedule by epoch).
//!
//! Checkpoints hold `generator.bpk` (G and F), `discriminator.bpk` (D_A and D_B) and the two
//! image pools, so `--resume` continues exactly.

pub mod data;
pub mod nets;
pub mod pool;

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::config::{DatasetKind, LrSchedule, RunConfig};
use zoo_core::data::pair::{Mapping, read_pair_info};
use zoo_core::data::paired::load_paired_folders;
use zoo_core::data::similarity::conform;
use zoo_core::data::{ImageSet, load_folder};
use zoo_core::game::{Direction, Game, HeldOut, ImageToImage, Translate, Translated};
use zoo_core::gan::{Losses, trainable_params};
use zoo_core::loss::Adversarial;

pub use data::{DomainDirs, Domains, Pair, Sampling};
pub use nets::{Discriminators, Generators, PatchDiscriminator, ResnetGenerator};
pub use pool::ImagePool;

/// `[model]` of `zoo train cyclegan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CycleGanConfig {
    /// Filters of the generators' first layer (ngf).
    pub g_filters: usize,
    /// Filters of the discriminators' first layer (ndf).
    pub d_filters: usize,
    /// Residual blocks per generator (the reference: 9 at 256 px, 6 at 128 px and below).
    pub g_blocks: usize,
    /// Stride-2 down-sampling steps of the generator before its blocks, and as many up (the
    /// reference's 2; the image side must be a multiple of 2^g_down).
    pub g_down: usize,
    /// Strided layers of the PatchGAN (3 = the 70×70 PatchGAN).
    pub d_layers: usize,
    /// Dropout 0.5 inside the residual blocks.
    pub dropout: bool,
    /// Standard deviation of the N(0, σ) weight init (biases start at 0).
    pub init_std: f64,
    /// Adversarial objective (default: least squares with targets fake 0, real 1).
    pub loss: Adversarial,
    /// Weight of the cycle loss A → B → A.
    pub lambda_a: f64,
    /// Weight of the cycle loss B → A → B.
    pub lambda_b: f64,
    /// Identity loss weight relative to λ (0 disables the identity loss).
    pub lambda_identity: f64,
    /// σ of Gaussian noise added to each translation before it is translated back for the
    /// cycle loss, in training only (Bashkirova, Usman & Saenko 2019, "Adversarial self-defense
    /// for cycle-consistent GANs": the generators can no longer hide their input in faint
    /// high-frequency patterns for the way back). 0 = the reference (no noise).
    pub cycle_noise: f64,
    /// Fakes remembered per domain for D (0 disables the pool).
    pub pool_size: usize,
    /// Images are resized to this side, then randomly cropped to `data.image_size`.
    pub load_size: usize,
    /// Random left-right mirroring of training images.
    pub flip: bool,
}

impl Default for CycleGanConfig {
    fn default() -> Self {
        Self {
            g_filters: 64,
            d_filters: 64,
            g_blocks: 9,
            g_down: 2,
            d_layers: 3,
            dropout: false,
            init_std: 0.02,
            loss: Adversarial::LeastSquares {
                a: 0.0,
                b: 1.0,
                c: 1.0,
            },
            lambda_a: 10.0,
            lambda_b: 10.0,
            lambda_identity: 0.5,
            cycle_noise: 0.0,
            pool_size: 50,
            load_size: 286,
            flip: true,
        }
    }
}

/// The CycleGAN model: its settings and the two image pools.
#[derive(Debug, Clone)]
pub struct CycleGan {
    cfg: CycleGanConfig,
    /// Channels of A and of B.
    channels: (usize, usize),
    crop: usize,
    pool_a: ImagePool,
    pool_b: ImagePool,
}

/// The fakes of one step, attached to the generators' graph.
pub struct Fakes {
    /// G(a).
    pub fake_b: Tensor<4>,
    /// F(G(a)).
    pub rec_a: Tensor<4>,
    /// F(b).
    pub fake_a: Tensor<4>,
    /// G(F(b)).
    pub rec_b: Tensor<4>,
}

fn l1(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    (a - b).abs().mean()
}

impl CycleGan {
    /// The model section.
    pub fn config(&self) -> &CycleGanConfig {
        &self.cfg
    }

    /// G(a), F(G(a)), F(b), G(F(b)).
    pub fn cycle(&self, g: &Generators, a: Tensor<4>, b: Tensor<4>) -> Fakes {
        self.cycle_with_noise(g, a, b, 0.0)
    }

    /// G(a), F(G(a) + ε), F(b), G(F(b) + ε) with ε ~ N(0, σ²) drawn from the device RNG (the
    /// engine seeds it per step); the fakes themselves, which D judges, stay noise-free.
    pub fn cycle_with_noise(
        &self,
        g: &Generators,
        a: Tensor<4>,
        b: Tensor<4>,
        sigma: f64,
    ) -> Fakes {
        let noisy = |t: &Tensor<4>| {
            if sigma > 0.0 {
                let eps = Tensor::<4>::random(
                    t.shape(),
                    burn::tensor::Distribution::Normal(0.0, sigma),
                    &t.device(),
                );
                t.clone() + eps
            } else {
                t.clone()
            }
        };
        let fake_b = g.g.forward(a);
        let rec_a = g.f.forward(noisy(&fake_b));
        let fake_a = g.f.forward(b);
        let rec_b = g.g.forward(noisy(&fake_a));
        Fakes {
            fake_b,
            rec_a,
            fake_a,
            rec_b,
        }
    }

    /// The L1 cycle losses ‖F(G(a)) − a‖₁ and ‖G(F(b)) − b‖₁, unweighted.
    pub fn cycle_losses(&self, pair: &Pair, fakes: &Fakes) -> (Tensor<1>, Tensor<1>) {
        (
            l1(fakes.rec_a.clone(), pair.a.clone()),
            l1(fakes.rec_b.clone(), pair.b.clone()),
        )
    }

    /// How the run's batches are drawn.
    pub fn sampling(&self, cfg: &RunConfig<CycleGanConfig>) -> Sampling {
        Sampling {
            crop: self.crop,
            flip: self.cfg.flip,
            batch_size: cfg.train.batch_size,
            seed: cfg.train.seed,
        }
    }

    fn pool_path(dir: &std::path::Path, domain: &str) -> std::path::PathBuf {
        dir.join(format!("pool_{domain}.bin"))
    }
}

/// The reference implementation's run settings, shared by its two models: 256×256 RGB folders,
/// batch 1, 100 epochs at the full rate and 100 decaying linearly.
pub fn reference_run<C: Default>() -> RunConfig<C> {
    let mut cfg = RunConfig::<C>::default();
    cfg.data.dataset = DatasetKind::Folder;
    cfg.data.image_size = 256;
    cfg.data.channels = 3;
    cfg.train.batch_size = 1;
    // n_epochs = 100 at the full rate, then n_epochs_decay = 100 down towards zero.
    cfg.train.epochs = Some(200);
    cfg.train.lr_schedule = LrSchedule::LinearDecayEpochs { start_epoch: 100 };
    cfg.train.log_every = 100;
    cfg.train.sample_every = 1000;
    cfg.train.checkpoint_every = 5000;
    cfg.train.grid_samples = 8;
    cfg
}

/// Checks the network widths both reference models share: filters, PatchGAN layers, init σ.
pub fn check_widths(g_filters: usize, d_filters: usize, d_layers: usize, std: f64) -> Result<()> {
    ensure!(
        g_filters > 0 && d_filters > 0,
        "model.g_filters and model.d_filters must be at least 1"
    );
    ensure!(
        (1..=8).contains(&d_layers),
        "model.d_layers must be between 1 and 8 (got {d_layers})"
    );
    ensure!(
        std.is_finite() && std > 0.0,
        "model.init_std must be a positive number (got {std})"
    );
    Ok(())
}

impl Game for CycleGan {
    type Config = CycleGanConfig;
    type G = Generators;
    type D = Discriminators;
    type Data = Domains;
    type Batch = Pair;
    type Fakes = Fakes;
    type Probe = Pair;
    type Role = ImageToImage;
    const NAME: &'static str = "cyclegan";
    const ABOUT: &'static str = "Zhu et al. 2017: unpaired image-to-image translation with two \
                                 generators, two PatchGANs and cycle consistency";

    fn defaults() -> RunConfig<CycleGanConfig> {
        reference_run()
    }

    fn new(cfg: &RunConfig<CycleGanConfig>) -> Result<Self> {
        let m = &cfg.model;
        check_widths(m.g_filters, m.d_filters, m.d_layers, m.init_std)?;
        for (k, v) in [
            ("lambda_a", m.lambda_a),
            ("lambda_b", m.lambda_b),
            ("lambda_identity", m.lambda_identity),
            ("cycle_noise", m.cycle_noise),
        ] {
            ensure!(
                v.is_finite() && v >= 0.0,
                "model.{k} must be a non-negative number (got {v})"
            );
        }
        m.loss.validate()?;
        let (ca, cb) = cfg.data.domain_channels();
        ensure!(
            ca == cb || m.lambda_identity == 0.0,
            "the identity loss feeds B images to G: A→B, so it needs the same channels in A and B \
             (data.channels = {ca}, data.channels_b = {cb}); set model.lambda_identity = 0"
        );
        let size = cfg.data.image_size;
        ensure!(
            (1..=5).contains(&m.g_down),
            "model.g_down must be between 1 and 5 (got {}); the reference uses 2",
            m.g_down
        );
        let step = 1usize << m.g_down;
        ensure!(
            size >= 2 * step && size.is_multiple_of(step),
            "data.image_size = {size} does not suit the ResNet generator with model.g_down = {}: \
             it must be a multiple of {step}, at least {} (e.g. 64, 128, 256)",
            m.g_down,
            2 * step
        );
        ensure!(
            m.load_size >= size,
            "model.load_size ({}) must be at least data.image_size ({size}), the crop size",
            m.load_size
        );
        PatchDiscriminator::patch_side(size, m.d_layers)?;
        ensure!(
            cfg.data.dataset == DatasetKind::Folder,
            "cyclegan reads two image folders: leave data.dataset = \"folder\" and pass --domains"
        );
        Ok(Self {
            cfg: m.clone(),
            channels: cfg.data.domain_channels(),
            crop: size,
            pool_a: ImagePool::new(m.pool_size),
            pool_b: ImagePool::new(m.pool_size),
        })
    }

    fn init_g(&self, device: &Device) -> Generators {
        let (a, b) = self.channels;
        Generators {
            g: ResnetGenerator::new(&self.cfg, (a, b), device),
            f: ResnetGenerator::new(&self.cfg, (b, a), device),
        }
    }

    fn init_d(&self, device: &Device) -> Discriminators {
        let (a, b) = self.channels;
        Discriminators {
            d_a: PatchDiscriminator::new(&self.cfg, b, device),
            d_b: PatchDiscriminator::new(&self.cfg, a, device),
        }
    }

    fn load_data(&self, cfg: &RunConfig<CycleGanConfig>) -> Result<Domains> {
        let dirs = DomainDirs::resolve(&cfg.data.domains)?;
        Domains::load(&dirs, self.channels, self.cfg.load_size, self.sampling(cfg))
    }

    fn synthetic_data(&self, cfg: &RunConfig<CycleGanConfig>) -> Result<Domains> {
        let n = cfg.train.batch_size * cfg.train.d_steps * 4;
        let set = |c| std::sync::Arc::new(ImageSet::synthetic(n, c, self.cfg.load_size));
        let (a, b) = self.channels;
        Domains::from_sets(set(a), set(b), None, None, self.sampling(cfg))
    }

    fn describe(&self, data: &Domains) -> String {
        let (a, b) = data.sizes();
        let (ca, cb) = self.channels;
        let (s, what) = (
            self.crop,
            if ca == cb {
                format!("{ca}x")
            } else {
                format!("{ca}/{cb}x")
            },
        );
        format!("{a} images in A and {b} in B, {what}{s}x{s} crops")
    }

    fn per_epoch(&self, data: &Domains) -> u64 {
        data.per_epoch()
    }

    fn batch(&self, data: &mut Domains, index: u64, device: &Device) -> Pair {
        data.batch(index, device)
    }

    fn fakes(&mut self, g: &Generators, pair: &Pair) -> Fakes {
        self.cycle_with_noise(g, pair.a.clone(), pair.b.clone(), self.cfg.cycle_noise)
    }

    fn d_loss(&mut self, d: &Discriminators, pair: &Pair, fakes: &Fakes) -> Losses {
        let (scale, _) = self.cfg.loss.reference_scale();
        let fake_b = self.pool_b.query(fakes.fake_b.clone().detach());
        let fake_a = self.pool_a.query(fakes.fake_a.clone().detach());
        let loss = &self.cfg.loss;
        let d_a = loss
            .d_loss(d.d_a.forward(pair.b.clone()), d.d_a.forward(fake_b))
            .mul_scalar(scale);
        let d_b = loss
            .d_loss(d.d_b.forward(pair.a.clone()), d.d_b.forward(fake_a))
            .mul_scalar(scale);
        Losses::new(d_a.clone() + d_b.clone())
            .with("D_A", d_a)
            .with("D_B", d_b)
    }

    fn g_loss(&mut self, g: &Generators, d: &Discriminators, pair: Pair, fakes: Fakes) -> Losses {
        let m = &self.cfg;
        let (_, scale) = m.loss.reference_scale();
        let g_a = m
            .loss
            .g_loss(d.d_a.forward(fakes.fake_b.clone()))
            .mul_scalar(scale);
        let g_b = m
            .loss
            .g_loss(d.d_b.forward(fakes.fake_a.clone()))
            .mul_scalar(scale);
        let (cyc_a, cyc_b) = self.cycle_losses(&pair, &fakes);
        let cycle_a = cyc_a.mul_scalar(m.lambda_a);
        let cycle_b = cyc_b.mul_scalar(m.lambda_b);
        let mut total = g_a.clone() + g_b.clone() + cycle_a.clone() + cycle_b.clone();
        let (idt_a, idt_b) = if m.lambda_identity > 0.0 {
            // G should leave B images alone, F should leave A images alone.
            let idt_a = l1(g.g.forward(pair.b.clone()), pair.b.clone())
                .mul_scalar(m.lambda_b * m.lambda_identity);
            let idt_b =
                l1(g.f.forward(pair.a.clone()), pair.a).mul_scalar(m.lambda_a * m.lambda_identity);
            total = total + idt_a.clone() + idt_b.clone();
            (idt_a, idt_b)
        } else {
            let zero = Tensor::zeros([1], &g_a.device());
            (zero.clone(), zero)
        };
        Losses::new(total)
            .with("G_A", g_a)
            .with("G_B", g_b)
            .with("cycle_A", cycle_a)
            .with("cycle_B", cycle_b)
            .with("idt_A", idt_a)
            .with("idt_B", idt_b)
    }

    fn probe(&self, data: &Domains, _seed: u64, n: usize, device: &Device) -> Pair {
        data.probe(n, device)
    }

    /// Rows: real A, G(A), F(G(A)), then real B, F(B), G(F(B)) (gray rows shown as RGB when
    /// the other domain is in colour).
    fn grid(&self, g: &Generators, probe: &Pair) -> (Tensor<4>, usize) {
        let f = self.cycle(g, probe.a.clone(), probe.b.clone());
        let k = probe.a.dims()[0];
        let c = self.channels.0.max(self.channels.1);
        let rows = [
            probe.a.clone(),
            f.fake_b,
            f.rec_a,
            probe.b.clone(),
            f.fake_a,
            f.rec_b,
        ]
        .map(|t| conform(t, c));
        (Tensor::cat(rows.to_vec(), 0), k)
    }

    fn networks(&self, g: &Generators, d: &Discriminators) -> Vec<(&'static str, usize)> {
        vec![
            ("G (A->B)", trainable_params(&g.g)),
            ("F (B->A)", trainable_params(&g.f)),
            ("D_A (judges B)", trainable_params(&d.d_a)),
            ("D_B (judges A)", trainable_params(&d.d_b)),
        ]
    }

    fn save_state(&self, dir: &std::path::Path) -> Result<()> {
        self.pool_a.save(&Self::pool_path(dir, "a"))?;
        self.pool_b.save(&Self::pool_path(dir, "b"))
    }

    fn load_state(&mut self, dir: &std::path::Path, device: &Device) -> Result<()> {
        self.pool_a.load(&Self::pool_path(dir, "a"), device)?;
        self.pool_b.load(&Self::pool_path(dir, "b"), device)
    }
}

impl zoo_export::Export for CycleGan {
    /// One direction per file: G (A → B) or F (B → A).
    fn export(
        &self,
        g: &Generators,
        direction: Option<Direction>,
    ) -> Result<zoo_export::OnnxModel> {
        let direction = direction.unwrap_or(Direction::AToB);
        let (net, name, (cin, cout)) = match direction {
            Direction::AToB => (&g.g, "g", self.channels),
            Direction::BToA => (&g.f, "f", (self.channels.1, self.channels.0)),
        };
        let mut graph = zoo_export::Graph::new();
        let x = zoo_export::image_input(&mut graph, "image", cin, self.crop);
        let y = net.to_onnx(&mut graph, &x, name)?;
        zoo_export::image_output(&mut graph, y, "translated", cout, self.crop);
        zoo_export::finish(
            graph,
            <Self as Game>::NAME,
            Some(direction),
            "ResNet generator: reflection padding, instance norm, residual blocks, transposed \
             convolutions, tanh",
        )
    }
}

impl Translate for CycleGan {
    fn translate(&self, g: &Generators, direction: Direction, images: Tensor<4>) -> Translated {
        let (there, back) = match direction {
            Direction::AToB => (&g.g, &g.f),
            Direction::BToA => (&g.f, &g.g),
        };
        let fake = there.forward(images);
        let rec = back.forward(fake.clone());
        (fake, Some(rec))
    }

    /// The test folders (testA/ testB/) when the root has them, else the training folders;
    /// matched by file name when the pair says they are counterparts (`zoo data pair emoji`).
    fn held_out(&self, cfg: &RunConfig<CycleGanConfig>, n: usize) -> Result<HeldOut> {
        let dirs = DomainDirs::resolve(&cfg.data.domains)?;
        let (ca, cb) = self.channels;
        let size = cfg.data.image_size;
        let root = dirs.train_a.parent().map(std::path::Path::to_path_buf);
        let counterparts = match &root {
            Some(r) => read_pair_info(r)?.is_some_and(|p| p.mapping == Mapping::Counterparts),
            None => false,
        };
        if let (true, Some(ta), Some(tb)) = (counterparts, &dirs.test_a, &dirs.test_b) {
            let set =
                load_paired_folders(ta, tb, (ca, cb), size).context("the held-out counterparts")?;
            return Ok(HeldOut::paired(set, n, root));
        }
        let load = |test: &Option<std::path::PathBuf>,
                    train: &std::path::Path,
                    channels|
         -> Result<ImageSet> {
            let dir = test.as_deref().unwrap_or(train);
            let mut set = load_folder(dir, channels, size)
                .with_context(|| format!("evaluation images in {}", dir.display()))?;
            set.truncate(n);
            Ok(set)
        };
        Ok(HeldOut {
            a: load(&dirs.test_a, &dirs.train_a, ca)?,
            b: load(&dirs.test_b, &dirs.train_b, cb)?,
            truth_a: None,
            truth_b: None,
            root,
        })
    }
}

#[cfg(test)]
mod tests;

//! The plugin traits a noise-to-image model crate implements.
//!
//! The split follows mimicry's `Trainer` and CycleGAN's `BaseModel` hooks: the **model** owns
//! its networks' construction, its noise, and its loss recipe (plus per-model tricks such as an
//! image pool or weight clipping, in [`GanModel::after_d_step`]); the **engine**
//! (zoo-train's engine) owns the networks once built, both optimizers, the schedule, the RNG,
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
//! - Discriminator regularisers computed from the real and fake batches go in
//!   [`GanModel::d_regularizers`] (see [`crate::reg`] for what burn 0.22 allows); transforms
//!   after D's update (weight clipping) in [`GanModel::after_d_step`].
//!
//! Every `GanModel` is a [`Game`] with the [`NoiseToImage`] role (it implements [`Sample`]).
//! Class-conditional GANs implement [`ConditionalGan`], whose labels reach both players;
//! [`Conditional<M>`] makes one a `Game` with the [`ClassToImage`] role.

use std::fmt::{Debug, Display};
use std::sync::Arc;

use anyhow::{Result, ensure};
use burn::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::augment::DiffAugment;
use crate::config::RunConfig;
use crate::data::classes::load_labelled_set;
use crate::data::{Batches, ImageSet, Real, load_training_set};
use crate::game::{
    ClassToImage, Game, NoiseToImage, Sample, SampleClass, class_row_labels, class_rows,
    grid_columns,
};
pub use crate::loss::Losses;
use crate::streams::{FIXED_NOISE, mix};

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
    /// See [`Game::unset_notes`].
    fn unset_notes(_cfg: &RunConfig<Self::Config>) -> Vec<String> {
        Vec::new()
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
    /// The generator's loss given the step's real batch as well (never differentiated): for a
    /// D that must see real images beside the fakes, e.g. one whose batch norm normalises real
    /// and fake together. Defaults to [`GanModel::g_loss`], which ignores them.
    fn g_loss_beside_real(&mut self, d: &Self::D, _real: Tensor<4>, fake: Tensor<4>) -> Losses {
        self.g_loss(d, fake)
    }

    /// Regularisers of D computed from the real and (detached) fake batches: each
    /// `(name, term)` is added to D's loss and logged as its own column. None by default.
    fn d_regularizers(
        &mut self,
        _d: &Self::D,
        _real: &Tensor<4>,
        _fake: &Tensor<4>,
    ) -> Vec<(&'static str, Tensor<1>)> {
        Vec::new()
    }

    /// Hook after each discriminator update (e.g. WGAN weight clipping).
    fn after_d_step(&mut self, d: Self::D) -> Self::D {
        d
    }
}

/// Noise-to-image GANs: real batches from one image set, fakes from fresh noise of the batch's
/// size, grids from a fixed noise batch.
impl<M: GanModel> Game for M {
    type Config = M::Config;
    type G = M::G;
    type D = M::D;
    type Data = Batches;
    type Batch = Real;
    type Fakes = Tensor<4>;
    type Probe = Tensor<2>;
    type Role = NoiseToImage;
    const NAME: &'static str = <M as GanModel>::NAME;
    const ABOUT: &'static str = <M as GanModel>::ABOUT;

    fn defaults() -> RunConfig<M::Config> {
        <M as GanModel>::defaults()
    }
    fn unset_notes(cfg: &RunConfig<M::Config>) -> Vec<String> {
        <M as GanModel>::unset_notes(cfg)
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
    /// Without labels: an unconditional model has no use for them.
    fn batch(&self, data: &mut Batches, index: u64, device: &Device) -> Real {
        Real {
            images: data.batch(index, device),
            labels: None,
        }
    }

    fn fakes(&mut self, g: &M::G, real: &Real) -> Tensor<4> {
        let n = real.images.dims()[0];
        self.generate(g, self.noise(n, &real.images.device()))
    }
    fn d_loss(&mut self, d: &M::D, real: &Real, fake: &Tensor<4>) -> Losses {
        let fake = fake.clone().detach();
        let regs = <M as GanModel>::d_regularizers(self, d, &real.images, &fake);
        let loss = <M as GanModel>::d_loss(self, d, real.images.clone(), fake);
        loss.regularized(regs)
    }
    fn after_d_step(&mut self, d: M::D) -> M::D {
        <M as GanModel>::after_d_step(self, d)
    }
    fn g_loss(&mut self, _g: &M::G, d: &M::D, real: Real, fake: Tensor<4>) -> Losses {
        <M as GanModel>::g_loss_beside_real(self, d, real.images.detach(), fake)
    }

    const DIFF_AUGMENT: bool = true;
    fn augment(
        &self,
        aug: &DiffAugment,
        real: &Real,
        fake: &Tensor<4>,
    ) -> Option<(Real, Tensor<4>)> {
        Some(augmented(aug, real, fake))
    }

    fn probe(&self, _data: &Batches, seed: u64, n: usize, device: &Device) -> Tensor<2> {
        device.seed(mix(seed, FIXED_NOISE));
        self.noise(n, device)
    }
    fn grid(&self, g: &M::G, probe: &Tensor<2>) -> (Tensor<4>, usize) {
        let n = probe.dims()[0];
        let per_row = grid_columns(n);
        (self.generate(g, probe.clone()), per_row)
    }
}

impl<M: GanModel> Sample for M {
    fn sample_noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.noise(n, device)
    }
    fn sample(&self, g: &M::G, noise: Tensor<2>) -> Tensor<4> {
        self.generate(g, noise)
    }
}

/// A class-conditional noise-to-image GAN (cGAN with a projection discriminator, AC-GAN):
/// [`GanModel`]'s contract plus the labels of each real batch, which G and D both receive.
/// Fakes of a step are drawn for the real batch's labels (as mimicry and StudioGAN do).
/// [`Conditional<M>`] is its [`Game`], with the [`ClassToImage`] role: register
/// `&Entry::<Conditional<MyCgan>>::new()`.
pub trait ConditionalGan: Sized + 'static {
    /// The `[model]` section of the config.
    type Config: Serialize + DeserializeOwned + Default + Clone + Debug;
    /// The generator.
    type G: Module + Clone + Display;
    /// The discriminator.
    type D: Module + Clone + Display;
    /// Registry name.
    const NAME: &'static str;
    /// One line for `zoo list`.
    const ABOUT: &'static str;

    /// The full default run config.
    fn defaults() -> RunConfig<Self::Config> {
        RunConfig::default()
    }
    /// Builds the model from a resolved config (the class names come from
    /// [`crate::data::classes::run_classes`]).
    fn new(cfg: &RunConfig<Self::Config>) -> Result<Self>;
    /// The class names, index order.
    fn class_names(&self) -> Vec<String>;
    /// A freshly initialised generator.
    fn init_g(&self, device: &Device) -> Self::G;
    /// A freshly initialised discriminator.
    fn init_d(&self, device: &Device) -> Self::D;
    /// `n` latent codes.
    fn noise(&self, n: usize, device: &Device) -> Tensor<2>;
    /// Images of classes `labels` (one per code).
    fn generate(&self, g: &Self::G, noise: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4>;
    /// D's loss on a real batch and (detached) fakes, both of classes `labels`.
    fn d_loss(
        &mut self,
        d: &Self::D,
        real: Tensor<4>,
        fake: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> Losses;
    /// G's loss on fakes of classes `labels`, attached to its graph.
    fn g_loss(&mut self, d: &Self::D, fake: Tensor<4>, labels: Tensor<1, Int>) -> Losses;
    /// Hook after each discriminator update.
    fn after_d_step(&mut self, d: Self::D) -> Self::D {
        d
    }
}

/// DiffAugment of a real batch and its fakes, each with its own draw (labels unchanged).
fn augmented(aug: &DiffAugment, real: &Real, fake: &Tensor<4>) -> (Real, Tensor<4>) {
    let real = Real {
        images: aug.apply(real.images.clone()),
        labels: real.labels.clone(),
    };
    (real, aug.apply(fake.clone()))
}

/// The [`Game`] of a [`ConditionalGan`].
pub struct Conditional<M>(pub M);

/// The labels of a conditional batch (a labelled data set is checked when it loads).
fn labels_of(real: &Real) -> Tensor<1, Int> {
    real.labels
        .clone()
        .expect("conditional models load labelled data only")
}

/// Class labels as a tensor on `device`.
pub fn label_tensor(labels: Vec<i64>, device: &Device) -> Tensor<1, Int> {
    let n = labels.len();
    Tensor::from_data(burn::tensor::TensorData::new(labels, [n]), device)
}

/// `n` labels drawn uniformly from `k` classes (from the device RNG).
fn random_labels(n: usize, k: usize, device: &Device) -> Tensor<1, Int> {
    let u = Tensor::<1>::random(
        [n],
        burn::tensor::Distribution::Uniform(0.0, k as f64),
        device,
    );
    u.floor().int().clamp(0, k as i64 - 1)
}

impl<M: ConditionalGan> Game for Conditional<M> {
    type Config = M::Config;
    type G = M::G;
    type D = M::D;
    type Data = Batches;
    type Batch = Real;
    type Fakes = Tensor<4>;
    /// The grid's noise and its labels: one row per class.
    type Probe = (Tensor<2>, Tensor<1, Int>);
    type Role = ClassToImage;
    const NAME: &'static str = M::NAME;
    const ABOUT: &'static str = M::ABOUT;

    fn defaults() -> RunConfig<M::Config> {
        M::defaults()
    }
    fn new(cfg: &RunConfig<M::Config>) -> Result<Self> {
        M::new(cfg).map(Conditional)
    }
    fn init_g(&self, device: &Device) -> M::G {
        self.0.init_g(device)
    }
    fn init_d(&self, device: &Device) -> M::D {
        self.0.init_d(device)
    }
    /// With the class names, so that the run samples by name without its data.
    fn recorded(&self, mut cfg: RunConfig<M::Config>) -> RunConfig<M::Config> {
        cfg.data.classes = self.0.class_names();
        cfg
    }
    fn load_data(&self, cfg: &RunConfig<M::Config>) -> Result<Batches> {
        let (set, names) = load_labelled_set(&cfg.data)?;
        ensure!(
            names == self.0.class_names(),
            "the data's classes ({}) are not the run's ({}); train on data with the same class \
             folders, or start a new run",
            names.join(", "),
            self.0.class_names().join(", ")
        );
        Batches::new(Arc::new(set), cfg.train.batch_size, cfg.train.seed)
    }
    fn synthetic_data(&self, cfg: &RunConfig<M::Config>) -> Result<Batches> {
        let n = cfg.train.batch_size * cfg.train.d_steps * 4;
        let mut set = ImageSet::synthetic(n, cfg.data.channels, cfg.data.image_size);
        let k = self.0.class_names().len().max(1);
        set.labels = Some((0..n).map(|i| (i % k) as u8).collect());
        Batches::new(Arc::new(set), cfg.train.batch_size, cfg.train.seed)
    }
    fn describe(&self, data: &Batches) -> String {
        let s = data.set();
        format!(
            "{} images of {}x{}x{} in {} classes",
            s.len,
            s.channels,
            s.size,
            s.size,
            self.0.class_names().len()
        )
    }
    fn per_epoch(&self, data: &Batches) -> u64 {
        data.per_epoch()
    }
    fn batch(&self, data: &mut Batches, index: u64, device: &Device) -> Real {
        data.real(index, device)
    }
    fn fakes(&mut self, g: &M::G, real: &Real) -> Tensor<4> {
        let n = real.images.dims()[0];
        let z = self.0.noise(n, &real.images.device());
        self.0.generate(g, z, labels_of(real))
    }
    fn d_loss(&mut self, d: &M::D, real: &Real, fake: &Tensor<4>) -> Losses {
        self.0.d_loss(
            d,
            real.images.clone(),
            fake.clone().detach(),
            labels_of(real),
        )
    }
    fn after_d_step(&mut self, d: M::D) -> M::D {
        self.0.after_d_step(d)
    }
    fn g_loss(&mut self, _g: &M::G, d: &M::D, real: Real, fake: Tensor<4>) -> Losses {
        let labels = labels_of(&real);
        self.0.g_loss(d, fake, labels)
    }
    const DIFF_AUGMENT: bool = true;
    fn augment(
        &self,
        aug: &DiffAugment,
        real: &Real,
        fake: &Tensor<4>,
    ) -> Option<(Real, Tensor<4>)> {
        Some(augmented(aug, real, fake))
    }
    /// One row per class (at most `n` images; see [`class_rows`]).
    fn probe(&self, _data: &Batches, seed: u64, n: usize, device: &Device) -> Self::Probe {
        device.seed(mix(seed, FIXED_NOISE));
        let (rows, per_row) = class_rows(n, self.0.class_names().len());
        let labels = label_tensor(class_row_labels(rows, per_row), device);
        (self.0.noise(rows * per_row, device), labels)
    }
    fn grid(&self, g: &M::G, (z, labels): &Self::Probe) -> (Tensor<4>, usize) {
        let (k, n) = (self.0.class_names().len(), z.dims()[0]);
        let per_row = class_rows(n, k).1;
        (self.0.generate(g, z.clone(), labels.clone()), per_row)
    }
}

impl<M: ConditionalGan> Sample for Conditional<M> {
    fn sample_noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.0.noise(n, device)
    }
    /// Classes drawn uniformly from the device RNG (which the caller seeded).
    fn sample(&self, g: &M::G, noise: Tensor<2>) -> Tensor<4> {
        let device = noise.device();
        let n = noise.dims()[0];
        let labels = random_labels(n, self.0.class_names().len().max(1), &device);
        self.0.generate(g, noise, labels)
    }
}

impl<M: ConditionalGan> SampleClass for Conditional<M> {
    fn class_names(&self) -> Vec<String> {
        self.0.class_names()
    }
    fn sample_classes(&self, g: &M::G, noise: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        self.0.generate(g, noise, labels)
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

/// What a parameter tensor is, for the counts of `zoo info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParamKind {
    Trainable,
    /// Batch norm's running mean and variance: state, not parameters.
    Running,
    /// Not trained (conditional batch norm's unit affine part).
    Frozen,
}

/// Every float tensor of a module: (module path, module type, field name, shape, kind).
/// Counted on an autodiff device, where trainable parameters require gradients.
fn census<T: Module>(m: &T) -> Vec<(String, String, String, Vec<usize>, ParamKind)> {
    #[derive(Default)]
    struct Census {
        path: Vec<(String, String)>,
        rows: Vec<(String, String, String, Vec<usize>, ParamKind)>,
    }
    impl burn::module::ModuleVisitor for Census {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.path
                .push((name.to_string(), container_type.to_string()));
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let kind = if param.val().is_require_grad() {
                ParamKind::Trainable
            } else if self.path.iter().any(|(p, _)| p.starts_with("running_")) {
                ParamKind::Running
            } else {
                ParamKind::Frozen
            };
            // The last entry is the field holding the tensor; its container is the layer.
            let (field, layer) = self.path.last().cloned().unwrap_or_default();
            let module: Vec<&str> = self.path[..self.path.len().saturating_sub(1)]
                .iter()
                .map(|(n, _)| n.as_str())
                .collect();
            let layer = layer.rsplit(':').next().unwrap_or_default().to_string();
            let shape = param.lazy_shape().dims::<D>().to_vec();
            self.rows
                .push((module.join("."), layer, field, shape, kind));
        }
    }
    let mut c = Census::default();
    m.visit(&mut c);
    c.rows
}

/// "1,234 (+ 56 batch-norm running statistics)", and ", 12 frozen" when some parameters are
/// not trained (conditional batch norm's unit affine part): counted on an autodiff device.
pub fn param_summary<T: Module>(m: &T) -> String {
    let rows = census(m);
    let count = |k: ParamKind| -> usize {
        rows.iter()
            .filter(|r| r.4 == k)
            .map(|r| r.3.iter().product::<usize>())
            .sum()
    };
    let mut out = group_digits(count(ParamKind::Trainable));
    let mut extra = Vec::new();
    if count(ParamKind::Running) > 0 {
        extra.push(format!(
            "{} batch-norm running statistics",
            group_digits(count(ParamKind::Running))
        ));
    }
    if count(ParamKind::Frozen) > 0 {
        extra.push(format!("{} frozen", group_digits(count(ParamKind::Frozen))));
    }
    if !extra.is_empty() {
        out.push_str(&format!(" (+ {})", extra.join(", ")));
    }
    out
}

/// `zoo info`'s table of a network: one row per layer (its path, type, trainable tensors'
/// shapes and their parameter count; running statistics and frozen tensors are named, not
/// counted), so the rows add up to [`param_summary`]'s first figure.
pub fn layer_table<T: Module>(m: &T) -> String {
    let rows = census(m);
    let mut layers: Vec<(String, String, Vec<String>, usize)> = Vec::new();
    for (module, layer, field, shape, kind) in rows {
        let idx = match layers.iter().position(|l| l.0 == module && l.1 == layer) {
            Some(i) => i,
            None => {
                layers.push((module, layer, Vec::new(), 0));
                layers.len() - 1
            }
        };
        let entry = &mut layers[idx];
        let n: usize = shape.iter().product();
        let shape = format!("{shape:?}");
        match kind {
            ParamKind::Trainable => {
                entry.3 += n;
                entry.2.push(format!("{field} {shape}"));
            }
            ParamKind::Running => entry.2.push(format!("({field})")),
            ParamKind::Frozen => entry.2.push(format!("({field} {shape}, frozen)")),
        }
    }
    let w0 = layers.iter().map(|l| l.0.len()).max().unwrap_or(0).max(5);
    let w1 = layers.iter().map(|l| l.1.len()).max().unwrap_or(0).max(4);
    let mut out = String::new();
    for (module, layer, tensors, n) in &layers {
        let module = if module.is_empty() { "(top)" } else { module };
        out += &format!(
            "  {module:<w0$}  {layer:<w1$}  {:>11}  {}\n",
            group_digits(*n),
            tensors.join(", ")
        );
    }
    out
}

/// `1234567` → `1,234,567`.
pub fn group_digits(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

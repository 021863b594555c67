//! Run configuration: typed serde structs with full defaults in code, resolved in layers
//! (model defaults < `--config FILE` < `--set key=value` / flags), merged as TOML tables
//! *before* the typed deserialize so that every layer is validated the same way.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// The whole configuration of a run; `M` is the model's own section.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig<M> {
    /// The model's own knobs (`[model]`).
    pub model: M,
    /// What to train on (`[data]`).
    pub data: DataConfig,
    /// The training loop (`[train]`).
    pub train: TrainConfig,
    /// One Adam optimizer per player (`[optim.g]`, `[optim.d]`).
    pub optim: Optimizers,
}

/// Where the images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// MNIST handwritten digits, from the four IDX files.
    #[default]
    Mnist,
    /// Zalando's Fashion-MNIST, from the four IDX files.
    FashionMnist,
    /// A folder of png/jpg images (searched recursively), resized to `image_size`.
    Folder,
    /// 2-D toy mixture: 8 Gaussians evenly spaced on a circle (VEEGAN/PacGAN's ring).
    Ring8,
    /// 2-D toy mixture: 25 Gaussians on the grid {−4, −2, 0, 2, 4}².
    Grid25,
}

impl DatasetKind {
    /// The name used on the command line and as the default folder name.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Folder => "folder",
            DatasetKind::Ring8 => "ring8",
            DatasetKind::Grid25 => "grid25",
        }
    }

    /// The 2-D toy mixtures (points, not images).
    pub fn is_toy(self) -> bool {
        matches!(self, DatasetKind::Ring8 | DatasetKind::Grid25)
    }
}

/// `[data]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `mnist`, `fashion-mnist` or `folder`.
    pub dataset: DatasetKind,
    /// Folder holding the data. Unset: `$ZOO_DATA/<dataset>`, else `./data/<dataset>`.
    pub dir: Option<PathBuf>,
    /// Side of the square images fed to the networks (MNIST is 28).
    pub image_size: usize,
    /// 1 (gray) or 3 (RGB); of domain A for image-to-image models.
    pub channels: usize,
    /// Image-to-image models: the channels of domain B when they differ from A's (gray ↔ RGB,
    /// the reference's `output_nc`). Unset: `channels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels_b: Option<usize>,
    /// Use only the first N training images (quick experiments, tests).
    pub limit: Option<usize>,
    /// Image-to-image models (cyclegan): two domain folders `[A, B]`, or one root folder with
    /// the reference layout `trainA/ trainB/ (testA/ testB/)`. `zoo train … --domains A B`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<PathBuf>,
    /// The class names of a conditional run, index order. Unset: read from the data (the
    /// built-in sets' classes, or the class sub-folders of a folder); a conditional run
    /// records them here, so that it samples by name without its data.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// The 2-D toy mixtures (`dataset = "ring8"` or `"grid25"`).
    pub toy: ToyConfig,
}

/// `[data.toy]`: the 2-D mixtures' geometry (defaults: the VEEGAN/PacGAN protocol).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToyConfig {
    /// Standard deviation of each Gaussian; unset: 0.01 for ring8, 0.05 for grid25.
    pub std: Option<f64>,
    /// Radius of the ring.
    pub radius: f64,
    /// Points in the training set.
    pub points: usize,
    /// Samples scored by `zoo eval`.
    pub eval_samples: usize,
}

impl Default for ToyConfig {
    fn default() -> Self {
        Self {
            std: None,
            radius: 1.0,
            points: 100_000,
            eval_samples: 2500,
        }
    }
}

impl DataConfig {
    /// The channels of domains A and B (B's are `channels_b`, else A's).
    pub fn domain_channels(&self) -> (usize, usize) {
        (self.channels, self.channels_b.unwrap_or(self.channels))
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dataset: DatasetKind::Mnist,
            dir: None,
            image_size: 28,
            channels: 1,
            channels_b: None,
            limit: None,
            domains: Vec::new(),
            classes: Vec::new(),
            toy: ToyConfig::default(),
        }
    }
}

/// Learning-rate schedule shared by both players.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "ScheduleToml", into = "ScheduleToml")]
pub enum LrSchedule {
    /// The configured learning rate throughout.
    #[default]
    Constant,
    /// Constant until `start` (a step), then linearly down to zero at the last step
    /// (CycleGAN's `n_epochs` + `n_epochs_decay`).
    LinearDecay {
        /// The step at which the decay begins.
        start: u64,
    },
    /// CycleGAN's rule, by epoch: the full rate for `start_epoch` epochs, then during epoch
    /// `e` (0-based) the factor `1 − (e + 1 − start_epoch) / (decay_epochs + 1)`, where
    /// `decay_epochs` are the run's remaining epochs (`n_epochs` = `start_epoch`,
    /// `n_epochs_decay` = `train.epochs − start_epoch`).
    LinearDecayEpochs {
        /// The first epoch with a reduced rate (the reference's `n_epochs`).
        start_epoch: u64,
    },
}

/// The TOML form: `kind`, plus `start` for `linear_decay` only.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleToml {
    kind: ScheduleKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_epoch: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ScheduleKind {
    Constant,
    LinearDecay,
}

impl TryFrom<ScheduleToml> for LrSchedule {
    type Error = String;
    fn try_from(t: ScheduleToml) -> std::result::Result<Self, String> {
        match (t.kind, t.start, t.start_epoch) {
            (ScheduleKind::Constant, None, None) => Ok(LrSchedule::Constant),
            (ScheduleKind::Constant, _, _) => {
                Err("`start` and `start_epoch` only apply to kind = \"linear_decay\"".into())
            }
            (ScheduleKind::LinearDecay, Some(start), None) => Ok(LrSchedule::LinearDecay { start }),
            (ScheduleKind::LinearDecay, None, Some(start_epoch)) => {
                Ok(LrSchedule::LinearDecayEpochs { start_epoch })
            }
            (ScheduleKind::LinearDecay, Some(_), Some(_)) => {
                Err("give `start` (a step) or `start_epoch`, not both".into())
            }
            (ScheduleKind::LinearDecay, None, None) => Err(
                "kind = \"linear_decay\" needs `start` (the step where the decay begins) or \
                 `start_epoch`"
                    .into(),
            ),
        }
    }
}

impl From<LrSchedule> for ScheduleToml {
    fn from(s: LrSchedule) -> Self {
        match s {
            LrSchedule::Constant => ScheduleToml {
                kind: ScheduleKind::Constant,
                start: None,
                start_epoch: None,
            },
            LrSchedule::LinearDecay { start } => ScheduleToml {
                kind: ScheduleKind::LinearDecay,
                start: Some(start),
                start_epoch: None,
            },
            LrSchedule::LinearDecayEpochs { start_epoch } => ScheduleToml {
                kind: ScheduleKind::LinearDecay,
                start: None,
                start_epoch: Some(start_epoch),
            },
        }
    }
}

impl LrSchedule {
    /// Multiplier of the base learning rate at `step` (0-based) of a run of `total` steps with
    /// `per_epoch` steps per epoch.
    pub fn factor(&self, step: u64, total: u64, per_epoch: u64) -> f64 {
        match *self {
            LrSchedule::LinearDecayEpochs { start_epoch } => {
                let per_epoch = per_epoch.max(1);
                let epoch = step / per_epoch;
                let epochs = total.div_ceil(per_epoch);
                let decay = epochs.saturating_sub(start_epoch);
                if epoch < start_epoch {
                    1.0
                } else {
                    1.0 - (epoch + 1 - start_epoch) as f64 / (decay + 1) as f64
                }
            }
            LrSchedule::Constant => 1.0,
            LrSchedule::LinearDecay { start } => {
                if step < start || total <= start {
                    1.0
                } else {
                    1.0 - (step - start + 1) as f64 / (total - start + 1) as f64
                }
            }
        }
    }
}

/// `[train]`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Generator updates to run (each preceded by `d_steps` discriminator updates).
    pub steps: u64,
    /// If set, overrides `steps`: train this many passes over the data.
    pub epochs: Option<u64>,
    /// Images per batch.
    pub batch_size: usize,
    /// Discriminator updates per generator update (WGAN's n_critic).
    pub d_steps: usize,
    /// Seed of every random choice (init, noise, dropout, data order); any u64.
    #[serde(with = "full_u64")]
    pub seed: u64,
    /// Write a sample grid every N steps (and at the end).
    pub sample_every: u64,
    /// Write a checkpoint every N steps (and at the end).
    pub checkpoint_every: u64,
    /// Append a row to metrics.csv every N steps.
    pub log_every: u64,
    /// How many checkpoints to keep (the newest).
    pub keep_checkpoints: usize,
    /// Images in each sample grid (a square number makes a square grid).
    pub grid_samples: usize,
    /// Every N steps, score the generator (FD and class coverage with zoo's classifier; mnist
    /// and fashion-mnist) into metrics.csv and keep the best checkpoint by FD as
    /// `checkpoints/best`. 0 = off.
    pub eval_every: u64,
    /// Samples per evaluation during training.
    pub eval_samples: usize,
    /// What a non-finite loss does: stop the run (keeping the last good checkpoint) or skip
    /// the update.
    pub on_nonfinite: OnNonFinite,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// An exponential moving average of the generator (off by default).
    pub ema: EmaConfig,
    /// DiffAugment of D's real and fake inputs (off by default; `zoo config` lists the keys).
    pub diffaug: crate::augment::DiffAugment,
}

/// `[train.ema]`: an exponential moving average of the generator's weights, used for grids,
/// `zoo sample` and `zoo eval` when on.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmaConfig {
    /// Weight of the old average per step (e.g. 0.999); 0 = off.
    pub decay: f64,
    /// Steps before which the average is a plain copy of the generator.
    pub start: u64,
    /// Ramp-up (StyleGAN2-ADA's `ema_rampup`): when > 0 the average's half-life is at most this
    /// share of the steps so far, so a short run does not carry its first generators; `decay`
    /// caps it for long runs. 0 = a fixed decay from `start` on.
    pub rampup: f64,
}

impl EmaConfig {
    /// The weight of the old average for the update after step `step` (0-based).
    pub fn keep(&self, step: u64) -> f64 {
        if step < self.start {
            return 0.0;
        }
        if self.rampup > 0.0 {
            let half_life = self.rampup * (step - self.start + 1) as f64;
            self.decay.min(0.5f64.powf(1.0 / half_life))
        } else {
            self.decay
        }
    }
}

/// `train.on_nonfinite`: what happens when a loss is NaN or infinite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNonFinite {
    /// Stop with a message naming the step and the loss term; the last checkpoint stays.
    #[default]
    Stop,
    /// Skip the update (the networks and optimizers keep their state) and go on; a run that
    /// skips `MAX_SKIPPED_IN_A_ROW` steps in a row stops.
    Skip,
}

/// Consecutive skipped steps after which `on_nonfinite = "skip"` gives up.
pub const MAX_SKIPPED_IN_A_ROW: u64 = 20;

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            steps: 5000,
            epochs: None,
            batch_size: 64,
            d_steps: 1,
            seed: 42,
            sample_every: 250,
            checkpoint_every: 500,
            log_every: 10,
            keep_checkpoints: 2,
            grid_samples: 64,
            eval_every: 0,
            eval_samples: 2000,
            on_nonfinite: OnNonFinite::Stop,
            lr_schedule: LrSchedule::Constant,
            ema: EmaConfig::default(),
            diffaug: crate::augment::DiffAugment::default(),
        }
    }
}

/// `[optim]`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Optimizers {
    /// The generator's Adam.
    pub g: Adam,
    /// The discriminator's Adam.
    pub d: Adam,
}

/// Adam settings of one player.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Adam {
    /// Learning rate.
    pub lr: f64,
    /// First-moment decay (DCGAN's 0.5).
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Added to the denominator √v̂ (PyTorch's default 1e-8, which the papers' reference code
    /// used; burn's own default, 1e-5, damps the small gradients of deep generators).
    pub epsilon: f64,
}

impl Default for Adam {
    fn default() -> Self {
        Self {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            epsilon: 1e-8,
        }
    }
}

impl Adam {
    /// The optimizer for these settings: burn's Adam, fused on flex ([`zoo_kernels::Adam`]).
    pub fn init(&self) -> burn::optim::ModuleOptimizer {
        let adam =
            zoo_kernels::Adam::new(self.beta1 as f32, self.beta2 as f32, self.epsilon as f32);
        burn::optim::ModuleOptimizer::from(adam)
    }

    fn validate(&self, who: &str) -> Result<()> {
        ensure!(
            self.lr.is_finite() && self.lr > 0.0,
            "optim.{who}.lr must be a positive number (got {}); try 2e-4",
            self.lr
        );
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            ensure!(
                (0.0..1.0).contains(&b),
                "optim.{who}.{name} must be in [0, 1) (got {b})"
            );
        }
        ensure!(
            self.epsilon.is_finite() && self.epsilon > 0.0,
            "optim.{who}.epsilon must be a positive number (got {}); try 1e-8",
            self.epsilon
        );
        Ok(())
    }
}

impl<M> RunConfig<M> {
    /// Checks the engine's sections; each message names the key and a valid value.
    pub fn validate(&self) -> Result<()> {
        let t = &self.train;
        ensure!(t.steps > 0, "train.steps must be at least 1 (got 0)");
        ensure!(
            t.epochs != Some(0),
            "train.epochs must be at least 1 (got 0)"
        );
        ensure!(
            t.batch_size > 0,
            "train.batch_size must be at least 1 (got 0); try 64"
        );
        ensure!(t.d_steps > 0, "train.d_steps must be at least 1 (got 0)");
        for (name, v) in [
            ("sample_every", t.sample_every),
            ("checkpoint_every", t.checkpoint_every),
            ("log_every", t.log_every),
        ] {
            ensure!(v > 0, "train.{name} must be at least 1 (got 0)");
        }
        ensure!(
            t.keep_checkpoints > 0,
            "train.keep_checkpoints must be at least 1 (got 0)"
        );
        ensure!(
            (1..=1024).contains(&t.grid_samples),
            "train.grid_samples must be between 1 and 1024 (got {})",
            t.grid_samples
        );
        ensure!(
            (100..=60_000).contains(&t.eval_samples),
            "train.eval_samples must be between 100 and 60000 (got {})",
            t.eval_samples
        );
        ensure!(
            (0.0..1.0).contains(&t.ema.decay),
            "train.ema.decay must be in [0, 1) (got {}); 0 turns the EMA off, 0.999 is usual",
            t.ema.decay
        );
        t.diffaug.validate()?;
        let d = &self.data;
        ensure!(
            !(t.diffaug.is_on() && d.dataset.is_toy()),
            "train.diffaug augments images, and data.dataset = \"{}\" is 2-D points; turn \
             train.diffaug off or train on images",
            d.dataset.name()
        );
        ensure!(
            d.channels == 1 || d.channels == 3,
            "data.channels must be 1 (gray) or 3 (RGB) (got {})",
            d.channels
        );
        ensure!(
            matches!(d.channels_b, None | Some(1 | 3)),
            "data.channels_b must be 1 (gray) or 3 (RGB) (got {})",
            d.channels_b.unwrap_or_default()
        );
        ensure!(
            (1..=1024).contains(&d.image_size),
            "data.image_size must be between 1 and 1024 (got {})",
            d.image_size
        );
        ensure!(d.limit != Some(0), "data.limit must be at least 1 (got 0)");
        self.optim.g.validate("g")?;
        self.optim.d.validate("d")?;
        Ok(())
    }
}

/// Serializes a config to a TOML table.
pub fn to_table<T: Serialize>(value: &T) -> Result<toml::Table> {
    toml::Table::try_from(value).context("cannot represent the config as TOML")
}

/// Deep-merges `over` into `base`: tables merge key by key, everything else is replaced.
pub fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            // A tagged section (`kind = ...`) that changes variant is replaced, not merged,
            // so the old variant's fields do not linger.
            (Some(toml::Value::Table(b)), toml::Value::Table(o))
                if !(o.contains_key("kind") && b.get("kind") != o.get("kind")) =>
            {
                merge(b, o)
            }
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Reads a TOML config file into a table (syntax errors name the file and line).
pub fn read_file(path: &Path) -> Result<toml::Table> {
    let text = crate::io::read_regular_text(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    text.parse::<toml::Table>().map_err(|e| {
        let line = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map_or(0, |before| before.lines().count().max(1));
        anyhow::anyhow!(
            "config file {} line {line}: {}",
            path.display(),
            e.message().trim()
        )
    })
}

/// Applies one `key.path=value` override. The value is read as TOML (`200`, `2e-4`, `true`,
/// `"text"`, `[1, 2]`) and, failing that, as a bare string (`minimax`, `/data/x`).
pub fn apply_set(table: &mut toml::Table, assignment: &str) -> Result<()> {
    let Some((key, raw)) = assignment.split_once('=') else {
        bail!("--set expects key=value, e.g. --set train.steps=200 (got `{assignment}`)");
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').collect();
    ensure!(
        !key.is_empty() && parts.iter().all(|p| !p.is_empty()),
        "--set key `{key}` is not a dotted path like train.steps"
    );
    let raw = raw.trim();
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.into())),
        Err(_) => toml::Value::String(raw.to_string()),
    };
    set_value(table, key, value)
}

/// Sets `key.path` to `value`, creating sections as needed.
pub fn set_value(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().expect("split yields one part");
    let mut cur = table;
    for (i, p) in path.iter().enumerate() {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = match entry {
            toml::Value::Table(t) => t,
            _ => bail!(
                "--set {key}: `{}` is a value, not a section",
                parts[..=i].join(".")
            ),
        };
    }
    // `model.loss=minimax` is shorthand for `model.loss.kind=minimax` on tagged sections.
    let tagged = matches!(cur.get(*last), Some(toml::Value::Table(t)) if t.contains_key("kind"));
    if let (true, toml::Value::String(s)) = (tagged, &value) {
        let mut t = toml::Table::new();
        t.insert("kind".into(), toml::Value::String(s.clone()));
        cur.insert(last.to_string(), toml::Value::Table(t));
        return Ok(());
    }
    // Switching a tagged section's kind drops the old variant's fields.
    if *last == "kind" && cur.get("kind") != Some(&value) {
        cur.retain(|k, _| k == "kind");
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

/// Deserializes a merged table, naming the offending key on error.
pub fn from_table<T: DeserializeOwned>(table: toml::Table) -> Result<T> {
    let de = toml::Value::Table(table);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let inner = inner.lines().next().unwrap_or_default().trim().to_string();
        let hint = "`zoo config <model>` lists every key with its default";
        if path.is_empty() || path == "." {
            anyhow::anyhow!("invalid config: {inner}; {hint}")
        } else {
            anyhow::anyhow!("invalid config at `{path}`: {inner}; {hint}")
        }
    })
}

/// The layers a command puts over a base config, in order: a file, `--set` assignments, then
/// command-line flags such as `--steps` (as `(key, value)`).
#[derive(Debug, Clone, Default)]
pub struct Layers<'a> {
    /// `--config FILE`.
    pub file: Option<&'a Path>,
    /// `--set key=value`, in order.
    pub sets: &'a [String],
    /// Flags, as dotted keys and TOML values.
    pub flags: Vec<(&'static str, toml::Value)>,
}

/// The one config resolver: `base` < file < `--set` < flags, merged as TOML tables and then
/// deserialized once, so every layer is checked the same way. `base` is the model's defaults
/// for a new run, or the run's own `config.toml` for a resumed one.
pub fn resolve_table<T: DeserializeOwned>(mut table: toml::Table, layers: &Layers) -> Result<T> {
    // The user's own layers (file, --set), alone: which of the length keys they set.
    let file = layers.file.map(read_file).transpose()?;
    let mut user = file.clone().unwrap_or_default();
    for s in layers.sets {
        apply_set(&mut user, s)?;
    }
    let user_train = user.get("train").and_then(toml::Value::as_table);
    let sets_key = |k: &str| user_train.is_some_and(|t| t.contains_key(k));
    ensure!(
        !(sets_key("steps") && sets_key("epochs")),
        "train.steps and train.epochs are both set (in --config or --set): the length is one or \
         the other; remove one of them"
    );
    if let Some(f) = file {
        merge(&mut table, f);
    }
    for s in layers.sets {
        apply_set(&mut table, s)?;
    }
    // train.steps given over a default budget in epochs (CycleGAN's): the steps decide.
    if sets_key("steps")
        && let Some(toml::Value::Table(t)) = table.get_mut("train")
    {
        t.remove("epochs");
    }
    for (key, value) in &layers.flags {
        set_value(&mut table, key, value.clone())?;
        // --steps wins over an epochs budget from the file, and vice versa.
        if *key == "train.steps"
            && let Some(toml::Value::Table(t)) = table.get_mut("train")
        {
            t.remove("epochs");
        }
    }
    from_table(table)
}

/// [`resolve_table`] over typed defaults.
pub fn resolve<T: Serialize + DeserializeOwned>(defaults: &T, layers: &Layers) -> Result<T> {
    resolve_table(to_table(defaults)?, layers)
}

impl<M: Serialize + DeserializeOwned + Default> RunConfig<M> {
    /// Resolves and validates a run config (see [`resolve_table`]).
    pub fn resolve(base: toml::Table, layers: &Layers) -> Result<Self> {
        let cfg: Self = resolve_table(base, layers)?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// A flag's integer value as TOML: an integer where TOML's (signed 64-bit) can hold it, else
/// its decimal text (which [`full_u64`] fields read back exactly; others reject it by name).
pub fn int(v: u64) -> toml::Value {
    match i64::try_from(v) {
        Ok(i) => toml::Value::Integer(i),
        Err(_) => toml::Value::String(v.to_string()),
    }
}

/// Serde for a `u64` over its whole range in TOML, whose integers stop at 2^63 − 1: written as
/// an integer when it fits, else as a decimal string; read from either (`--set
/// train.seed=18446744073709551615` arrives as text).
pub mod full_u64 {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Writes `v` as an integer, or as text above `i64::MAX`.
    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        match i64::try_from(*v) {
            Ok(i) => s.serialize_i64(i),
            Err(_) => s.serialize_str(&v.to_string()),
        }
    }

    /// Reads a non-negative integer, or its decimal text.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(i64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(i) => u64::try_from(i).map_err(|_| {
                D::Error::custom(format!("must be between 0 and {} (got {i})", u64::MAX))
            }),
            Raw::Text(t) => t.trim().parse::<u64>().map_err(|_| {
                D::Error::custom(format!(
                    "must be an integer between 0 and {} (got `{t}`)",
                    u64::MAX
                ))
            }),
        }
    }
}

/// Renders a config as TOML text.
pub fn to_toml<T: Serialize>(value: &T) -> Result<String> {
    toml::to_string(value).context("cannot write the config as TOML")
}

impl<M: Serialize> RunConfig<M> {
    /// The config as `zoo config` shows it: only the sections that apply (`[data.toy]` only for
    /// the 2-D mixtures), and with `train.epochs` set, `steps` shown commented out with the word
    /// that epochs decide the length; `model_notes` (comment lines,
    /// [`crate::game::Game::unset_notes`]) right under `[model]`. Valid TOML that resolves to the
    /// same run.
    pub fn to_display_toml(&self, model_notes: &[String]) -> Result<String> {
        let text = to_toml(self)?;
        let skip_toy = !self.data.dataset.is_toy();
        let mut out = String::new();
        let mut section = "";
        for line in text.lines() {
            if line.starts_with('[') {
                section = line;
            }
            if skip_toy && (section == "[data.toy]") {
                continue;
            }
            match self.train.epochs {
                Some(epochs) if section == "[train]" && line.starts_with("steps = ") => {
                    out += &format!(
                        "# {line}: unused, `epochs = {epochs}` sets the length (remove epochs, \
                         or pass --steps, to train by steps)\n"
                    );
                }
                _ => {
                    out += line;
                    out.push('\n');
                }
            }
            if line == "[model]" {
                for note in model_notes {
                    debug_assert!(note.starts_with('#'), "a note is a comment: {note}");
                    out += note;
                    out.push('\n');
                }
            }
        }
        // The blank line that closed a dropped section.
        while out.contains("\n\n\n") {
            out = out.replace("\n\n\n", "\n\n");
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loss::Adversarial;

    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct M {
        hidden: usize,
        loss: Adversarial,
    }
    impl Default for M {
        fn default() -> Self {
            Self {
                hidden: 8,
                loss: Adversarial::NonSaturating,
            }
        }
    }

    fn defaults() -> RunConfig<M> {
        RunConfig::default()
    }

    #[test]
    fn display_toml_shows_only_what_applies() {
        let mut cfg = defaults();
        let shown = cfg.to_display_toml(&[]).expect("toml");
        assert!(
            !shown.contains("[data.toy]") && !shown.contains("radius"),
            "{shown}"
        );
        assert!(
            shown.contains("\nsteps = ") && !shown.contains("# steps"),
            "{shown}"
        );
        let back: RunConfig<M> = from_table(toml::from_str(&shown).expect("valid")).expect("cfg");
        assert_eq!(to_toml(&back).expect("t"), to_toml(&cfg).expect("t"));

        cfg.data.dataset = DatasetKind::Ring8;
        cfg.train.epochs = Some(7);
        let note = "# unset_key = 3   # unset: the rule".to_string();
        let shown = cfg
            .to_display_toml(std::slice::from_ref(&note))
            .expect("toml");
        assert!(shown.contains(&format!("[model]\n{note}\n")), "{shown}");
        assert!(shown.contains("[data.toy]\nradius"), "{shown}");
        assert!(
            shown.contains("# steps = ") && shown.contains("epochs = 7\n"),
            "{shown}"
        );
        assert!(!shown.contains("\n\n\n"));
        let back: RunConfig<M> = from_table(toml::from_str(&shown).expect("valid")).expect("cfg");
        assert_eq!(back.train.epochs, Some(7));
        assert_eq!(back.data.toy.points, cfg.data.toy.points);
    }

    #[test]
    fn seeds_keep_their_full_range_and_steps_win_over_default_epochs() {
        let mut base = defaults();
        base.train.epochs = Some(200);
        let set = |kv: &[&str]| {
            let sets: Vec<String> = kv.iter().map(|s| s.to_string()).collect();
            layered(&base, None, &sets)
        };
        let cfg = set(&["train.seed=18446744073709551615"]).expect("max seed");
        assert_eq!(cfg.train.seed, u64::MAX);
        // Written as text (TOML integers stop at 2^63 - 1) and read back exactly.
        let text = to_toml(&cfg).expect("toml");
        assert!(text.contains("seed = \"18446744073709551615\""), "{text}");
        let back: RunConfig<M> = from_table(toml::from_str(&text).expect("t")).expect("cfg");
        assert_eq!(back.train.seed, u64::MAX);
        assert_eq!(int(u64::MAX), toml::Value::String(u64::MAX.to_string()));
        assert!(set(&["train.seed=-1"]).is_err());
        // A user's train.steps replaces a default length in epochs; both at once is an error.
        let cfg = set(&["train.steps=3"]).expect("steps");
        assert_eq!((cfg.train.steps, cfg.train.epochs), (3, None));
        assert_eq!(set(&[]).expect("defaults").train.epochs, Some(200));
        let both = set(&["train.steps=3", "train.epochs=2"]).expect_err("both");
        assert!(format!("{both:#}").contains("both set"), "{both:#}");
    }

    /// The resolver with a file and `--set` layers only.
    fn layered<T: Serialize + DeserializeOwned>(
        defaults: &T,
        file: Option<&Path>,
        sets: &[String],
    ) -> Result<T> {
        let layers = Layers {
            file,
            sets,
            flags: Vec::new(),
        };
        resolve(defaults, &layers)
    }

    #[test]
    fn layers_apply_in_order() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "[train]\nsteps = 7\nbatch_size = 3\n[model]\nhidden = 5\n",
        )
        .expect("write");
        let c: RunConfig<M> = layered(
            &defaults(),
            Some(&file),
            &["train.steps=11".into(), "model.loss=minimax".into()],
        )
        .expect("resolve");
        assert_eq!(c.train.steps, 11); // --set beats the file
        assert_eq!(c.train.batch_size, 3); // the file beats the defaults
        assert_eq!(c.model.hidden, 5);
        assert_eq!(c.model.loss, Adversarial::Minimax);
        assert_eq!(c.train.seed, TrainConfig::default().seed); // untouched default
        // The resolved config round-trips through TOML text.
        let text = to_toml(&c).expect("toml");
        let back: RunConfig<M> = from_table(text.parse().expect("parse")).expect("typed");
        assert_eq!(to_toml(&back).expect("toml"), text);
    }

    #[test]
    fn tagged_sections_switch_variant_cleanly() {
        let c: RunConfig<M> = layered(
            &defaults(),
            None,
            &[
                "model.loss.kind=least_squares".into(),
                "model.loss.a=0".into(),
            ],
        )
        .expect("resolve");
        assert_eq!(
            c.model.loss,
            Adversarial::LeastSquares {
                a: 0.0,
                b: 1.0,
                c: 0.0
            }
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = layered(&defaults(), None, &["train.stepz=3".into()])
            .expect_err("unknown key")
            .to_string();
        assert!(
            err.contains("train.stepz") && err.contains("unknown field"),
            "{err}"
        );
        let err = layered(&defaults(), None, &["train.steps=many".into()])
            .expect_err("bad type")
            .to_string();
        assert!(err.contains("train.steps"), "{err}");
        let err = layered(&defaults(), None, &["model.loss=minmax".into()])
            .expect_err("bad variant")
            .to_string();
        assert!(
            err.contains("model.loss") && err.contains("minmax"),
            "{err}"
        );
        assert!(layered(&defaults(), None, &["train.steps".into()]).is_err());
        assert!(layered(&defaults(), None, &["train.steps.x=1".into()]).is_err());

        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[data]\nimage_size = 28\ncolour = 3\n").expect("write");
        let err = layered(&defaults(), Some(&file), &[])
            .expect_err("unknown key in file")
            .to_string();
        assert!(err.contains("data.colour"), "{err}");
        std::fs::write(&file, "[data\n").expect("write");
        let err = layered(&defaults(), Some(&file), &[])
            .expect_err("syntax")
            .to_string();
        assert!(err.contains("line 1"), "{err}");
    }

    #[test]
    fn validation_rejects_invalid_values() {
        let check = |set: &str, needle: &str| {
            let c: RunConfig<M> = layered(&defaults(), None, &[set.into()]).expect("typed");
            let err = c.validate().expect_err(set).to_string();
            assert!(err.contains(needle), "{set}: {err}");
        };
        check("optim.g.lr=0", "optim.g.lr");
        check("optim.d.lr=-1e-3", "optim.d.lr");
        check("optim.d.beta1=1.0", "optim.d.beta1");
        check("train.batch_size=0", "train.batch_size");
        check("train.steps=0", "train.steps");
        check("data.channels=2", "data.channels");
        assert!(defaults().validate().is_ok());
    }

    #[test]
    fn epoch_decay_follows_cyclegan() {
        // n_epochs = 3, n_epochs_decay = 2, 4 steps per epoch: the reference's lambda rule
        // 1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1), constant within an epoch.
        let s = LrSchedule::LinearDecayEpochs { start_epoch: 3 };
        let f: Vec<f64> = (0..20).map(|step| s.factor(step, 20, 4)).collect();
        for (step, &v) in f.iter().enumerate() {
            let e = (step / 4) as f64;
            let want = 1.0 - (e + 1.0 - 3.0).max(0.0) / 3.0;
            assert!((v - want).abs() < 1e-12, "step {step}: {v} vs {want}");
        }
        assert_eq!(f[11], 1.0);
        assert!((f[12] - 2.0 / 3.0).abs() < 1e-12);
        assert!((f[19] - 1.0 / 3.0).abs() < 1e-12);
        let c: RunConfig<M> = layered(
            &defaults(),
            None,
            &[
                "train.lr_schedule.kind=linear_decay".into(),
                "train.lr_schedule.start_epoch=3".into(),
            ],
        )
        .expect("valid");
        assert_eq!(c.train.lr_schedule, s);
    }

    #[test]
    fn linear_decay_reaches_zero_at_the_end() {
        let s = LrSchedule::LinearDecay { start: 100 };
        assert_eq!(s.factor(0, 200, 10), 1.0);
        assert_eq!(s.factor(99, 200, 10), 1.0);
        assert!((s.factor(100, 200, 10) - (1.0 - 1.0 / 101.0)).abs() < 1e-12);
        assert!((s.factor(199, 200, 10) - (1.0 - 100.0 / 101.0)).abs() < 1e-12);
        assert!(s.factor(150, 200, 10) > s.factor(151, 200, 10));
        assert_eq!(LrSchedule::Constant.factor(5, 10, 1), 1.0);
        let c: RunConfig<M> = layered(
            &defaults(),
            None,
            &[
                "train.lr_schedule.kind=linear_decay".into(),
                "train.lr_schedule.start=7".into(),
            ],
        )
        .expect("resolve");
        assert_eq!(c.train.lr_schedule, LrSchedule::LinearDecay { start: 7 });
        assert!(layered(&defaults(), None, &["train.lr_schedule.start=7".into()]).is_err());
    }
}

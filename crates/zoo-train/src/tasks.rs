//! What the commands that train or use one run do, generic over the model: `train`,
//! `sample`, `translate`, `bench` and `info`. The CLI's registry adapts them to each model;
//! `eval` and `compare` are zoo-eval's.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use zoo_core::config::{self, Layers, RunConfig, int};
use zoo_core::data::pair::{Mapping, counterpart_dir, read_pair_info};
use zoo_core::data::similarity::{ErrorSums, TranslationError};
use zoo_core::data::{list_images_of, load_image_files};
use zoo_core::game::{
    Capability, ClassSampler, Direction, Game, Role, Sampler, Translator, class_row_labels,
    class_rows, grid_columns,
};
use zoo_core::gan::{group_digits, label_tensor, layer_table, param_summary};
use zoo_core::io::write_atomic;
use zoo_core::streams::{SAMPLE, mix};

use crate::bench::BenchReport;
use crate::checkpoint::{init_networks, load_generator};
use crate::engine::{self, ObserverFactory, Summary, TrainOptions};
use crate::output::{png_bytes, save_grid, to_images};
use crate::run::{Checkpoint, RunDir};

/// What `zoo train` asks for.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--set key=value`, in order.
    pub sets: Vec<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--domains` (image-to-image models).
    pub domains: Vec<PathBuf>,
    /// `--steps`.
    pub steps: Option<u64>,
    /// `--epochs`.
    pub epochs: Option<u64>,
    /// `--batch-size`.
    pub batch_size: Option<usize>,
    /// `--seed`.
    pub seed: Option<u64>,
    /// `--out`: the folder that receives run folders.
    pub out: PathBuf,
    /// `--resume RUN_DIR`.
    pub resume: Option<PathBuf>,
    /// Where to compute.
    pub device: Device,
    /// Show a progress bar.
    pub progress: bool,
    /// Set by a signal handler to stop training gracefully (see [`engine::Interrupted`]).
    pub stop: Option<engine::StopSignal>,
    /// `--time-limit`: end this session after so much training ([`TrainOptions::time_limit`]).
    pub time_limit: Option<std::time::Duration>,
    /// Called with the run folder once it exists, before the first step (`--watch`).
    pub on_run: Option<RunHook>,
}

/// `--time-limit`: seconds, or a number with `s`, `m` or `h` (`90`, `90s`, `10m`, `1.5h`).
pub fn parse_time_limit(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    let secs = num
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v * unit)
        .filter(|v| *v <= 1e9)
        .ok_or_else(|| {
            "not a positive duration; give seconds, or a number with s, m or h (600, 10m, 1.5h)"
                .to_string()
        })?;
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// What a [`RunHook`] calls.
pub type RunCallback = dyn Fn(&Path) -> Result<()> + Send + Sync;

/// A callback on the run folder of a training session ([`TrainRequest::on_run`]).
#[derive(Clone)]
pub struct RunHook(pub Arc<RunCallback>);

impl std::fmt::Debug for RunHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunHook")
    }
}

/// What `zoo train` did.
#[derive(Debug, Clone)]
pub struct TrainReport {
    /// The run folder.
    pub run_dir: PathBuf,
    /// The engine's summary.
    pub summary: Summary,
}

/// What `zoo sample` asks for.
#[derive(Debug, Clone)]
pub struct SampleRequest {
    /// The run folder.
    pub run_dir: PathBuf,
    /// How many images.
    pub n: usize,
    /// Noise seed (default: the run's seed).
    pub seed: Option<u64>,
    /// Grid PNG path (default `<run>/sample.png`).
    pub out: Option<PathBuf>,
    /// Write each image as its own PNG here instead of a grid.
    pub out_dir: Option<PathBuf>,
    /// `--class`: a class name or index of a conditional run, or `all` (one row per class).
    pub class: Option<String>,
    /// `--save-noise`: also write the latent codes, `[n, latent]` float32, as a `.npy` file
    /// (to feed the same noise to an exported generator elsewhere).
    pub save_noise: Option<PathBuf>,
    /// Where to compute.
    pub device: Device,
}

/// The labels `zoo sample --class PICK` asks for among `names`, and the grid's row length:
/// `all` is one row per class (at most `n` images), a name (or else an index) is `n` images
/// of that class.
pub fn class_pick(names: &[String], pick: &str, n: usize) -> Result<(Vec<i64>, usize)> {
    let k = names.len();
    if pick == "all" {
        let (rows, per_row) = class_rows(n, k);
        return Ok((class_row_labels(rows, per_row), per_row));
    }
    let listed = || {
        if names.iter().enumerate().all(|(i, c)| *c == i.to_string()) {
            return format!("0 to {}", k.saturating_sub(1));
        }
        let shown: Vec<String> = names
            .iter()
            .take(12)
            .enumerate()
            .map(|(i, c)| format!("{i} = {c}"))
            .collect();
        format!("{}{}", shown.join(", "), if k > 12 { ", …" } else { "" })
    };
    let index = match names.iter().position(|c| c == pick) {
        Some(i) => i,
        None => match pick.parse::<usize>() {
            Ok(i) if i < k => i,
            Ok(i) => anyhow::bail!(
                "--class {i} is out of range: this run has {k} classes ({}); pass an index \
                 below {k}, a class name or `all`",
                listed()
            ),
            Err(_) => anyhow::bail!(
                "--class `{pick}` is not a class of this run; its classes are {}; pass a name, \
                 an index or `all`",
                listed()
            ),
        },
    };
    Ok((vec![index as i64; n], grid_columns(n)))
}

#[derive(Debug, Clone)]
pub struct TranslateRequest {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Which generator.
    pub direction: Direction,
    /// Folder of images to translate (searched recursively).
    pub input: PathBuf,
    /// Folder that receives the translations and `index.html`.
    pub out: PathBuf,
    /// Folder of the inputs' true counterparts (same file names), to score against; unset:
    /// found from the pair's `zoo-pair.toml` when the input folder belongs to one.
    pub truth: Option<PathBuf>,
    /// Compute device.
    pub device: Device,
}

/// What `zoo translate` wrote.
#[derive(Debug, Clone)]
pub struct TranslateReport {
    /// Images translated.
    pub count: usize,
    /// The side-by-side page.
    pub index: PathBuf,
    /// Error against the truth (`--truth`, or the pair made by `zoo data pair` that the input
    /// folder belongs to), over the images that have one.
    pub error: Option<TranslationError>,
    /// Images scored against a truth.
    pub scored: usize,
}

/// What `zoo bench` asks for.
#[derive(Debug, Clone)]
pub struct BenchRequest {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--set key=value`.
    pub sets: Vec<String>,
    /// `--batch-size`.
    pub batch_size: Option<usize>,
    /// Untimed steps first.
    pub warmup: u64,
    /// Timed steps.
    pub steps: u64,
    /// Windows the timed steps are split into (the median window is reported).
    pub windows: u64,
    /// Where to compute.
    pub device: Device,
}

/// A fresh run's config: the model's defaults < file < `--set` < flags.
pub fn fresh_config<M: Game>(
    file: Option<&Path>,
    sets: &[String],
    flags: Vec<(&'static str, toml::Value)>,
) -> Result<RunConfig<M::Config>> {
    let layers = Layers { file, sets, flags };
    RunConfig::resolve(config::to_table(&M::defaults())?, &layers)
}

impl TrainRequest {
    fn flags(&self) -> Result<Vec<(&'static str, toml::Value)>> {
        let mut f = Vec::new();
        if let Some(dir) = &self.data_dir {
            // Stored absolute, so a resumed run finds the data from any working folder.
            let abs = std::path::absolute(dir)
                .with_context(|| format!("bad --data-dir {}", dir.display()))?;
            f.push(("data.dir", toml::Value::String(abs.display().to_string())));
        }
        if !self.domains.is_empty() {
            let mut dirs = Vec::new();
            for d in &self.domains {
                let abs = std::path::absolute(d)
                    .with_context(|| format!("bad --domains folder {}", d.display()))?;
                dirs.push(toml::Value::String(abs.display().to_string()));
            }
            f.push(("data.domains", toml::Value::Array(dirs)));
        }
        if let Some(s) = self.steps {
            f.push(("train.steps", int(s)));
        }
        if let Some(e) = self.epochs {
            f.push(("train.epochs", int(e)));
        }
        if let Some(b) = self.batch_size {
            f.push(("train.batch_size", int(b as u64)));
        }
        if let Some(s) = self.seed {
            f.push(("train.seed", int(s)));
        }
        Ok(f)
    }

    /// The run folder (opened when resuming), its resolved config and the checkpoint to
    /// resume from.
    fn resolve<M: Game>(&self) -> Result<Resolved<M>> {
        let flags = self.flags()?;
        let Some(path) = &self.resume else {
            let cfg = fresh_config::<M>(self.config_file.as_deref(), &self.sets, flags)?;
            // The run folder is created after the data loads, so bad data leaves nothing behind.
            return Ok((None, cfg, None));
        };
        ensure!(
            self.config_file.is_none() && self.sets.is_empty(),
            "--config and --set cannot change a resumed run; only --steps, --epochs and \
             --data-dir may be given with --resume"
        );
        ensure!(
            self.batch_size.is_none() && self.seed.is_none(),
            "--batch-size and --seed cannot change a resumed run (they fix its data order)"
        );
        let (run, _) = RunDir::open(path, Some(M::NAME))?;
        ensure!(
            run.config_path().is_file(),
            "{} has no config.toml (it stopped before training began); start a new run \
             instead",
            run.path.display()
        );
        let ck = run.latest_checkpoint()?;
        if ck.is_none() {
            tracing::info!(
                "{} has no complete checkpoint yet; training it again from step 0",
                run.path.display()
            );
        }
        let layers = Layers {
            flags,
            ..Layers::default()
        };
        let cfg = RunConfig::resolve(config::read_file(&run.config_path())?, &layers)?;
        // A length below where the run stands cannot be honoured: said now, before any work.
        if let (Some(ck), Some(steps)) = (&ck, self.steps) {
            let at = ck.state()?.step;
            ensure!(
                steps >= at,
                "{} is already at step {at}; --steps {steps} would shorten it. Pass --steps \
                 above {at} to extend it (or sample its checkpoint as it is)",
                run.path.display()
            );
        }
        Ok((Some(run), cfg, ck))
    }
}

/// A train request resolved: the run folder when resuming, the config, the checkpoint.
type Resolved<M> = (
    Option<RunDir>,
    RunConfig<<M as Game>::Config>,
    Option<Checkpoint>,
);

/// What a training step holds at least, for the memory check before anything is allocated:
/// G and D's parameters with their gradients and Adam's two moments (4 × 4 bytes each), the
/// moving average of G when on, and the real and generated batches with their gradients.
/// A lower bound (activations of inner layers come on top), so a refusal is always right.
/// First, that the model can take what `[train]` asks of it (DiffAugment).
pub fn ensure_training_fits<M: Game>(model: &M, cfg: &RunConfig<M::Config>) -> Result<()> {
    ensure!(
        M::DIFF_AUGMENT || !cfg.train.diffaug.is_on(),
        "train.diffaug is on, but {}'s discriminator does not take a plain image batch; \
         DiffAugment is for the noise-to-image and class-conditional models (zoo list)",
        M::NAME
    );
    let device = Device::flex();
    let (g, d) = (
        crate::params::lazy_param_count(&model.init_g(&device)),
        crate::params::lazy_param_count(&model.init_d(&device)),
    );
    let ema = if cfg.train.ema.decay > 0.0 { g } else { 0 };
    zoo_core::mem::ensure_fits(
        16 * (g + d) + 4 * ema,
        &format!(
            "the networks ({} + {} parameters, with gradients and Adam's state)",
            group_digits(g.min(usize::MAX as u128) as usize),
            group_digits(d.min(usize::MAX as u128) as usize)
        ),
        "the model's widths (zoo config <model> lists them) or data.image_size",
    )?;
    let image = (cfg.data.channels * cfg.data.image_size * cfg.data.image_size) as u128;
    zoo_core::mem::ensure_fits(
        16 * cfg.train.batch_size as u128 * image.max(2),
        &format!("a batch of {} images", cfg.train.batch_size),
        "train.batch_size (--batch-size)",
    )
}

/// `zoo train`: trains (or resumes) a run.
pub fn train<M: Game>(req: &TrainRequest, observer: ObserverFactory<'_, M>) -> Result<TrainReport> {
    let (run, cfg, resume) = req.resolve::<M>()?;
    let mut model = M::new(&cfg)?;
    let cfg = model.recorded(cfg);
    // Before the data loads and the run folder exists: nothing is left behind on refusal.
    ensure_training_fits(&model, &cfg)?;
    let data = model.load_data(&cfg)?;
    tracing::info!("{}", model.describe(&data));
    let run = match run {
        Some(r) => r,
        None => RunDir::create(&req.out, M::NAME)?,
    };
    write_atomic(&run.config_path(), config::to_toml(&cfg)?.as_bytes())?;
    tracing::info!("run folder: {}", run.path.display());
    if let Some(hook) = &req.on_run {
        (hook.0)(&run.path)?;
    }
    let opts = TrainOptions {
        progress: req.progress,
        stop: req.stop.clone(),
        time_limit: req.time_limit,
    };
    let summary = engine::train(
        &mut model,
        &cfg,
        data,
        &run,
        resume.as_ref(),
        &req.device,
        opts,
        observer,
    )?;
    Ok(TrainReport {
        run_dir: run.path.clone(),
        summary,
    })
}

/// The model as a sampler, or the error that says it translates instead.
pub fn sampler_of<M: Game>(model: &M) -> Result<&dyn Sampler<M>> {
    M::Role::sampler(model).with_context(|| {
        format!(
            "{} translates images rather than sampling noise; use `zoo translate`",
            M::NAME
        )
    })
}

/// The model as a translator, or the error that says it samples instead.
pub fn translator_of<M: Game>(model: &M) -> Result<&dyn Translator<M>> {
    M::Role::translator(model).with_context(not_a_translator::<M>)
}

fn not_a_translator<M: Game>() -> String {
    format!(
        "{} generates images from noise; `zoo translate` needs an image-to-image run \
         (e.g. cyclegan); use `zoo sample`",
        M::NAME
    )
}

/// A finished or running run's resolved config, model and latest checkpoint; `purpose` names
/// what the checkpoint is for in the error when there is none yet.
pub fn open_trained<M: Game>(
    run_dir: &Path,
    purpose: &str,
) -> Result<(RunConfig<M::Config>, M, Checkpoint)> {
    let (run, _) = RunDir::open(run_dir, Some(M::NAME))?;
    let cfg: RunConfig<M::Config> = config::from_table(config::read_file(&run.config_path())?)?;
    let model = M::new(&cfg)?;
    let ck = run.latest_checkpoint()?.with_context(|| {
        format!(
            "{} has no checkpoint to {purpose} yet; train it first",
            run.path.display()
        )
    })?;
    Ok((cfg, model, ck))
}

/// `--checkpoint DIR` when given (a checkpoint folder that verifies), else `latest`.
pub fn chosen_checkpoint(latest: Checkpoint, pick: Option<&Path>) -> Result<Checkpoint> {
    let Some(p) = pick else {
        return Ok(latest);
    };
    let ck = Checkpoint {
        path: p.to_path_buf(),
    };
    ck.state()
        .with_context(|| format!("--checkpoint {} is not a checkpoint folder", p.display()))?;
    ck.verify()?;
    Ok(ck)
}

/// `zoo sample`: a grid (or one PNG per image) from a run's latest checkpoint; returns the
/// files written.
pub fn sample<M: Game>(req: &SampleRequest) -> Result<Vec<PathBuf>> {
    ensure!(
        (1..=100_000).contains(&req.n),
        "-n must be between 1 and 100000 (got {})",
        req.n
    );
    if let Some(out) = &req.out {
        ensure!(
            out.extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("png")),
            "--out {} is not a .png file name; name the grid e.g. samples.png (or use \
             --out-dir for one file per sample)",
            out.display()
        );
    }
    if let Some(p) = &req.save_noise {
        ensure!(
            p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")),
            "--save-noise {} is not a .npy file name; name it e.g. noise.npy",
            p.display()
        );
    }
    let (cfg, model, ck) = open_trained::<M>(&req.run_dir, "sample from")?;
    let sampler = sampler_of(&model)?;
    let classes = match &req.class {
        None => None,
        Some(pick) => {
            let cs = M::Role::class_sampler(&model).with_context(|| {
                format!(
                    "{} is unconditional: --class needs a run of a class-conditional model \
                     (`zoo list` shows them with the `class` capability)",
                    M::NAME
                )
            })?;
            Some((cs, class_pick(&cs.classes(), pick, req.n)?))
        }
    };
    let seed = req.seed.unwrap_or(cfg.train.seed);
    req.device.seed(mix(seed, SAMPLE));
    let g = load_generator(&model, &ck, &req.device)?.valid();
    // The noise is drawn at once (the same images for a seed whatever -n), the generator runs
    // in chunks: one forward over 100,000 images would need tens of GiB of activations.
    let chunked = |noise: Tensor<2>, labels: Option<Tensor<1, Int>>| -> Vec<Tensor<4>> {
        let n = noise.dims()[0];
        (0..n)
            .step_by(GENERATE_CHUNK)
            .map(|at| {
                let k = GENERATE_CHUNK.min(n - at);
                let z = noise.clone().narrow(0, at, k);
                match (&labels, &classes) {
                    (Some(y), Some((cs, _))) => cs.images_of(&g, z, y.clone().narrow(0, at, k)),
                    _ => sampler.images(&g, z),
                }
            })
            .collect()
    };
    let (noise, labels, nrow) = match &classes {
        None => (sampler.noise(req.n, &req.device), None, grid_columns(req.n)),
        Some((cs, (labels, per_row))) => (
            cs.noise(labels.len(), &req.device),
            Some(label_tensor(labels.clone(), &req.device)),
            *per_row,
        ),
    };
    if let Some(p) = &req.save_noise {
        let dims = noise.dims();
        let values = noise
            .clone()
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        write_atomic(p, &zoo_core::io::npy_f32(&dims, &values))
            .with_context(|| format!("cannot write --save-noise {}", p.display()))?;
    }
    let chunks = chunked(noise, labels);
    if let Some(dir) = &req.out_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut written = Vec::with_capacity(req.n);
        for chunk in chunks {
            for img in to_images(chunk)? {
                let p = dir.join(format!("sample_{:05}.png", written.len()));
                write_atomic(&p, &png_bytes(&img)?)?;
                written.push(p);
            }
        }
        Ok(written)
    } else {
        // One grid image: its floats and its bytes must fit.
        let [_, c, h, w] = chunks[0].dims();
        zoo_core::mem::ensure_fits(
            req.n as u128 * (c * h * w) as u128 * 5,
            &format!("a grid of {} images", req.n),
            "-n (or use --out-dir for one file per sample)",
        )?;
        let images = Tensor::cat(chunks, 0);
        let out = req
            .out
            .clone()
            .unwrap_or_else(|| req.run_dir.join("sample.png"));
        save_grid(images, nrow, &out)?;
        Ok(vec![out])
    }
}

/// Images generated per forward pass by [`generate`].
const GENERATE_CHUNK: usize = 500;

/// `n` samples of an inference-mode generator, in chunks, from noise seeded with `seed`.
pub fn generate<M: Game>(
    model: &M,
    g: &M::G,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<Tensor<4>>> {
    let sampler = sampler_of(model)?;
    device.seed(seed);
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(GENERATE_CHUNK);
        out.push(sampler.images(g, sampler.noise(k, device)));
        left -= k;
    }
    Ok(out)
}

/// `n` samples of a class-conditional generator, in chunks, from noise seeded with `seed`:
/// image `i` of class `i mod classes`, so that every prefix is balanced. Returns the chunks and
/// each image's class.
pub fn generate_balanced<M: Game>(
    sampler: &dyn ClassSampler<M>,
    g: &M::G,
    n: usize,
    seed: u64,
    device: &Device,
) -> (Vec<Tensor<4>>, Vec<usize>) {
    let k = sampler.classes().len().max(1);
    let labels: Vec<usize> = (0..n).map(|i| i % k).collect();
    device.seed(seed);
    let mut out = Vec::new();
    for chunk in labels.chunks(GENERATE_CHUNK) {
        let y: Vec<i64> = chunk.iter().map(|&c| c as i64).collect();
        let y = label_tensor(y, device);
        out.push(sampler.images_of(g, sampler.noise(chunk.len(), device), y));
    }
    (out, labels)
}

/// Images translated per forward pass.
const TRANSLATE_CHUNK: usize = 16;

/// Where `zoo translate` finds the truth of its inputs.
enum Truth {
    /// A pixelwise function of the input.
    Mapping(Mapping),
    /// Files of the same names in a folder.
    Folder(PathBuf),
}

/// `--truth`, else what the pair that `input` belongs to says.
fn truth_of(req: &TranslateRequest) -> Result<Option<Truth>> {
    if let Some(dir) = &req.truth {
        ensure!(
            dir.is_dir(),
            "--truth {} is not a folder; pass the folder of the inputs' true counterparts \
             (same file names)",
            dir.display()
        );
        return Ok(Some(Truth::Folder(dir.clone())));
    }
    let Some(root) = req.input.parent() else {
        return Ok(None);
    };
    Ok(match read_pair_info(root)?.map(|p| p.mapping) {
        Some(Mapping::Counterparts) => {
            counterpart_dir(&req.input, req.direction == Direction::AToB).map(Truth::Folder)
        }
        Some(m) => Some(Truth::Mapping(m)),
        None => None,
    })
}

/// The file in `dir` with the same relative name as `rel` (any image extension).
fn counterpart_file(dir: &Path, rel: &Path) -> Option<PathBuf> {
    let stem = rel.with_extension("");
    ["png", "jpg", "jpeg", "PNG", "JPG", "JPEG"]
        .iter()
        .map(|e| dir.join(&stem).with_extension(e))
        .find(|p| p.is_file())
}

/// `zoo translate`: one translated PNG per input image, and a side-by-side page.
pub fn translate<M: Game>(req: &TranslateRequest) -> Result<TranslateReport> {
    // Told by the type, before any file is read.
    ensure!(
        M::Role::CAPABILITIES.contains(&Capability::Translate),
        "{}",
        not_a_translator::<M>()
    );
    // Never into or over the inputs (or the run): checked before anything is read or written.
    zoo_core::io::ensure_apart(&req.out, "--out", &req.input, "--input")?;
    if let Some(t) = &req.truth {
        zoo_core::io::ensure_apart(&req.out, "--out", t, "--truth")?;
    }
    ensure!(
        !zoo_core::io::resolve(&req.out).starts_with(zoo_core::io::resolve(&req.run_dir)),
        "--out {} lies inside the run folder {}; pass a --out outside it",
        req.out.display(),
        req.run_dir.display()
    );
    let files = list_images_of(&req.input, "--input")?;
    let (cfg, model, ck) = open_trained::<M>(&req.run_dir, "translate with")?;
    let translator = translator_of(&model)?;
    let dirs = translator.directions();
    ensure!(
        dirs.contains(&req.direction),
        "this {} run translates {} only (its generator was trained that way); pass --direction {}",
        M::NAME,
        dirs.iter().map(|d| d.name()).collect::<Vec<_>>().join(", "),
        dirs[0].name()
    );
    let (ca, cb) = cfg.data.domain_channels();
    let (c_in, c_out) = match req.direction {
        Direction::AToB => (ca, cb),
        Direction::BToA => (cb, ca),
    };
    let g = load_generator(&model, &ck, &req.device)?.valid();
    let truth = truth_of(req)?;
    let pages = req.out.join("index");
    std::fs::create_dir_all(&pages)
        .with_context(|| format!("cannot create {}", pages.display()))?;
    let mut sums = ErrorSums::default();
    let mut rows = Vec::new();
    let mut cols = PageColumns::default();
    let bar = crate::progress::bar(files.len() as u64, "translate");
    let size = cfg.data.image_size;
    for chunk in files.chunks(TRANSLATE_CHUNK) {
        bar.inc(chunk.len() as u64);
        let (set, loaded) = match load_image_files(chunk, c_in, size) {
            Ok(x) => x,
            Err(e) => {
                bar.suspend(|| tracing::warn!("{e:#}"));
                continue;
            }
        };
        let idx: Vec<usize> = (0..set.len).collect();
        let real = set.tensor(&idx, &req.device);
        let (fake, rec) = translator.translate(&g, req.direction, real.clone());
        // The truth of each image, where there is one.
        let want: Vec<Option<Tensor<4>>> = match &truth {
            Some(Truth::Mapping(m)) => {
                let t = m.apply(real.clone());
                (0..set.len)
                    .map(|i| t.clone().map(|t| t.narrow(0, i, 1)))
                    .collect()
            }
            Some(Truth::Folder(dir)) => loaded
                .iter()
                .map(|f| {
                    let rel = f.strip_prefix(&req.input).unwrap_or(f);
                    let file = counterpart_file(dir, rel)?;
                    let (t, _) = load_image_files(&[file], c_out, size).ok()?;
                    Some(t.tensor(&[0], &req.device))
                })
                .collect(),
            None => vec![None; set.len],
        };
        for (i, w) in want.iter().enumerate() {
            if let Some(w) = w {
                sums.add(
                    real.clone().narrow(0, i, 1),
                    fake.clone().narrow(0, i, 1),
                    w.clone(),
                );
            }
        }
        let reals = to_images(real)?;
        let fakes = to_images(fake)?;
        let recs = match rec {
            Some(r) => to_images(r)?.into_iter().map(Some).collect(),
            None => vec![None; reals.len()],
        };
        for (k, file) in loaded.iter().enumerate() {
            let rel = file.strip_prefix(&req.input).unwrap_or(file);
            let name = rel.with_extension("png");
            let flat = name.to_string_lossy().replace(['/', '\\'], "__");
            let out = req.out.join(&name);
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            write_atomic(&out, &png_bytes(&fakes[k])?)?;
            write_atomic(&pages.join(format!("real__{flat}")), &png_bytes(&reals[k])?)?;
            if let Some(t) = &want[k] {
                let img = to_images(t.clone())?.remove(0);
                write_atomic(&pages.join(format!("truth__{flat}")), &png_bytes(&img)?)?;
                cols.truth = true;
            }
            if let Some(c) = &recs[k] {
                write_atomic(&pages.join(format!("rec__{flat}")), &png_bytes(c)?)?;
                cols.rec = true;
            }
            rows.push(PageRow {
                name: name.to_string_lossy().into_owned(),
                flat,
                truth: want[k].is_some(),
                rec: recs[k].is_some(),
            });
        }
    }
    bar.finish_and_clear();
    ensure!(
        !rows.is_empty(),
        "none of the {} files in {} could be translated; check that they are valid png/jpg",
        files.len(),
        req.input.display()
    );
    if let (Some(Truth::Folder(dir)), 0) = (&truth, sums.count()) {
        bail!(
            "none of the {} translated images has a counterpart of the same name in {}; pass \
             --truth with the folder of their true counterparts",
            rows.len(),
            dir.display()
        );
    }
    let error = sums.error();
    let index = req.out.join("index.html");
    write_atomic(
        &index,
        translate_page(M::NAME, req.direction, &rows, cols, error.as_ref()).as_bytes(),
    )?;
    Ok(TranslateReport {
        count: rows.len(),
        index,
        error,
        scored: sums.count(),
    })
}

/// `zoo bench` of one model: training steps on synthetic data of the configured shape.
pub fn bench<M: Game>(req: &BenchRequest) -> Result<BenchReport> {
    ensure!(req.steps > 0, "--steps must be at least 1 (got 0)");
    let mut flags = Vec::new();
    if let Some(b) = req.batch_size {
        flags.push(("train.batch_size", int(b as u64)));
    }
    let cfg = fresh_config::<M>(req.config_file.as_deref(), &req.sets, flags)?;
    let mut model = M::new(&cfg)?;
    ensure_training_fits(&model, &cfg)?;
    let data = model.synthetic_data(&cfg)?;
    crate::bench::bench(
        &mut model,
        &cfg,
        data,
        &req.device,
        req.warmup,
        req.steps,
        req.windows,
    )
}

/// `zoo info`: each network's layers and parameter counts.
pub fn info<M: Game>(config_file: Option<&Path>, sets: &[String]) -> Result<String> {
    let cfg = fresh_config::<M>(config_file, sets, Vec::new())?;
    let model = M::new(&cfg)?;
    let cpu = Device::flex();
    let n = crate::params::lazy_param_count(&model.init_g(&cpu))
        + crate::params::lazy_param_count(&model.init_d(&cpu));
    zoo_core::mem::ensure_fits(
        4 * n,
        "drawing both networks",
        "the model's widths (zoo config <model> lists them)",
    )?;
    // On an autodiff device, so that trainable parameters can be told from buffers.
    let device = Device::flex().autodiff();
    let (g, d) = init_networks(&model, cfg.train.seed, &device);
    let mut out = format!(
        "{name}: {about}\n\nGenerator parameters: {gp}\n{gt}\n\
         Discriminator parameters: {dp}\n{dt}\n",
        name = M::NAME,
        about = M::ABOUT,
        gp = param_summary(&g),
        dp = param_summary(&d),
        gt = layer_table(&g),
        dt = layer_table(&d),
    );
    for (net, n) in model.networks(&g, &d) {
        out.push_str(&format!("{net} parameters: {}\n", group_digits(n)));
    }
    Ok(out)
}

/// One image of `zoo translate`'s page.
struct PageRow {
    /// The translation's relative file name.
    name: String,
    /// The flattened name of its page images.
    flat: String,
    /// A truth image was written.
    truth: bool,
    /// A reconstruction was written.
    rec: bool,
}

/// Which optional columns the page has.
#[derive(Default, Clone, Copy)]
struct PageColumns {
    truth: bool,
    rec: bool,
}

/// The side-by-side page of `zoo translate`: input, translated, the truth (where known) and
/// the reconstruction (models with both directions).
fn translate_page(
    model: &str,
    direction: Direction,
    rows: &[PageRow],
    cols: PageColumns,
    error: Option<&TranslationError>,
) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut head = String::from("<th>file</th><th>input</th><th>translated</th>");
    if cols.truth {
        head += "<th>truth</th>";
    }
    if cols.rec {
        head += "<th>reconstructed</th>";
    }
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>zoo translate {model} \
         {dir}</title>\n<style>body{{font-family:sans-serif}}td{{padding:4px;text-align:center}}\
         img{{width:128px;image-rendering:pixelated}}</style></head><body>\n\
         <h1>{model}: {dir}</h1>\n{figures}<table>\n<tr>{head}</tr>\n",
        dir = direction.name(),
        figures = error.map_or(String::new(), |e| format!(
            "<p id=\"error\">{} images scored; {}</p>\n",
            rows.iter().filter(|r| r.truth).count(),
            esc(&e.to_string())
        )),
    );
    for r in rows {
        let (name, flat) = (esc(&r.name), esc(&r.flat));
        html.push_str(&format!(
            "<tr><td>{name}</td><td><img src=\"index/real__{flat}\"></td>\
             <td><img src=\"{name}\"></td>"
        ));
        let cell = |on: bool, have: bool, prefix: &str| match (on, have) {
            (false, _) => String::new(),
            (true, false) => "<td></td>".to_string(),
            (true, true) => format!("<td><img src=\"index/{prefix}__{flat}\"></td>"),
        };
        html.push_str(&cell(cols.truth, r.truth, "truth"));
        html.push_str(&cell(cols.rec, r.rec, "rec"));
        html.push_str("</tr>\n");
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

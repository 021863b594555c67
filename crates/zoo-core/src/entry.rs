//! The object-safe face of a model, for the CLI's registry.
//!
//! The registry is one static slice of `&dyn ModelEntry` (ripgrep's `FLAGS` shape); the
//! blanket adapter [`Entry<M>`] turns any [`GanModel`] into an entry, so adding a model is one
//! crate plus one line `&Entry::<MyGan>::new()` in the CLI's registry.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use burn::prelude::*;

use crate::config::{self, RunConfig};
use crate::data::pair::{TranslationError, read_pair_info, translation_error};
use crate::data::{list_images, load_image_files, mix};
use crate::engine::{self, BenchReport, Summary, TrainOptions};
use crate::eval::{Evaluation, Reference};
use crate::game::{Direction, Game};
use crate::gan::trainable_params;
use crate::io::write_atomic;
use crate::output::{png_bytes, save_grid, to_images};
use crate::run::{Checkpoint, RunDir};

/// Stream id of `zoo sample`'s noise.
const SAMPLE_STREAM: u64 = 0x5A4_91E;

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
    pub stop: Option<Arc<std::sync::atomic::AtomicUsize>>,
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
    /// Where to compute.
    pub device: Device,
}

/// A registered model, as the CLI sees it.
/// `zoo translate`.
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
    /// Error against the true mapping, when the input folder belongs to a pair made by
    /// `zoo data pair` (its parent holds `zoo-pair.toml`).
    pub error: Option<TranslationError>,
}

/// `zoo eval`.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    /// The run folder.
    pub run_dir: PathBuf,
    /// Samples to generate (and real images to compare with); default 10,000 for images,
    /// `data.toy.eval_samples` (2,500) for the 2-D mixtures.
    pub n: Option<usize>,
    /// A checkpoint folder of the run (default: the latest).
    pub checkpoint: Option<PathBuf>,
    /// Compute device.
    pub device: Device,
}

pub trait ModelEntry: Sync {
    /// `zoo train <name>`.
    fn name(&self) -> &'static str;
    /// One line for `zoo list`.
    fn about(&self) -> &'static str;
    /// The full default config as TOML.
    fn default_config(&self) -> Result<String>;
    /// Each network's layers and parameter counts.
    fn info(&self, config_file: Option<&Path>, sets: &[String]) -> Result<String>;
    /// Trains (or resumes) a run.
    fn train(&self, req: &TrainRequest) -> Result<TrainReport>;
    /// Samples from a run's latest checkpoint; returns the files written.
    fn sample(&self, req: &SampleRequest) -> Result<Vec<PathBuf>>;
    /// Times training steps on synthetic data of the configured shape.
    fn bench(&self, req: &BenchRequest) -> Result<BenchReport>;
    /// Translates a folder of images with an image-to-image run.
    fn translate(&self, req: &TranslateRequest) -> Result<TranslateReport>;
    /// Image metrics of a run's generator, written to `<run>/eval.json`.
    fn eval(&self, req: &EvalRequest) -> Result<Evaluation>;
    /// Whether the model translates images rather than sampling noise.
    fn translates(&self) -> bool;
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

/// Adapts a [`GanModel`] to [`ModelEntry`].
pub struct Entry<M>(PhantomData<fn() -> M>);

impl<M> Entry<M> {
    /// The entry (usable in a `static`).
    pub const fn new() -> Self {
        Entry(PhantomData)
    }
}

impl<M> Default for Entry<M> {
    fn default() -> Self {
        Self::new()
    }
}

/// Resolves a fresh run's config: defaults < file < `--set` < flags.
pub fn resolve_config<M: Game>(
    config_file: Option<&Path>,
    sets: &[String],
    flags: &[(&str, toml::Value)],
) -> Result<RunConfig<M::Config>> {
    let mut table = config::to_table(&M::defaults())?;
    if let Some(f) = config_file {
        config::merge(&mut table, config::read_file(f)?);
    }
    for s in sets {
        config::apply_set(&mut table, s)?;
    }
    apply_flags(&mut table, flags)?;
    let cfg: RunConfig<M::Config> = config::from_table(table)?;
    cfg.validate()?;
    Ok(cfg)
}

fn apply_flags(table: &mut toml::Table, flags: &[(&str, toml::Value)]) -> Result<()> {
    for (key, value) in flags {
        config::set_value(table, key, value.clone())?;
        // --steps wins over an epochs budget from the file, and vice versa.
        if *key == "train.steps"
            && let Some(toml::Value::Table(t)) = table.get_mut("train")
        {
            t.remove("epochs");
        }
    }
    Ok(())
}

fn int(v: u64) -> toml::Value {
    toml::Value::Integer(v.min(i64::MAX as u64) as i64)
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
}

impl<M: Game> ModelEntry for Entry<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }

    fn about(&self) -> &'static str {
        M::ABOUT
    }

    fn default_config(&self) -> Result<String> {
        config::to_toml(&M::defaults())
    }

    fn info(&self, config_file: Option<&Path>, sets: &[String]) -> Result<String> {
        let cfg = resolve_config::<M>(config_file, sets, &[])?;
        let model = M::new(&cfg)?;
        // On an autodiff device, so that trainable parameters can be told from buffers.
        let device = Device::flex().autodiff();
        let (g, d) = engine::init_networks(&model, cfg.train.seed, &device);
        let mut out = format!(
            "{name}: {about}\n\nGenerator\n{g}\nGenerator parameters: {gp}\n\n\
             Discriminator\n{d}\nDiscriminator parameters: {dp}\n",
            name = M::NAME,
            about = M::ABOUT,
            gp = param_summary(&g),
            dp = param_summary(&d),
        );
        for (net, n) in model.networks(&g, &d) {
            out.push_str(&format!("{net} parameters: {}\n", group_digits(n)));
        }
        Ok(out)
    }

    fn train(&self, req: &TrainRequest) -> Result<TrainReport> {
        let flags = req.flags()?;
        let (run, cfg, resume) = if let Some(path) = &req.resume {
            ensure!(
                req.config_file.is_none() && req.sets.is_empty(),
                "--config and --set cannot change a resumed run; only --steps, --epochs and \
                 --data-dir may be given with --resume"
            );
            ensure!(
                req.batch_size.is_none() && req.seed.is_none(),
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
            let mut table = config::read_file(&run.config_path())?;
            apply_flags(&mut table, &flags)?;
            let cfg: RunConfig<M::Config> = config::from_table(table)?;
            cfg.validate()?;
            (Some(run), cfg, ck)
        } else {
            let cfg = resolve_config::<M>(req.config_file.as_deref(), &req.sets, &flags)?;
            // The run folder is created after the data loads, so bad data leaves nothing behind.
            (None, cfg, None)
        };
        let mut model = M::new(&cfg)?;
        let data = model.load_data(&cfg)?;
        tracing::info!("{}", model.describe(&data));
        let run = match run {
            Some(r) => r,
            None => RunDir::create(&req.out, M::NAME)?,
        };
        write_atomic(&run.config_path(), config::to_toml(&cfg)?.as_bytes())?;
        tracing::info!("run folder: {}", run.path.display());
        let summary = engine::train(
            &mut model,
            &cfg,
            data,
            &run,
            resume.as_ref(),
            &req.device,
            TrainOptions {
                progress: req.progress,
                stop: req.stop.clone(),
            },
        )?;
        Ok(TrainReport {
            run_dir: run.path.clone(),
            summary,
        })
    }

    fn bench(&self, req: &BenchRequest) -> Result<BenchReport> {
        self.bench_impl(req)
    }

    fn translate(&self, req: &TranslateRequest) -> Result<TranslateReport> {
        self.translate_impl(req)
    }

    fn translates(&self) -> bool {
        M::TRANSLATES
    }

    fn eval(&self, req: &EvalRequest) -> Result<Evaluation> {
        if let Some(n) = req.n {
            ensure!(
                (100..=60_000).contains(&n),
                "-n must be between 100 and 60000 (got {n})"
            );
        }
        let (cfg, model, latest) = open_trained::<M>(&req.run_dir, "evaluate")?;
        let ck = match &req.checkpoint {
            Some(p) => {
                let ck = Checkpoint { path: p.clone() };
                ck.state().with_context(|| {
                    format!("--checkpoint {} is not a checkpoint folder", p.display())
                })?;
                ck
            }
            None => latest,
        };
        let step = ck.state()?.step;
        if M::TRANSLATES {
            let g = engine::load_generator(&model, &ck, &req.device)?.valid();
            let mut t = model.eval_translation(&g, &cfg, req.n.unwrap_or(10_000), &req.device)?;
            t.run = req.run_dir.clone();
            t.step = step;
            let eval = Evaluation::Translation(t);
            let json = serde_json::to_string_pretty(&eval).context("serialising eval.json")?;
            write_atomic(&req.run_dir.join("eval.json"), json.as_bytes())?;
            return Ok(eval);
        }
        // Fails early for models that do not sample from noise.
        model.sample_noise(1, &req.device)?;
        let g = engine::load_generator(&model, &ck, &req.device)?.valid();
        if cfg.data.dataset.is_toy() {
            let n = req.n.unwrap_or(cfg.data.toy.eval_samples);
            let samples = generate(&model, &g, n, mix(cfg.train.seed, EVAL_STREAM), &req.device)?;
            let toy = toy_eval(M::NAME, &req.run_dir, step, &cfg.data, samples, n)?;
            let eval = Evaluation::Toy(toy);
            let json = serde_json::to_string_pretty(&eval).context("serialising eval.json")?;
            write_atomic(&req.run_dir.join("eval.json"), json.as_bytes())?;
            return Ok(eval);
        }
        let n = req.n.unwrap_or(10_000);
        let reference = Reference::new(&cfg.data, n, cfg.train.seed, &req.device)?;
        let images = generate(&model, &g, n, mix(cfg.train.seed, EVAL_STREAM), &req.device)?;
        let report = Evaluation::Images(reference.report(M::NAME, &req.run_dir, step, &images));
        let json = serde_json::to_string_pretty(&report).context("serialising eval.json")?;
        write_atomic(&req.run_dir.join("eval.json"), json.as_bytes())?;
        Ok(report)
    }

    fn sample(&self, req: &SampleRequest) -> Result<Vec<PathBuf>> {
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
        let (cfg, model, ck) = open_trained::<M>(&req.run_dir, "sample from")?;
        let seed = req.seed.unwrap_or(cfg.train.seed);
        req.device.seed(mix(seed, SAMPLE_STREAM));
        let noise = model.sample_noise(req.n, &req.device)?;
        let g = engine::load_generator(&model, &ck, &req.device)?.valid();
        let images = model.sample(&g, noise)?;
        if let Some(dir) = &req.out_dir {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let mut written = Vec::with_capacity(req.n);
            for (i, img) in to_images(images)?.iter().enumerate() {
                let p = dir.join(format!("sample_{i:05}.png"));
                write_atomic(&p, &png_bytes(img)?)?;
                written.push(p);
            }
            Ok(written)
        } else {
            let out = req
                .out
                .clone()
                .unwrap_or_else(|| req.run_dir.join("sample.png"));
            let nrow = ((req.n as f64).sqrt().ceil() as usize).max(1);
            save_grid(images, nrow, &out)?;
            Ok(vec![out])
        }
    }
}

/// `n` samples of an inference-mode generator, in chunks, from noise seeded with `seed`.
pub fn generate<M: Game>(
    model: &M,
    g: &M::G,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<Tensor<4>>> {
    device.seed(seed);
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(GENERATE_CHUNK);
        out.push(model.sample(g, model.sample_noise(k, device)?)?);
        left -= k;
    }
    Ok(out)
}

/// Scores 2-D samples against their mixture and draws them over its modes.
fn toy_eval(
    model: &str,
    run: &Path,
    step: u64,
    data: &crate::config::DataConfig,
    samples: Vec<Tensor<4>>,
    n: usize,
) -> Result<crate::eval::ToyEval> {
    use crate::data::toy;
    let mut points = Vec::with_capacity(n);
    for chunk in samples {
        points.extend(crate::output::points_of(chunk)?);
    }
    let modes = toy::modes(data.dataset, data.toy.radius);
    let std = toy::std_of(data);
    let real: Vec<[f64; 2]> = toy::sample(data, n, mix(step, EVAL_STREAM))
        .chunks(2)
        .map(|c| [c[0] as f64, c[1] as f64])
        .collect();
    let scatter = run.join("eval_scatter.png");
    crate::output::save_scatter(&points, Some(&modes), &scatter)?;
    Ok(crate::eval::ToyEval {
        model: model.to_string(),
        run: run.to_path_buf(),
        step,
        dataset: data.dataset.name().to_string(),
        std,
        samples: toy::metrics(&points, &modes, std),
        floor: toy::metrics(&real, &modes, std),
        scatter,
    })
}

/// Images generated per forward pass by [`generate`].
const GENERATE_CHUNK: usize = 500;
/// Stream id of `zoo eval`'s noise.
const EVAL_STREAM: u64 = 0xE7A1;

/// A finished or running run's resolved config, model and latest checkpoint; `purpose` names
/// what the checkpoint is for in the error when there is none yet.
fn open_trained<M: Game>(
    run_dir: &Path,
    purpose: &str,
) -> Result<(RunConfig<M::Config>, M, crate::run::Checkpoint)> {
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

/// Images translated per forward pass.
const TRANSLATE_CHUNK: usize = 16;

impl<M: Game> Entry<M> {
    fn translate_impl(&self, req: &TranslateRequest) -> Result<TranslateReport> {
        ensure!(
            M::TRANSLATES,
            "{} generates images from noise; `zoo translate` needs an image-to-image run \
             (e.g. cyclegan); use `zoo sample`",
            M::NAME
        );
        let (cfg, model, ck) = open_trained::<M>(&req.run_dir, "translate with")?;
        let g = engine::load_generator(&model, &ck, &req.device)?.valid();
        let files = list_images(&req.input)?;
        let pages = req.out.join("index");
        std::fs::create_dir_all(&pages)
            .with_context(|| format!("cannot create {}", pages.display()))?;
        let mapping = match req.input.parent() {
            Some(root) => read_pair_info(root)?.map(|p| p.mapping),
            None => None,
        };
        let mut sums = (0.0, 0.0, 0.0);
        let mut rows = Vec::new();
        for chunk in files.chunks(TRANSLATE_CHUNK) {
            let (set, loaded) =
                match load_image_files(chunk, cfg.data.channels, cfg.data.image_size) {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!("{e:#}");
                        continue;
                    }
                };
            let idx: Vec<usize> = (0..set.len).collect();
            let real = set.tensor(&idx, &req.device);
            let (fake, rec) = model.translate(&g, req.direction, real.clone())?;
            if let Some(m) = mapping {
                let e = translation_error(m, real.clone(), fake.clone());
                let k = set.len as f64;
                sums.0 += e.l1 * k;
                sums.1 += 10f64.powf(-e.psnr / 10.0) * k;
                sums.2 += e.identity_l1 * k;
            }
            let triples = to_images(real)?
                .into_iter()
                .zip(to_images(fake)?)
                .zip(to_images(rec)?);
            for (file, ((r, f), c)) in loaded.iter().zip(triples) {
                let rel = file.strip_prefix(&req.input).unwrap_or(file);
                let name = rel.with_extension("png");
                let flat = name.to_string_lossy().replace(['/', '\\'], "__");
                let out = req.out.join(&name);
                if let Some(dir) = out.parent() {
                    std::fs::create_dir_all(dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                }
                write_atomic(&out, &png_bytes(&f)?)?;
                write_atomic(&pages.join(format!("real__{flat}")), &png_bytes(&r)?)?;
                write_atomic(&pages.join(format!("rec__{flat}")), &png_bytes(&c)?)?;
                rows.push((name.to_string_lossy().into_owned(), flat));
            }
        }
        anyhow::ensure!(
            !rows.is_empty(),
            "none of the {} files in {} could be translated; check that they are valid png/jpg",
            files.len(),
            req.input.display()
        );
        let index = req.out.join("index.html");
        write_atomic(
            &index,
            translate_page(M::NAME, req.direction, &rows).as_bytes(),
        )?;
        let k = rows.len() as f64;
        Ok(TranslateReport {
            count: rows.len(),
            index,
            error: mapping.map(|_| TranslationError {
                l1: sums.0 / k,
                psnr: -10.0 * (sums.1 / k).max(1e-12).log10(),
                identity_l1: sums.2 / k,
            }),
        })
    }
    fn bench_impl(&self, req: &BenchRequest) -> Result<BenchReport> {
        ensure!(req.steps > 0, "--steps must be at least 1 (got 0)");
        let mut flags = Vec::new();
        if let Some(b) = req.batch_size {
            flags.push(("train.batch_size", int(b as u64)));
        }
        let cfg = resolve_config::<M>(req.config_file.as_deref(), &req.sets, &flags)?;
        let mut model = M::new(&cfg)?;
        let data = model.synthetic_data(&cfg)?;
        engine::bench(
            &mut model,
            &cfg,
            data,
            &req.device,
            req.warmup,
            req.steps,
            req.windows,
        )
    }
}

/// "1,234 (+ 56 running statistics)".
pub fn param_summary<T: Module>(m: &T) -> String {
    let trainable = trainable_params(m);
    let buffers = m.num_params() - trainable;
    if buffers == 0 {
        group_digits(trainable)
    } else {
        format!(
            "{} (+ {} batch-norm running statistics)",
            group_digits(trainable),
            group_digits(buffers)
        )
    }
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

/// The side-by-side page of `zoo translate`: real, translated, reconstructed.
fn translate_page(model: &str, direction: Direction, rows: &[(String, String)]) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>zoo translate {model} \
         {dir}</title>\n<style>body{{font-family:sans-serif}}td{{padding:4px;text-align:center}}\
         img{{width:128px;image-rendering:pixelated}}</style></head><body>\n\
         <h1>{model}: {dir}</h1>\n<table>\n<tr><th>file</th><th>real</th><th>translated</th>\
         <th>reconstructed</th></tr>\n",
        dir = direction.name()
    );
    for (name, flat) in rows {
        let (name, flat) = (esc(name), esc(flat));
        html.push_str(&format!(
            "<tr><td>{name}</td><td><img src=\"index/real__{flat}\"></td>\
             <td><img src=\"{name}\"></td><td><img src=\"index/rec__{flat}\"></td></tr>\n"
        ));
    }
    html.push_str("</table>\n</body></html>\n");
    html
}

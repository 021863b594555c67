//! `zoo eval` for any model: image metrics for a sampler (or the 2-D mixture metrics of a
//! toy run), translation metrics for a translator; written to `<run>/eval.json`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use zoo_core::config::DataConfig;
use zoo_core::data::toy;
use zoo_core::game::{Game, Role};
use zoo_core::io::write_atomic;
use zoo_core::streams::{EVAL, mix};
use zoo_train::checkpoint::{Weights, load_generator_of};
use zoo_train::output::{points_of, save_scatter};
use zoo_train::tasks::{chosen_checkpoint, generate, generate_balanced, open_trained, sampler_of};

use crate::eval::{Evaluation, Reference, ToyEval};

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
    /// Which generator to score (`--no-ema`: the trained one beside its EMA).
    pub weights: Weights,
    /// Compute device.
    pub device: Device,
}

impl EvalRequest {
    /// The report's file in the run folder: `eval.json`, or `eval_no_ema.json` for the trained
    /// generator of a run that samples with its EMA (so neither overwrites the other).
    pub fn json_path(&self) -> PathBuf {
        self.run_dir.join(match self.weights {
            Weights::Sampled => "eval.json",
            Weights::Trained => "eval_no_ema.json",
        })
    }
}

/// The range of `-n` (samples scored), checked up front by `zoo eval` and `zoo compare`.
pub fn check_n(n: usize) -> Result<()> {
    ensure!(
        (100..=60_000).contains(&n),
        "-n must be between 100 and 60000 (got {n})"
    );
    Ok(())
}

/// Evaluates a run's generator and writes `<run>/eval.json`.
pub fn eval<M: Game>(req: &EvalRequest) -> Result<Evaluation> {
    if let Some(n) = req.n {
        check_n(n)?;
    }
    let (cfg, model, latest) = open_trained::<M>(&req.run_dir, "evaluate")?;
    let ck = chosen_checkpoint(latest, req.checkpoint.as_deref())?;
    let step = ck.state()?.step;
    let eval = if let Some(t) = M::Role::translator(&model) {
        let g = load_generator_of(&model, &ck, req.weights, &req.device)?.valid();
        let mut t =
            crate::translation::evaluate(t, &g, &cfg, req.n.unwrap_or(10_000), &req.device)?;
        t.run = req.run_dir.clone();
        t.step = step;
        Evaluation::Translation(t)
    } else {
        // Fails early for models that neither sample nor translate.
        sampler_of(&model)?;
        let g = load_generator_of(&model, &ck, req.weights, &req.device)?.valid();
        if cfg.data.dataset.is_toy() {
            let n = req.n.unwrap_or(cfg.data.toy.eval_samples);
            let samples = generate(&model, &g, n, mix(cfg.train.seed, EVAL), &req.device)?;
            Evaluation::Toy(toy_eval(
                M::NAME,
                &req.run_dir,
                step,
                &cfg.data,
                samples,
                n,
            )?)
        } else {
            let n = req.n.unwrap_or(10_000);
            let spinner = zoo_train::progress::spinner("eval");
            spinner.set_message(format!(
                "the classifier (trained on first use, then cached) and the real images' \
                 features ({n} train, {n} test)"
            ));
            let reference = Reference::new(&cfg.data, n, cfg.train.seed, &req.device)?;
            let seed = mix(cfg.train.seed, EVAL);
            spinner.set_message(format!("{n} samples of step {step}, then their metrics"));
            Evaluation::Images(match M::Role::class_sampler(&model) {
                Some(cs) => {
                    let (images, labels) = generate_balanced(cs, &g, n, seed, &req.device);
                    reference.class_report(
                        M::NAME,
                        &req.run_dir,
                        step,
                        &images,
                        &labels,
                        &cs.classes(),
                    )?
                }
                None => {
                    let images = generate(&model, &g, n, seed, &req.device)?;
                    reference.report(M::NAME, &req.run_dir, step, &images)
                }
            })
        }
    };
    let json = serde_json::to_string_pretty(&eval).context("serialising eval.json")?;
    write_atomic(&req.json_path(), json.as_bytes())?;
    Ok(eval)
}

/// Scores 2-D samples against their mixture and draws them over its modes.
fn toy_eval(
    model: &str,
    run: &Path,
    step: u64,
    data: &DataConfig,
    samples: Vec<Tensor<4>>,
    n: usize,
) -> Result<ToyEval> {
    let mut points = Vec::with_capacity(n);
    for chunk in samples {
        points.extend(points_of(chunk)?);
    }
    let modes = toy::modes(data.dataset, data.toy.radius);
    let std = toy::std_of(data);
    let real: Vec<[f64; 2]> = toy::sample(data, n, mix(step, EVAL))
        .chunks(2)
        .map(|c| [c[0] as f64, c[1] as f64])
        .collect();
    let scatter = run.join("eval_scatter.png");
    save_scatter(&points, Some(&modes), &scatter)?;
    Ok(ToyEval {
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

/// The `model` of an [`crate::eval::EvalReport`] that scores a folder of images
/// (`zoo eval --images DIR`) instead of a run's generator.
pub const IMAGES: &str = "images";

/// The seed of the real images a folder is compared with: a run's default seed, so a folder
/// and a default run are measured against the same real images.
pub const IMAGES_SEED: u64 = 42;

/// What `zoo eval --images DIR` asks for.
#[derive(Debug, Clone)]
pub struct ImagesRequest {
    /// The folder of PNG/JPEG images (searched recursively; read in name order).
    pub dir: PathBuf,
    /// The dataset they imitate (its classifier and its real images are the reference).
    pub dataset: zoo_core::config::DatasetKind,
    /// Where that dataset is (default: zoo's search).
    pub data_dir: Option<PathBuf>,
    /// Images scored (default: all of them, at most 60,000), the first ones by name.
    pub n: Option<usize>,
    /// Compute device.
    pub device: Device,
}

/// Scores a folder of images (another framework's samples, a paper's release) with zoo's
/// metrics and floor, exactly as a run's samples: converted to the dataset's 28×28 gray
/// (centre-cropped, resized), compared with as many real training images. Reads the folder only.
pub fn eval_images(req: &ImagesRequest) -> Result<crate::eval::EvalReport> {
    crate::classifier::check_kind(req.dataset)?;
    let files = zoo_core::data::list_images_of(&req.dir, "--images")?;
    let n = match req.n {
        Some(n) => {
            check_n(n)?;
            ensure!(
                n <= files.len(),
                "-n {n} is more than the {} images in {}",
                files.len(),
                req.dir.display()
            );
            n
        }
        None => {
            let n = files.len().min(60_000);
            ensure!(
                n >= 100,
                "{} holds {n} images; the metrics need at least 100 (FD and precision/recall are \
                 meaningless below that)",
                req.dir.display()
            );
            n
        }
    };
    let spinner = zoo_train::progress::spinner("eval");
    spinner.set_message(format!("reading {n} images"));
    let (set, loaded) = zoo_core::data::load_image_files(&files[..n], 1, 28)?;
    ensure!(
        loaded.len() == n,
        "{} of the first {n} files in {} could not be read (see the warnings); remove them or \
         pass -n",
        n - loaded.len(),
        req.dir.display()
    );
    let data = DataConfig {
        dataset: req.dataset,
        dir: req.data_dir.clone(),
        image_size: 28,
        channels: 1,
        ..DataConfig::default()
    };
    spinner.set_message(format!(
        "the classifier and the real images' features ({n} train, {n} test)"
    ));
    let reference = Reference::new(&data, n, IMAGES_SEED, &req.device)?;
    spinner.set_message(format!("scoring {n} images"));
    let idx: Vec<usize> = (0..set.len).collect();
    let images = crate::classifier::set_chunks(&set, &idx, &req.device);
    Ok(reference.report(IMAGES, &req.dir, 0, &images))
}

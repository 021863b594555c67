//! `zoo compare`: train several models under the same budget, seeds and data, evaluate each
//! with the same instruments, and write a report (`report.md`, a self-contained
//! `report.html`, figures). Interrupted comparisons resume: finished runs and evaluations are
//! kept, unfinished runs continue from their checkpoints.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use anyhow::{Context, Result, ensure};
use base64::Engine as _;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::DatasetKind;
use crate::entry::{EvalRequest, ModelEntry, TrainRequest};
use crate::eval::{EvalReport, Evaluation, ImageMetrics};
use crate::io::write_atomic;
use crate::metrics::MeanStd;
use crate::run::RunDir;

/// What to compare.
#[derive(Clone)]
pub struct CompareRequest {
    /// The models, in report order.
    pub models: Vec<&'static dyn ModelEntry>,
    /// The dataset every model trains on.
    pub dataset: DatasetKind,
    /// Where the dataset is.
    pub data_dir: Option<PathBuf>,
    /// The comparison folder.
    pub out: PathBuf,
    /// Generator steps per run.
    pub steps: u64,
    /// Seeds per model (1, 2, …).
    pub seeds: u64,
    /// Samples per evaluation.
    pub n: usize,
    /// Compute device.
    pub device: Device,
    /// Progress bars.
    pub progress: bool,
    /// The signal flag of `zoo train`.
    pub stop: Option<Arc<AtomicUsize>>,
}

/// One finished run of the comparison.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    /// Model name.
    pub model: String,
    /// Seed.
    pub seed: u64,
    /// The run folder.
    pub run: PathBuf,
    /// Training wall time in seconds (summed over resumed sessions).
    pub seconds: f64,
    /// Training images per second.
    pub images_per_s: f64,
    /// Peak resident memory while training, MiB.
    pub peak_mib: Option<f64>,
    /// The evaluation.
    pub eval: EvalReport,
}

/// A model's results over its seeds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelSummary {
    /// Model name.
    pub model: String,
    /// Seeds.
    pub seeds: usize,
    /// FD.
    pub fd: MeanStd,
    /// KID.
    pub kid: MeanStd,
    /// Classifier score.
    pub score: MeanStd,
    /// Classes hit.
    pub classes_hit: MeanStd,
    /// KL of the class histogram from uniform.
    pub class_kl: MeanStd,
    /// Precision.
    pub precision: MeanStd,
    /// Recall.
    pub recall: MeanStd,
    /// Training images per second.
    pub images_per_s: MeanStd,
    /// Training wall time per run, seconds.
    pub seconds: MeanStd,
    /// The largest peak memory of its runs, MiB.
    pub peak_mib: Option<f64>,
}

fn summarise(model: &str, runs: &[&RunResult]) -> ModelSummary {
    let of = |f: &dyn Fn(&ImageMetrics) -> f64| {
        MeanStd::of(&runs.iter().map(|r| f(&r.eval.samples)).collect::<Vec<_>>())
    };
    ModelSummary {
        model: model.to_string(),
        seeds: runs.len(),
        fd: of(&|m| m.fd),
        kid: of(&|m| m.kid.mean),
        score: of(&|m| m.score.mean),
        classes_hit: of(&|m| m.coverage.classes_hit as f64),
        class_kl: of(&|m| m.coverage.kl_uniform),
        precision: of(&|m| m.precision),
        recall: of(&|m| m.recall),
        images_per_s: MeanStd::of(&runs.iter().map(|r| r.images_per_s).collect::<Vec<_>>()),
        seconds: MeanStd::of(&runs.iter().map(|r| r.seconds).collect::<Vec<_>>()),
        peak_mib: runs.iter().filter_map(|r| r.peak_mib).reduce(f64::max),
    }
}

/// How often a comparison's runs evaluate themselves: ten times per run.
pub fn eval_every(steps: u64) -> u64 {
    (steps / 10).max(1)
}

/// The one run folder inside `dir`, if any.
fn existing_run(dir: &Path) -> Result<Option<PathBuf>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let mut runs = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let p = e
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if p.join("run.toml").is_file() {
            runs.push(p);
        }
    }
    runs.sort();
    Ok(runs.pop())
}

/// Trains (or resumes) and evaluates one model at one seed; reuses a finished result.
fn run_one(req: &CompareRequest, entry: &dyn ModelEntry, seed: u64) -> Result<RunResult> {
    let dir = req
        .out
        .join("runs")
        .join(entry.name())
        .join(format!("seed-{seed}"));
    let result_path = dir.join("result.json");
    if result_path.is_file() {
        let text = std::fs::read_to_string(&result_path)
            .with_context(|| format!("cannot read {}", result_path.display()))?;
        match serde_json::from_str::<RunResult>(&text) {
            Ok(r) if r.eval.step >= req.steps => {
                tracing::info!("{} seed {seed}: already done", entry.name());
                return Ok(r);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("{} is damaged ({e}); redoing it", result_path.display()),
        }
    }
    let previous = existing_run(&dir)?;
    let timing_path = dir.join("timing.json");
    let mut seconds: f64 = if timing_path.is_file() {
        let t = std::fs::read_to_string(&timing_path)
            .with_context(|| format!("cannot read {}", timing_path.display()))?;
        t.trim()
            .parse()
            .with_context(|| format!("{} is damaged; delete it", timing_path.display()))?
    } else {
        0.0
    };
    // FD and classes hit ten times per run, for the report's curves.
    let mut sets = vec![
        format!("data.dataset=\"{}\"", req.dataset.name()),
        format!("train.eval_every={}", eval_every(req.steps)),
        format!("train.eval_samples={}", req.n.clamp(100, 1000)),
    ];
    if previous.is_some() {
        sets.clear();
    }
    tracing::info!("{} seed {seed}: training {} steps", entry.name(), req.steps);
    crate::engine::reset_peak_rss();
    let report = entry.train(&TrainRequest {
        config_file: None,
        sets,
        data_dir: req.data_dir.clone(),
        domains: Vec::new(),
        steps: Some(req.steps),
        epochs: None,
        batch_size: None,
        seed: previous.is_none().then_some(seed),
        out: dir.clone(),
        resume: previous,
        device: req.device.clone(),
        progress: req.progress,
        stop: req.stop.clone(),
    })?;
    let peak_mib = crate::engine::peak_rss_mib();
    seconds += report.summary.seconds;
    write_atomic(&timing_path, seconds.to_string().as_bytes())?;
    tracing::info!("{} seed {seed}: evaluating", entry.name());
    let eval = match entry.eval(&EvalRequest {
        run_dir: report.run_dir.clone(),
        n: Some(req.n),
        checkpoint: None,
        device: req.device.clone(),
    })? {
        Evaluation::Images(r) => r,
        Evaluation::Translation(_) | Evaluation::Toy(_) => anyhow::bail!(
            "zoo compare ranks noise-to-image GANs by their samples; evaluate {} runs with \
             `zoo eval`",
            entry.name()
        ),
    };
    let result = RunResult {
        model: entry.name().to_string(),
        seed,
        run: report.run_dir,
        seconds,
        images_per_s: report.summary.images_per_s,
        peak_mib,
        eval,
    };
    let json = serde_json::to_string_pretty(&result).context("serialising a result")?;
    write_atomic(&result_path, json.as_bytes())?;
    Ok(result)
}

/// What a comparison produced.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Per model, in request order.
    pub summaries: Vec<ModelSummary>,
    /// The real test split against the training split.
    pub floor: ImageMetrics,
    /// `report.html`.
    pub report: PathBuf,
}

/// Runs the comparison and writes the report.
pub fn compare(req: &CompareRequest) -> Result<Comparison> {
    ensure!(!req.models.is_empty(), "name at least one model to compare");
    if let Some(m) = req.models.iter().find(|m| m.translates()) {
        anyhow::bail!(
            "zoo compare ranks noise-to-image GANs by their samples; {} translates images \
             (evaluate its runs with `zoo eval`)",
            m.name()
        );
    }
    ensure!(req.steps > 0, "--steps must be at least 1 (got 0)");
    ensure!(
        (1..=20).contains(&req.seeds),
        "--seeds must be between 1 and 20 (got {})",
        req.seeds
    );
    std::fs::create_dir_all(&req.out).with_context(|| {
        format!(
            "cannot create {}; choose a writable --out",
            req.out.display()
        )
    })?;
    let mut results = Vec::new();
    for entry in &req.models {
        for seed in 1..=req.seeds {
            results.push(run_one(req, *entry, seed)?);
        }
    }
    let summaries: Vec<ModelSummary> = req
        .models
        .iter()
        .map(|e| {
            let runs: Vec<&RunResult> = results.iter().filter(|r| r.model == e.name()).collect();
            summarise(e.name(), &runs)
        })
        .collect();
    let floor = results
        .first()
        .map(|r| r.eval.floor.clone())
        .context("no results")?;
    let report = crate::report::write(req, &summaries, &results, &floor)?;
    Ok(Comparison {
        summaries,
        floor,
        report,
    })
}

/// The comparison table (markdown), also printed by `zoo compare`.
pub fn table(summaries: &[ModelSummary], floor: &ImageMetrics) -> String {
    let ms = |m: &MeanStd, digits: usize| format!("{:.*} ± {:.*}", digits, m.mean, digits, m.std);
    let mut out = String::from(
        "| model | FD ↓ | KID×1000 ↓ | classifier score ↑ | classes hit | class KL ↓ | precision ↑ | recall ↑ | images/s | wall time (s) | peak MiB |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for s in summaries {
        let kid = MeanStd {
            mean: s.kid.mean * 1000.0,
            std: s.kid.std * 1000.0,
        };
        out.push_str(&format!(
            "| {} ({} seeds) | {} | {} | {} | {} | {} | {} | {} | {:.0} | {:.0} | {} |\n",
            s.model,
            s.seeds,
            ms(&s.fd, 2),
            ms(&kid, 2),
            ms(&s.score, 2),
            ms(&s.classes_hit, 1),
            ms(&s.class_kl, 3),
            ms(&s.precision, 3),
            ms(&s.recall, 3),
            s.images_per_s.mean,
            s.seconds.mean,
            s.peak_mib.map_or("n/a".into(), |m| format!("{m:.0}")),
        ));
    }
    out.push_str(&format!(
        "| *real test split (floor)* | {:.2} | {:.2} ± {:.2} | {:.2} ± {:.2} | {} | {:.3} | {:.3} | {:.3} | | | |\n",
        floor.fd,
        floor.kid.mean * 1000.0,
        floor.kid.std * 1000.0,
        floor.score.mean,
        floor.score.std,
        floor.coverage.classes_hit,
        floor.coverage.kl_uniform,
        floor.precision,
        floor.recall
    ));
    out
}

/// A PNG file as a `data:` URI.
pub fn data_uri(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The run folder's newest sample grid.
pub fn last_grid(run: &Path) -> Option<PathBuf> {
    let mut grids: Vec<PathBuf> = std::fs::read_dir(run.join("samples"))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    grids.sort();
    grids.pop()
}

/// Opens a comparison's run folder (for the report's figures).
pub fn open_run(path: &Path) -> Result<RunDir> {
    Ok(RunDir::open(path, None)?.0)
}

//! `zoo compare`: train several models under the same budget, seeds and data, evaluate each
//! with the same instruments, and write a report (`report.md`, a self-contained
//! `report.html`, figures). Interrupted comparisons resume: finished runs and evaluations are
//! kept, unfinished runs continue from their checkpoints.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use zoo_core::config::DatasetKind;
use zoo_core::game::Capability;
use zoo_core::io::write_atomic;
use zoo_train::bench::{peak_rss_mib, reset_peak_rss};
use zoo_train::tasks::{TrainReport, TrainRequest};

use crate::eval::{ClassMetrics, Evaluation, ImageMetrics};
use crate::evaluate::EvalRequest;
pub use crate::report::{ModelSummary, RunResult, eval_every, table};
use crate::report::{Setup, summarise};

/// A model as `zoo compare` drives it: the CLI's registry entries are contenders.
pub trait Contender: Sync {
    /// The registry name.
    fn name(&self) -> &'static str;
    /// What its trained generator can do.
    fn capabilities(&self) -> &'static [Capability];
    /// `zoo train`.
    fn train(&self, req: &TrainRequest) -> Result<TrainReport>;
    /// `zoo eval`.
    fn eval(&self, req: &EvalRequest) -> Result<Evaluation>;
}

/// What to compare.
#[derive(Clone)]
pub struct CompareRequest {
    /// The models, in report order.
    pub models: Vec<&'static dyn Contender>,
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
    pub stop: Option<zoo_train::engine::StopSignal>,
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
fn run_one(req: &CompareRequest, entry: &dyn Contender, seed: u64) -> Result<RunResult> {
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
    reset_peak_rss();
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
        time_limit: None,
        on_run: None,
    })?;
    let peak_mib = peak_rss_mib();
    seconds += report.summary.seconds;
    write_atomic(&timing_path, seconds.to_string().as_bytes())?;
    tracing::info!("{} seed {seed}: evaluating", entry.name());
    let eval = match entry.eval(&EvalRequest {
        run_dir: report.run_dir.clone(),
        n: Some(req.n),
        checkpoint: None,
        weights: Default::default(),
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
    /// The real test split's per-class metrics, when a model is class-conditional.
    pub class_floor: Option<ClassMetrics>,
    /// `report.html`.
    pub report: PathBuf,
}

/// Runs the comparison and writes the report.
pub fn compare(req: &CompareRequest) -> Result<Comparison> {
    ensure!(!req.models.is_empty(), "name at least one model to compare");
    if let Some(m) = req
        .models
        .iter()
        .find(|m| !m.capabilities().contains(&Capability::Sample))
    {
        anyhow::bail!(
            "zoo compare ranks noise-to-image GANs by their samples; {} translates images \
             (evaluate its runs with `zoo eval`)",
            m.name()
        );
    }
    for (i, m) in req.models.iter().enumerate() {
        ensure!(
            !req.models[..i].iter().any(|o| o.name() == m.name()),
            "{} is named twice; name each model once",
            m.name()
        );
    }
    ensure!(req.steps > 0, "--steps must be at least 1 (got 0)");
    // Every option is checked before the first model trains.
    crate::evaluate::check_n(req.n)?;
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
    let setup = Setup {
        out: req.out.clone(),
        dataset: req.dataset,
        steps: req.steps,
        seeds: req.seeds,
        n: req.n,
    };
    let report = crate::report::write(&setup, &summaries, &results, &floor)?;
    let class_floor = results
        .iter()
        .find_map(|r| r.eval.class_floor.as_deref().cloned());
    Ok(Comparison {
        summaries,
        floor,
        class_floor,
        report,
    })
}

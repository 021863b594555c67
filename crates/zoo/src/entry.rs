//! The object-safe face of a model, for the registry.
//!
//! The registry is one static slice of `&dyn ModelEntry` (ripgrep's `FLAGS` shape); the
//! blanket adapter [`Entry<M>`] turns any [`Game`] into an entry by calling the generic tasks
//! of zoo-train and zoo-eval, so adding a model is one crate plus one line
//! `&Entry::<MyGan>::new()` in [`crate::registry`].

use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use anyhow::Result;
use zoo_core::game::{Capability, Game, Role};
use zoo_eval::compare::Contender;
use zoo_eval::eval::Evaluation;
use zoo_eval::evaluate::EvalRequest;
use zoo_eval::watch::Watch;
use zoo_export::Export;
use zoo_train::bench::BenchReport;
use zoo_train::export::{ExportReport, ExportRequest};
use zoo_train::tasks::{
    self, BenchRequest, SampleRequest, TrainReport, TrainRequest, TranslateReport, TranslateRequest,
};

/// A registered model, as the CLI sees it.
pub trait ModelEntry: Contender {
    /// One line for `zoo list`.
    fn about(&self) -> &'static str;
    /// The full default config as TOML.
    fn default_config(&self) -> Result<String>;
    /// Each network's layers and parameter counts.
    fn info(&self, config_file: Option<&Path>, sets: &[String]) -> Result<String>;
    /// Samples from a run's latest checkpoint; returns the files written.
    fn sample(&self, req: &SampleRequest) -> Result<Vec<PathBuf>>;
    /// Times training steps on synthetic data of the configured shape.
    fn bench(&self, req: &BenchRequest) -> Result<BenchReport>;
    /// Translates a folder of images with an image-to-image run.
    fn translate(&self, req: &TranslateRequest) -> Result<TranslateReport>;
    /// A run's generator as an ONNX model, checked by tract against zoo's forward.
    fn export(&self, req: &ExportRequest) -> Result<ExportReport>;
}

/// Adapts a [`Game`] to [`ModelEntry`].
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

impl<M: Game> Contender for Entry<M> {
    fn name(&self) -> &'static str {
        M::NAME
    }
    fn capabilities(&self) -> &'static [Capability] {
        <M::Role as Role<M>>::CAPABILITIES
    }
    fn train(&self, req: &TrainRequest) -> Result<TrainReport> {
        tasks::train::<M>(req, &Watch::for_run::<M>)
    }
    fn eval(&self, req: &EvalRequest) -> Result<Evaluation> {
        zoo_eval::evaluate::eval::<M>(req)
    }
}

impl<M: Game + Export> ModelEntry for Entry<M> {
    fn about(&self) -> &'static str {
        M::ABOUT
    }
    fn default_config(&self) -> Result<String> {
        let cfg = M::defaults();
        cfg.to_display_toml(&M::unset_notes(&cfg))
    }
    fn info(&self, config_file: Option<&Path>, sets: &[String]) -> Result<String> {
        tasks::info::<M>(config_file, sets)
    }
    fn sample(&self, req: &SampleRequest) -> Result<Vec<PathBuf>> {
        tasks::sample::<M>(req)
    }
    fn bench(&self, req: &BenchRequest) -> Result<BenchReport> {
        tasks::bench::<M>(req)
    }
    fn translate(&self, req: &TranslateRequest) -> Result<TranslateReport> {
        tasks::translate::<M>(req)
    }
    fn export(&self, req: &ExportRequest) -> Result<ExportReport> {
        zoo_train::export::export::<M>(req)
    }
}

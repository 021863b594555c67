//! The FD tracker that `train.eval_every` plugs into the engine ([`Observer`]): FD and class
//! coverage of a fixed batch of samples against the real training images, the best FD so far
//! (kept as `checkpoints/best`), and a warning on coverage collapse.

use anyhow::{Context, Result};
use burn::prelude::*;
use zoo_core::config::RunConfig;
use zoo_core::game::Game;
use zoo_core::io::write_atomic;
use zoo_core::streams::{WATCH, mix};
use zoo_train::checkpoint::fill_checkpoint;
use zoo_train::engine::{Moment, Observer};
use zoo_train::run::RunDir;
use zoo_train::tasks::{generate, sampler_of};

use crate::eval::Reference;

/// See the module docs.
pub struct Watch {
    reference: Reference,
    every: u64,
    /// (FD, classes hit) of the latest evaluation.
    last: (f64, f64),
    best: Option<f64>,
    most_classes: f64,
}

impl Watch {
    /// The tracker of a run whose config sets `train.eval_every` (`None` when it is 0).
    pub fn for_run<M: Game>(
        model: &M,
        cfg: &RunConfig<M::Config>,
        run: &RunDir,
        device: &Device,
    ) -> Result<Option<Box<dyn Observer<M>>>> {
        if cfg.train.eval_every == 0 {
            return Ok(None);
        }
        sampler_of(model)
            .context("train.eval_every needs a model that samples from noise; set it to 0")?;
        let reference = Reference::new(&cfg.data, cfg.train.eval_samples, cfg.train.seed, device)
            .context("train.eval_every (set it to 0 to train without evaluations)")?;
        let best = match run.best_checkpoint()? {
            Some(ck) => {
                let p = ck.file("metric.toml");
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let t: toml::Table = text
                    .parse()
                    .with_context(|| format!("{} is damaged", p.display()))?;
                t.get("fd").and_then(toml::Value::as_float)
            }
            None => None,
        };
        Ok(Some(Box::new(Self {
            reference,
            every: cfg.train.eval_every,
            last: (f64::NAN, f64::NAN),
            best,
            most_classes: 0.0,
        })))
    }
}

impl<M: Game> Observer<M> for Watch {
    /// Scores the generator at the start and every `eval_every` steps (and at the end); keeps
    /// a new best checkpoint when FD improved after a step.
    fn observe(&mut self, at: &Moment<'_, M>, first: bool) -> Result<()> {
        if !(first || at.step.is_multiple_of(self.every) || at.step == at.total) {
            return Ok(());
        }
        let (cfg, step) = (at.cfg, at.step);
        let device = self.reference.device();
        let g = at.players.sampler();
        let seed = mix(cfg.train.seed, WATCH);
        let images = generate(at.model, &g, cfg.train.eval_samples, seed, &device)?;
        let m = self.reference.score(&images);
        let classes = m.coverage.classes_hit as f64;
        self.last = (m.fd, classes);
        tracing::info!(
            "step {step}: FD {:.2} (floor {:.2}), {} of {} classes",
            m.fd,
            self.reference.floor().fd,
            m.coverage.classes_hit,
            m.coverage.classes
        );
        if classes + 2.0 <= self.most_classes {
            tracing::warn!(
                "step {step}: class coverage collapsed from {} to {} classes (mode collapse); \
                 the best checkpoint so far is kept in checkpoints/best",
                self.most_classes,
                classes
            );
        }
        self.most_classes = self.most_classes.max(classes);
        if !first && m.fd.is_finite() && self.best.is_none_or(|b| m.fd < b) {
            self.best = Some(m.fd);
            at.run.save_best(at.state(), |dir| {
                fill_checkpoint(at.model, at.players, dir)?;
                write_atomic(
                    &dir.join("metric.toml"),
                    format!(
                        "fd = {:?}\nclasses_hit = {}\n",
                        m.fd, m.coverage.classes_hit
                    )
                    .as_bytes(),
                )
            })?;
        }
        Ok(())
    }

    fn columns(&self) -> Vec<(&'static str, f64)> {
        vec![("fd", self.last.0), ("classes_hit", self.last.1)]
    }
}

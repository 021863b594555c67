//! zoo-train: the trainer. It depends on zoo-core (and burn) only; evaluation (zoo-eval) plugs
//! into it through [`engine::Observer`], and the CLI calls its [`tasks`].
//!
//! - [`engine`]: the loop and the observer hook; [`step`]: one step ([`step::Players`]);
//! - [`params`]: seeded initialisation, stable parameter ids, loading records;
//! - [`checkpoint`]: what a checkpoint holds, written canonically (equal runs, equal bytes);
//! - [`ema`]: the moving average of the generator (`train.ema`);
//! - [`log`]: progress bar, metrics.csv, losses.png, divergence messages;
//! - [`run`]: run folders, atomic checkpoints, locks; [`output`]: PNG grids, CSV, figures;
//! - [`bench`]: timing training steps;
//! - [`tasks`]: `train`, `sample`, `translate`, `bench`, `info` for any model;
//! - [`testing`]: helpers for model crates' tests.

pub mod bench;
pub mod checkpoint;
pub mod ema;
pub mod engine;
pub mod export;
pub mod log;
pub mod output;
pub mod params;
pub mod progress;
pub mod run;
pub mod step;
pub mod tasks;
pub mod testing;

#[cfg(test)]
mod tests;

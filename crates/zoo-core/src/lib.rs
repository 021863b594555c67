//! zoo-core: the model-independent half of zoo.
//!
//! - [`loss`]: adversarial objectives on logits (minimax, non-saturating, least squares,
//!   hinge, Wasserstein), one enum with one dispatch site;
//! - [`gan`]: the [`gan::GanModel`] trait a model crate implements;
//! - [`engine`]: the generic training loop (alternating D/G updates, Adam per player,
//!   schedules, seeded RNG, logging, sample grids, atomic checkpoints, exact resume);
//! - [`fast`]: faster convolutions and activations (forward and backward) on flex;
//! - [`entry`]: the object-safe [`entry::ModelEntry`] the CLI's registry lists;
//! - [`data`]: MNIST / Fashion-MNIST (IDX), image folders, seeded batching, `zoo data get`;
//! - [`config`], [`run`], [`output`], [`io`]: configs, run folders, PNG/CSV/figures, atomic writes;
//! - [`testing`]: helpers for model crates' tests.
//!
//! No model is named here.

pub mod classifier;
pub mod compare;
pub mod config;
pub mod data;
pub mod engine;
pub mod entry;
pub mod eval;
pub mod fast;
pub mod game;
pub mod gan;
pub mod io;
pub mod loss;
pub mod metrics;
pub mod output;
pub mod report;
pub mod run;
pub mod testing;

pub use burn;

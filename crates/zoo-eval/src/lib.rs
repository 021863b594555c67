//! zoo-eval: how good a trained generator is. It depends on zoo-core and zoo-train; the CLI
//! calls it, and the engine sees it only through [`watch::Watch`], an
//! [`Observer`](zoo_train::engine::Observer).
//!
//! - [`classifier`]: zoo's own feature classifier (trained once per dataset, cached);
//! - [`metrics`]: FD, KID, classifier score, precision/recall, class coverage;
//! - [`eval`]: the image metrics against the real-data floor, and the report types;
//! - [`evaluate`]: `zoo eval` for any model; [`translation`]: metrics of a translator;
//! - [`watch`]: FD during training (`train.eval_every`), the best checkpoint;
//! - [`compare`]: `zoo compare`; [`report`]: its tables, figures and pages.

pub mod classifier;
pub mod compare;
pub mod eval;
pub mod evaluate;
pub mod metrics;
pub mod report;
pub mod translation;
pub mod watch;

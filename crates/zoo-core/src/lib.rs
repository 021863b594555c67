//! zoo-core: the model API of zoo — what a model crate implements and everything it may use.
//! It depends on burn and zoo-kernels only; the trainer (zoo-train), evaluation (zoo-eval) and
//! the CLI (zoo) build on it, never the other way round. No model is named here.
//!
//! - [`game`]: the [`game::Game`] trait the engine drives, the typed capabilities
//!   ([`game::Sample`], [`game::Translate`]) and the [`game::Role`] that declares them;
//! - [`gan`]: the simpler [`gan::GanModel`] trait of noise-to-image GANs (a `Game` through a
//!   blanket impl), and [`gan::Conditional`] for class-conditional ones;
//! - [`loss`]: adversarial objectives on logits (minimax, non-saturating, least squares,
//!   hinge, Wasserstein), one enum with one dispatch site;
//! - [`reg`]: discriminator regularisers and what burn 0.22 allows of them;
//! - [`nn`]: layers any model may use (spectral normalisation);
//! - [`augment`]: DiffAugment, the differentiable augmentation of what D sees;
//! - [`config`]: the typed run config and its one resolver;
//! - [`data`]: MNIST / Fashion-MNIST (IDX), image folders (flat, one sub-folder per class,
//!   paired), 2-D mixtures, seeded batching with labels;
//! - [`streams`]: every random stream id; [`io`]: atomic writes.

pub mod augment;
pub mod config;
pub mod data;
pub mod game;
pub mod gan;
pub mod io;
pub mod loss;
pub mod mem;
pub mod nn;
pub mod reg;
pub mod streams;

pub use burn;
/// zoo's own CPU kernels (re-exported so that a model crate needs only zoo-core).
pub use zoo_kernels as kernels;

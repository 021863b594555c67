//! The one list of models. Adding a model is one crate plus one line here.

use crate::entry::{Entry, ModelEntry};
use anyhow::{Result, bail};

/// Every model `zoo` knows, in the order `zoo list` shows them.
pub static MODELS: &[&dyn ModelEntry] = &[
    &Entry::<zoo_vanilla::Vanilla>::new(),
    &Entry::<zoo_dcgan::Dcgan>::new(),
    &Entry::<zoo_lsgan::Lsgan>::new(),
    &Entry::<zoo_sngan::Sngan>::new(),
    &Entry::<zoo_cgan::CganGame>::new(),
    &Entry::<zoo_acgan::AcganGame>::new(),
    &Entry::<zoo_cyclegan::CycleGan>::new(),
    &Entry::<zoo_pix2pix::Pix2Pix>::new(),
];

/// Looks a model up by name; an unknown name lists the valid ones.
pub fn find(name: &str) -> Result<&'static dyn ModelEntry> {
    match MODELS.iter().find(|m| m.name() == name) {
        Some(m) => Ok(*m),
        None => bail!(
            "unknown model `{name}`; valid models: {} (see `zoo list`)",
            names().join(", ")
        ),
    }
}

/// The registered names.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name()).collect()
}

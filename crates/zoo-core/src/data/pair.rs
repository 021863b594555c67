//! Demo domain pairs with a known true mapping, for image-to-image models: the translation
//! of a held-out image can be compared with the truth, not only looked at.
//!
//! `mnist-invert`: domain A holds MNIST digits, domain B *other* digits with their
//! intensities inverted (255 − v), so the pair is unpaired but the true A→B (and B→A) mapping
//! is known: inversion. The root gets the reference layout `trainA/ trainB/ testA/ testB/`
//! and a `zoo-pair.toml` naming the mapping.

use std::path::Path;

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::DatasetKind;
use crate::data::{ImageSet, Split, load_idx_split, locate_idx};
use crate::io::write_atomic;

/// The file that names a pair's true mapping.
pub const PAIR_FILE: &str = "zoo-pair.toml";

/// A known pixelwise mapping between two domains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapping {
    /// v ↦ 255 − v (in [-1, 1]: x ↦ −x); its own inverse.
    Invert,
}

impl Mapping {
    /// The true translation of images in [-1, 1] (either direction: inversion is an
    /// involution).
    pub fn apply(self, images: Tensor<4>) -> Tensor<4> {
        match self {
            Mapping::Invert => images.neg(),
        }
    }
}

/// What `zoo-pair.toml` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairInfo {
    /// The true mapping from A to B.
    pub mapping: Mapping,
    /// Where the images came from.
    pub source: String,
}

/// Reads the pair file of `root`, if there is one.
pub fn read_pair_info(root: &Path) -> Result<Option<PairInfo>> {
    let path = root.join(PAIR_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let info = toml::from_str(&text).with_context(|| format!("bad {}", path.display()))?;
    Ok(Some(info))
}

/// Images written per folder by [`make_mnist_invert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PairCounts {
    /// trainA and trainB each.
    pub train: usize,
    /// testA and testB each.
    pub test: usize,
}

fn write_folder(
    set: &ImageSet,
    range: std::ops::Range<usize>,
    invert: bool,
    dir: &Path,
) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for (k, i) in range.enumerate() {
        let mut img = set.to_image(i);
        if invert {
            img.invert();
        }
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .context("encoding a PNG")?;
        write_atomic(&dir.join(format!("{k:05}.png")), &bytes)?;
    }
    Ok(())
}

/// Writes the `mnist-invert` pair under `out` from the MNIST found through `mnist_dir` (or the
/// usual search order): A = the first `counts.train` training digits, B = the next
/// `counts.train` digits inverted; testA / testB likewise from the test split.
pub fn make_mnist_invert(mnist_dir: Option<&Path>, out: &Path, counts: PairCounts) -> Result<()> {
    ensure!(
        counts.train > 0 && counts.test > 0,
        "the pair needs at least one training and one test image per domain"
    );
    let train_dir = locate_idx(DatasetKind::Mnist, mnist_dir, Split::Train)?;
    let test_dir = locate_idx(DatasetKind::Mnist, mnist_dir, Split::Test)?;
    for input in [&train_dir, &test_dir] {
        crate::io::ensure_apart(out, "--out", input, "MNIST")?;
    }
    let train = load_idx_split(&train_dir, Split::Train)?;
    let test = load_idx_split(&test_dir, Split::Test)?;
    ensure!(
        2 * counts.train <= train.len && 2 * counts.test <= test.len,
        "MNIST has {} training and {} test digits: at most {} and {} per domain",
        train.len,
        test.len,
        train.len / 2,
        test.len / 2
    );
    let (n, m) = (counts.train, counts.test);
    let info = PairInfo {
        mapping: Mapping::Invert,
        source: format!(
            "MNIST ({}): A = digits, B = other digits with inverted intensities",
            train_dir.display()
        ),
    };
    let text = format!(
        "# Written by `zoo data pair mnist-invert`. The true A->B mapping is known.\n{}",
        toml::to_string(&info).context("serialising the pair file")?
    );
    // Written whole into a sibling folder, then swapped in: an older pair's files never stay
    // beside the new ones (A and B would overlap), and a crash leaves the old pair intact.
    replace_dir(out, |tmp| {
        write_folder(&train, 0..n, false, &tmp.join("trainA"))?;
        write_folder(&train, n..2 * n, true, &tmp.join("trainB"))?;
        write_folder(&test, 0..m, false, &tmp.join("testA"))?;
        write_folder(&test, m..2 * m, true, &tmp.join("testB"))?;
        write_atomic(&tmp.join(PAIR_FILE), text.as_bytes())
    })
}

/// Fills a fresh sibling of `out` with `fill`, then puts it in `out`'s place. An existing `out`
/// must be empty or an earlier pair (it holds `zoo-pair.toml`): anything else is the user's and
/// is refused, never replaced.
fn replace_dir(out: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if out.exists() {
        ensure!(
            out.is_dir(),
            "--out {} is a file; pass a folder for the pair",
            out.display()
        );
        let empty = std::fs::read_dir(out)
            .with_context(|| format!("cannot read {}", out.display()))?
            .next()
            .is_none();
        ensure!(
            empty || out.join(PAIR_FILE).is_file(),
            "--out {} holds files that are not a zoo pair (no {PAIR_FILE}); pass an empty or new \
             folder",
            out.display()
        );
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let tmp = crate::io::temp_path(out);
    let _ = std::fs::remove_dir_all(&tmp);
    let filled = std::fs::create_dir_all(&tmp)
        .with_context(|| format!("cannot create {}", tmp.display()))
        .and_then(|()| fill(&tmp));
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    let old = tmp.with_extension("old");
    if out.exists() {
        std::fs::rename(out, &old).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    std::fs::rename(&tmp, out).with_context(|| format!("cannot write {}", out.display()))?;
    let _ = std::fs::remove_dir_all(&old);
    Ok(())
}

/// Errors of translations against a known mapping, in pixel units of [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TranslationError {
    /// Mean |translation − truth|.
    pub l1: f64,
    /// PSNR of the translation against the truth, in dB.
    pub psnr: f64,
    /// Mean |input − truth|: the error of doing nothing.
    pub identity_l1: f64,
}

impl std::fmt::Display for TranslationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "against the known mapping: L1 {:.4} (doing nothing: {:.4}), PSNR {:.2} dB",
            self.l1, self.identity_l1, self.psnr
        )
    }
}

/// Compares `translated` with `mapping(input)`; all images in [-1, 1].
pub fn translation_error(
    mapping: Mapping,
    input: Tensor<4>,
    translated: Tensor<4>,
) -> TranslationError {
    let truth = mapping.apply(input.clone());
    let scalar = |t: Tensor<1>| t.into_scalar::<f32>().to_f64();
    // [-1, 1] → [0, 1] halves every difference.
    let l1 = scalar((translated.clone() - truth.clone()).abs().mean()) / 2.0;
    let mse = scalar((translated - truth.clone()).square().mean()) / 4.0;
    let identity_l1 = scalar((input - truth).abs().mean()) / 2.0;
    TranslationError {
        l1,
        psnr: -10.0 * mse.max(1e-12).log10(),
        identity_l1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translation_error_of_the_truth_is_zero_and_of_identity_is_the_baseline() {
        let dev = Device::flex();
        let x = Tensor::<4>::from_floats([[[[-1.0, 1.0], [0.0, 0.5]]]], &dev);
        let e = translation_error(Mapping::Invert, x.clone(), x.clone().neg());
        assert!(e.l1.abs() < 1e-7 && e.psnr > 100.0, "{e:?}");
        let e = translation_error(Mapping::Invert, x.clone(), x);
        // |x − (−x)| / 2 = |x|: mean of 1, 1, 0, 0.5.
        assert!((e.identity_l1 - 0.625).abs() < 1e-6, "{e:?}");
        assert!((e.l1 - e.identity_l1).abs() < 1e-7);
    }
}

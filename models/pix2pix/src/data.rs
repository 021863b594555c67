//! Paired training data: image `i` of A and image `i` of B are counterparts. Batches are drawn
//! in a seeded shuffled order, each pair randomly cropped and mirrored *together* (the
//! reference's jitter), so pixel (x, y) of an input stays pixel (x, y) of its target.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use zoo_core::data::paired::{PairedSet, load_aligned, load_paired_folders};
use zoo_core::data::{Batches, ImageSet, View};
use zoo_core::streams::{AUGMENT, mix};

/// Where a pix2pix run's pairs are, as `--domains` names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PairDirs {
    /// Two folders matched by file name: training A and B, and test A and B if any.
    Folders {
        /// trainA/ (or the first folder given).
        train: (PathBuf, PathBuf),
        /// testA/ and testB/ of a root, if both exist.
        test: Option<(PathBuf, PathBuf)>,
    },
    /// The reference's aligned images (A and B side by side in one file): `train/`, and
    /// `test/` (else `val/`) if there.
    Aligned {
        /// train/.
        train: PathBuf,
        /// test/ or val/.
        test: Option<PathBuf>,
    },
}

impl PairDirs {
    /// Resolves `--domains`: a root with `trainA/ trainB/ (testA/ testB/)`, a root with the
    /// reference's aligned `train/ (test/)`, or two folders matched by file name.
    pub fn resolve(domains: &[PathBuf]) -> Result<Self> {
        match domains {
            [] => bail!(
                "pix2pix needs paired images: pass --domains ROOT with ROOT/trainA and \
                 ROOT/trainB matched by file name (or the reference's aligned ROOT/train), or \
                 --domains DIR_A DIR_B (or set data.domains)"
            ),
            [root] => {
                ensure!(
                    root.is_dir(),
                    "--domains {} does not exist; pass a folder holding trainA/ and trainB/ (or \
                     train/ of side-by-side pairs)",
                    root.display()
                );
                let sub = |name: &str| Some(root.join(name)).filter(|p| p.is_dir());
                if let (Some(a), Some(b)) = (sub("trainA"), sub("trainB")) {
                    let test = sub("testA").zip(sub("testB"));
                    return Ok(Self::Folders {
                        train: (a, b),
                        test,
                    });
                }
                if let Some(train) = sub("train") {
                    return Ok(Self::Aligned {
                        train,
                        test: sub("test").or_else(|| sub("val")),
                    });
                }
                bail!(
                    "--domains {} holds neither trainA/ and trainB/ nor train/; pass a root with \
                     one of the two layouts, or two folders (--domains DIR_A DIR_B)",
                    root.display()
                )
            }
            [a, b] => {
                for (name, d) in [("A", a), ("B", b)] {
                    ensure!(
                        d.is_dir(),
                        "domain {name} folder {} does not exist; pass --domains DIR_A DIR_B",
                        d.display()
                    );
                }
                Ok(Self::Folders {
                    train: (a.clone(), b.clone()),
                    test: None,
                })
            }
            _ => bail!(
                "--domains takes one root folder or two paired folders (got {})",
                domains.len()
            ),
        }
    }

    /// The root that may hold `zoo-pair.toml`.
    pub fn root(&self) -> Option<PathBuf> {
        match self {
            PairDirs::Folders { train, .. } => train.0.parent().map(Path::to_path_buf),
            PairDirs::Aligned { train, .. } => train.parent().map(Path::to_path_buf),
        }
    }

    /// Loads the training pairs (`test = false`) or the held-out ones (`None` when there is no
    /// test split), with the channels of A and B, at side `size`.
    pub fn load(
        &self,
        test: bool,
        channels: (usize, usize),
        size: usize,
    ) -> Result<Option<PairedSet>> {
        let set = match (self, test) {
            (PairDirs::Folders { train, .. }, false) => Some((&train.0, &train.1)),
            (PairDirs::Folders { test, .. }, true) => test.as_ref().map(|(a, b)| (a, b)),
            (PairDirs::Aligned { train, test }, t) => {
                let Some(dir) = (if t { test.as_ref() } else { Some(train) }) else {
                    return Ok(None);
                };
                ensure!(
                    channels.0 == channels.1,
                    "aligned pair images hold A and B in one file, so both sides have the same \
                     channels: leave data.channels_b unset, or split the pairs into trainA/ and \
                     trainB/"
                );
                let set = load_aligned(dir, channels.0, size)
                    .with_context(|| format!("pairs in {}", dir.display()))?;
                return Ok(Some(set));
            }
        };
        let Some((a, b)) = set else { return Ok(None) };
        let set = load_paired_folders(a, b, channels, size)
            .with_context(|| format!("pairs in {} and {}", a.display(), b.display()))?;
        Ok(Some(set))
    }
}

/// One step's pairs: inputs and their targets, `[N, C, crop, crop]` each.
#[derive(Debug, Clone)]
pub struct Pairs {
    /// The generator's inputs.
    pub input: Tensor<4>,
    /// Their true counterparts.
    pub target: Tensor<4>,
}

/// The training data of a pix2pix run, in the trained direction (input → target).
pub struct PairedData {
    input: Batches,
    target: Arc<ImageSet>,
    held_out: Option<(Arc<ImageSet>, Arc<ImageSet>)>,
    crop: usize,
    flip: bool,
    seed: u64,
}

impl PairedData {
    /// Training pairs (and held-out ones for the grids), all at least `crop` on a side.
    pub fn new(
        train: (ImageSet, ImageSet),
        held_out: Option<(ImageSet, ImageSet)>,
        (crop, flip): (usize, bool),
        batch_size: usize,
        seed: u64,
    ) -> Result<Self> {
        let (a, b) = train;
        ensure!(
            a.size >= crop,
            "model.load_size ({}) must be at least data.image_size ({crop}), the crop size",
            a.size
        );
        Ok(Self {
            input: Batches::new(Arc::new(a), batch_size, seed).context("the training pairs")?,
            target: Arc::new(b),
            held_out: held_out.map(|(a, b)| (Arc::new(a), Arc::new(b))),
            crop,
            flip,
            seed,
        })
    }

    /// Training pairs.
    pub fn len(&self) -> usize {
        self.input.set().len
    }

    /// Whether there are no training pairs (never, once built).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Held-out pairs, if the data has a test split.
    pub fn held_out_len(&self) -> Option<usize> {
        self.held_out.as_ref().map(|(a, _)| a.len)
    }

    /// Batches per epoch.
    pub fn per_epoch(&self) -> u64 {
        self.input.per_epoch()
    }

    /// Batch `index`: the epoch's shuffled pairs, each cropped and flipped with one window for
    /// both sides; a pure function of the seed and the index.
    pub fn batch(&mut self, index: u64, device: &Device) -> Pairs {
        let idx = self.input.indices(index);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(self.seed ^ AUGMENT, index));
        let size = self.input.set().size;
        let views: Vec<View> = idx
            .iter()
            .map(|&i| View::random(i, size, self.crop, self.flip, &mut rng))
            .collect();
        Pairs {
            input: self.input.set().views(&views, self.crop, device),
            target: self.target.views(&views, self.crop, device),
        }
    }

    /// The first `n` held-out pairs (training pairs without a test split), centre-cropped.
    pub fn probe(&self, n: usize, device: &Device) -> Pairs {
        let (a, b) = match &self.held_out {
            Some((a, b)) => (a.as_ref(), b.as_ref()),
            None => (self.input.set(), self.target.as_ref()),
        };
        let views: Vec<View> = (0..n.clamp(1, a.len))
            .map(|i| View::centre(i, a.size, self.crop))
            .collect();
        Pairs {
            input: a.views(&views, self.crop, device),
            target: b.views(&views, self.crop, device),
        }
    }
}

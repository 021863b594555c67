//! Two unaligned image domains: A in a seeded shuffled order, B drawn at random each step;
//! random crops and mirror flips; held-out test images for the sample grids.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use zoo_core::data::{Batches, ImageSet, View, load_folder};
use zoo_core::streams::{AUGMENT, mix};

/// The folders of the two domains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDirs {
    /// Training images of A.
    pub train_a: PathBuf,
    /// Training images of B.
    pub train_b: PathBuf,
    /// Held-out A images (`testA/` of a root), if any.
    pub test_a: Option<PathBuf>,
    /// Held-out B images.
    pub test_b: Option<PathBuf>,
}

impl DomainDirs {
    /// Resolves `--domains`: two folders, or one root with `trainA/ trainB/ (testA/ testB/)`.
    pub fn resolve(domains: &[PathBuf]) -> Result<Self> {
        match domains {
            [] => bail!(
                "cyclegan needs two image domains: pass --domains DIR_A DIR_B, or --domains ROOT \
                 with ROOT/trainA and ROOT/trainB (or set data.domains)"
            ),
            [root] => {
                ensure!(
                    root.is_dir(),
                    "domain root {} does not exist; pass --domains DIR_A DIR_B or a folder \
                     holding trainA/ and trainB/",
                    root.display()
                );
                let (a, b) = (root.join("trainA"), root.join("trainB"));
                ensure!(
                    a.is_dir() && b.is_dir(),
                    "--domains {} is one folder without trainA/ and trainB/; pass two folders \
                     (--domains DIR_A DIR_B) or a root with the reference layout",
                    root.display()
                );
                let test = |name: &str| Some(root.join(name)).filter(|p| p.is_dir());
                Ok(Self {
                    train_a: a,
                    train_b: b,
                    test_a: test("testA"),
                    test_b: test("testB"),
                })
            }
            [a, b] => {
                for (name, d) in [("A", a), ("B", b)] {
                    ensure!(
                        d.is_dir(),
                        "domain {name} folder {} does not exist; pass --domains DIR_A DIR_B",
                        d.display()
                    );
                }
                Ok(Self {
                    train_a: a.clone(),
                    train_b: b.clone(),
                    test_a: None,
                    test_b: None,
                })
            }
            _ => bail!(
                "--domains takes one root folder or two domain folders (got {})",
                domains.len()
            ),
        }
    }
}

/// One step's real images.
#[derive(Debug, Clone)]
pub struct Pair {
    /// Images of A `[N, C, crop, crop]`.
    pub a: Tensor<4>,
    /// Images of B.
    pub b: Tensor<4>,
}

/// How training batches are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampling {
    /// Side of the random crops (`data.image_size`).
    pub crop: usize,
    /// Random left-right mirroring.
    pub flip: bool,
    /// Images per batch and domain.
    pub batch_size: usize,
    /// The run's seed.
    pub seed: u64,
}

/// The training data of a CycleGAN run.
pub struct Domains {
    a: Batches,
    b: Arc<ImageSet>,
    test_a: Option<Arc<ImageSet>>,
    test_b: Option<Arc<ImageSet>>,
    how: Sampling,
}

fn load(dir: &Path, name: &str, channels: usize, size: usize) -> Result<Arc<ImageSet>> {
    tracing::info!("loading domain {name} from {}", dir.display());
    Ok(Arc::new(
        load_folder(dir, channels, size).with_context(|| format!("domain {name}"))?,
    ))
}

impl Domains {
    /// Loads both domains (with `channels` of A and of B) at `load_size`, to be cropped to
    /// `how.crop`.
    pub fn load(
        dirs: &DomainDirs,
        (ca, cb): (usize, usize),
        load_size: usize,
        how: Sampling,
    ) -> Result<Self> {
        let a = load(&dirs.train_a, "A", ca, load_size)?;
        let b = load(&dirs.train_b, "B", cb, load_size)?;
        let test = |d: &Option<PathBuf>, name, c| -> Result<Option<Arc<ImageSet>>> {
            d.as_deref()
                .map(|d| load(d, name, c, load_size))
                .transpose()
        };
        let (test_a, test_b) = (
            test(&dirs.test_a, "testA", ca)?,
            test(&dirs.test_b, "testB", cb)?,
        );
        Self::from_sets(a, b, test_a, test_b, how)
    }

    /// Domains from image sets already in memory (all at least `how.crop` on a side).
    pub fn from_sets(
        a: Arc<ImageSet>,
        b: Arc<ImageSet>,
        test_a: Option<Arc<ImageSet>>,
        test_b: Option<Arc<ImageSet>>,
        how: Sampling,
    ) -> Result<Self> {
        ensure!(
            a.size >= how.crop && b.size >= how.crop,
            "model.load_size ({}) must be at least data.image_size ({}), the crop size",
            a.size.min(b.size),
            how.crop
        );
        let a = Batches::new(a, how.batch_size, how.seed).context("domain A")?;
        Ok(Self {
            a,
            b,
            test_a,
            test_b,
            how,
        })
    }

    /// Images in A and in B.
    pub fn sizes(&self) -> (usize, usize) {
        (self.a.set().len, self.b.len)
    }

    /// Batches per epoch (one pass over A).
    pub fn per_epoch(&self) -> u64 {
        self.a.per_epoch()
    }

    /// Batch `index`: A's images in the epoch's order, B's drawn at random, each randomly
    /// cropped and flipped; a pure function of the seed and the index.
    pub fn batch(&mut self, index: u64, device: &Device) -> Pair {
        let ia = self.a.indices(index);
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(self.how.seed ^ AUGMENT, index));
        let size = self.a.set().size;
        let va: Vec<View> = ia
            .iter()
            .map(|&i| View::random(i, size, self.how.crop, self.how.flip, &mut rng))
            .collect();
        let vb: Vec<View> = (0..ia.len())
            .map(|_| {
                let j = rng.random_range(0..self.b.len);
                View::random(j, self.b.size, self.how.crop, self.how.flip, &mut rng)
            })
            .collect();
        Pair {
            a: self.a.set().views(&va, self.how.crop, device),
            b: self.b.views(&vb, self.how.crop, device),
        }
    }

    /// The first `n` held-out images of each domain (training images when there is no test
    /// split), centre-cropped.
    pub fn probe(&self, n: usize, device: &Device) -> Pair {
        let pick = |test: &Option<Arc<ImageSet>>, train: &ImageSet| -> Tensor<4> {
            let set = test.as_deref().unwrap_or(train);
            let k = n.clamp(1, set.len);
            let views: Vec<View> = (0..k)
                .map(|i| View::centre(i, set.size, self.how.crop))
                .collect();
            set.views(&views, self.how.crop, device)
        };
        let a = pick(&self.test_a, self.a.set());
        let b = pick(&self.test_b, &self.b);
        let k = a.dims()[0].min(b.dims()[0]);
        Pair {
            a: a.narrow(0, 0, k),
            b: b.narrow(0, 0, k),
        }
    }
}

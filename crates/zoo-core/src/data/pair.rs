//! Domain pairs with a known truth, for image-to-image models: the translation of a held-out
//! image can be compared with its true counterpart, not only looked at.
//!
//! - `mnist-invert`: domain A holds MNIST digits, domain B *other* digits with their
//!   intensities inverted (255 − v), so the pair is unpaired but the true A→B (and B→A)
//!   mapping is known pixel for pixel: inversion.
//! - `emoji`: the same emoji drawn in two styles (A = Twemoji, B = Noto), composited on white;
//!   the test names are in both testA/ and testB/, so every held-out image has its true
//!   counterpart. The training folders hold the same names (paired, for pix2pix) or, with
//!   `unpaired`, disjoint halves of them (for CycleGAN).
//!
//! Each root gets the reference layout `trainA/ trainB/ testA/ testB/` and a `zoo-pair.toml`
//! naming the truth.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::DatasetKind;
use crate::data::{ImageSet, Split, load_idx_split, locate_idx};
use crate::io::write_atomic;

/// The file that names a pair's true mapping.
pub const PAIR_FILE: &str = "zoo-pair.toml";

/// What the true translation of a held-out image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapping {
    /// v ↦ 255 − v (in [-1, 1]: x ↦ −x); its own inverse.
    Invert,
    /// The file of the same name in the other domain's folder (testA/x.png ↔ testB/x.png).
    Counterparts,
}

impl Mapping {
    /// The true translation of images in [-1, 1] when it is a pixelwise function of the input
    /// (either direction: inversion is an involution); `None` for [`Mapping::Counterparts`],
    /// whose truth is a file.
    pub fn apply(self, images: Tensor<4>) -> Option<Tensor<4>> {
        match self {
            Mapping::Invert => Some(images.neg()),
            Mapping::Counterparts => None,
        }
    }
}

/// The folder holding the counterparts of images in `dir` for a translation `a2b` (or back):
/// `…/testA` ↔ `…/testB`, `…/trainA` ↔ `…/trainB`; `None` when `dir` is not named so.
pub fn counterpart_dir(dir: &Path, a2b: bool) -> Option<PathBuf> {
    let name = dir.file_name()?.to_str()?;
    let (from, to) = if a2b { ('A', 'B') } else { ('B', 'A') };
    let stem = name.strip_suffix(from)?;
    Some(dir.with_file_name(format!("{stem}{to}"))).filter(|d| d.is_dir())
}

/// What `zoo-pair.toml` says.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairInfo {
    /// The true mapping from A to B.
    pub mapping: Mapping,
    /// Where the images came from.
    pub source: String,
    /// trainA/ and trainB/ hold the same names (counterparts): paired training data.
    #[serde(default)]
    pub paired: bool,
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
        paired: false,
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

/// The two styles of the emoji set, as folders of its root.
pub const EMOJI_STYLES: [&str; 2] = ["twemoji", "noto"];

/// What `zoo data pair emoji` makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmojiSplit {
    /// Held-out names (each in testA/ and testB/).
    pub test: usize,
    /// Training names to use (default: all that are not held out).
    pub train: Option<usize>,
    /// trainA/ and trainB/ get disjoint halves of the training names (for CycleGAN) instead
    /// of the same names (pix2pix).
    pub unpaired: bool,
    /// Seed of the shuffle that picks the split.
    pub seed: u64,
}

/// Images written by [`make_emoji`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmojiCounts {
    /// trainA/.
    pub train_a: usize,
    /// trainB/.
    pub train_b: usize,
    /// testA/ and testB/ each.
    pub test: usize,
}

/// The emoji root: `explicit`, else `$ZOO_DATA/emoji`, `./data/emoji`; it must hold
/// `twemoji/` and `noto/`.
pub fn locate_emoji(explicit: Option<&Path>) -> Result<PathBuf> {
    let has = |d: &Path| EMOJI_STYLES.iter().all(|s| d.join(s).is_dir());
    let mut dirs = Vec::new();
    match explicit {
        Some(d) => dirs.extend([d.to_path_buf(), d.join("emoji")]),
        None => {
            if let Some(root) = std::env::var_os("ZOO_DATA") {
                dirs.push(PathBuf::from(root).join("emoji"));
            }
            dirs.push(PathBuf::from("data").join("emoji"));
        }
    }
    if let Some(d) = dirs.iter().find(|d| has(d)) {
        return Ok(d.clone());
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    anyhow::bail!(
        "the emoji set was not found (looked for twemoji/ and noto/ in {}); pass --data-dir \
         with the folder that holds them",
        searched.join(" and ")
    )
}

/// The file names (without extension) of the images in `dir`, each with its path.
fn emoji_names(dir: &Path) -> Result<std::collections::BTreeMap<String, PathBuf>> {
    Ok(super::list_images(dir)?
        .into_iter()
        .filter_map(|f| Some((f.file_stem()?.to_str()?.to_string(), f)))
        .collect())
}

/// Writes the Twemoji ↔ Noto pair under `out` from the emoji root found through `emoji_dir`:
/// A = Twemoji, B = Noto, alpha composited on white, 64×64 RGB PNG; `split.test` names drawn
/// with `split.seed` are held out in testA/ and testB/ (true counterparts), the rest train.
pub fn make_emoji(emoji_dir: Option<&Path>, out: &Path, split: EmojiSplit) -> Result<EmojiCounts> {
    use rand::SeedableRng;
    use rand::seq::SliceRandom;
    let root = locate_emoji(emoji_dir)?;
    crate::io::ensure_apart(out, "--out", &root, "the emoji set")?;
    let [tw, no] = EMOJI_STYLES.map(|s| root.join(s));
    let (a, b) = (emoji_names(&tw)?, emoji_names(&no)?);
    for (have, other, dir) in [(&a, &b, &no), (&b, &a, &tw)] {
        if let Some(name) = have.keys().find(|k| !other.contains_key(*k)) {
            anyhow::bail!(
                "{} has no {name}: the two styles must hold the same file names (see the set's \
                 SOURCE.md to rebuild it)",
                dir.display()
            );
        }
    }
    let mut names: Vec<&String> = a.keys().collect();
    let total = names.len();
    ensure!(
        split.test > 0 && split.test < total,
        "--test {} leaves no training or no test images: the set has {total} emoji, so pick 1 \
         to {}",
        split.test,
        total - 1
    );
    let left = total - split.test;
    let train = split.train.unwrap_or(left);
    ensure!(
        train >= 1 && train <= left && (!split.unpaired || train >= 2),
        "--train {train} does not fit: {left} emoji are left after the {} held out (and \
         --unpaired needs at least 2)",
        split.test
    );
    let mut rng = rand::rngs::Xoshiro256PlusPlus::seed_from_u64(split.seed);
    names.shuffle(&mut rng);
    let (test, rest) = names.split_at(split.test);
    let mut test = test.to_vec();
    test.sort();
    let mut train_names = rest[..train].to_vec();
    let (train_a, train_b) = if split.unpaired {
        let (x, y) = train_names.split_at_mut(train / 2);
        x.sort();
        y.sort();
        (x.to_vec(), y.to_vec())
    } else {
        train_names.sort();
        (train_names.clone(), train_names)
    };
    let info = PairInfo {
        mapping: Mapping::Counterparts,
        source: format!(
            "emoji ({}): A = Twemoji, B = Noto, alpha on white; seed {}",
            root.display(),
            split.seed
        ),
        paired: !split.unpaired,
    };
    let text = format!(
        "# Written by `zoo data pair emoji`. testA/ and testB/ hold the same names: each held-out \
         image has its true counterpart.\n{}",
        toml::to_string(&info).context("serialising the pair file")?
    );
    let write = |names: &[&String],
                 src: &std::collections::BTreeMap<String, PathBuf>,
                 dir: &Path| {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for name in names {
            let img = super::flatten_alpha(super::load_image(&src[*name], 64)?).to_rgb8();
            let mut bytes = Vec::new();
            image::DynamicImage::ImageRgb8(img)
                .write_to(
                    &mut std::io::Cursor::new(&mut bytes),
                    image::ImageFormat::Png,
                )
                .context("encoding a PNG")?;
            write_atomic(&dir.join(format!("{name}.png")), &bytes)?;
        }
        anyhow::Ok(())
    };
    replace_dir(out, |tmp| {
        write(&train_a, &a, &tmp.join("trainA"))?;
        write(&train_b, &b, &tmp.join("trainB"))?;
        write(&test, &a, &tmp.join("testA"))?;
        write(&test, &b, &tmp.join("testB"))?;
        write_atomic(&tmp.join(PAIR_FILE), text.as_bytes())
    })?;
    Ok(EmojiCounts {
        train_a: train_a.len(),
        train_b: train_b.len(),
        test: test.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counterpart_folders_swap_the_domain_letter() {
        let dir = tempfile::tempdir().expect("tmp");
        for d in ["testA", "testB", "trainA"] {
            std::fs::create_dir(dir.path().join(d)).expect("mkdir");
        }
        let p = |d: &str| dir.path().join(d);
        assert_eq!(counterpart_dir(&p("testA"), true), Some(p("testB")));
        assert_eq!(counterpart_dir(&p("testB"), false), Some(p("testA")));
        // The wrong direction, a missing sibling, an unrelated name: none.
        assert_eq!(counterpart_dir(&p("testA"), false), None);
        assert_eq!(counterpart_dir(&p("trainA"), true), None);
        assert_eq!(counterpart_dir(&p("photos"), true), None);
    }

    fn emoji_root(dir: &Path, n: usize) -> PathBuf {
        let root = dir.join("emoji");
        for (s, style) in EMOJI_STYLES.iter().enumerate() {
            std::fs::create_dir_all(root.join(style)).expect("mkdir");
            for i in 0..n {
                // Transparent outside a square whose colour tells the style and index apart.
                let img = image::RgbaImage::from_fn(64, 64, |x, y| {
                    let inside = (16..48).contains(&x) && (16..48).contains(&y);
                    image::Rgba([
                        (i * 20) as u8,
                        (s * 200) as u8,
                        0,
                        if inside { 255 } else { 0 },
                    ])
                });
                img.save(root.join(style).join(format!("e{i:02}.png")))
                    .expect("png");
            }
        }
        root
    }

    #[test]
    fn emoji_pair_holds_counterparts_and_disjoint_halves_when_unpaired() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = emoji_root(dir.path(), 10);
        let out = dir.path().join("pair");
        let split = EmojiSplit {
            test: 3,
            train: None,
            unpaired: true,
            seed: 1,
        };
        let counts = make_emoji(Some(&root), &out, split).expect("pair");
        assert_eq!((counts.train_a, counts.train_b, counts.test), (3, 4, 3));
        let names = |d: &str| -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(out.join(d))
                .expect("dir")
                .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("testA"), names("testB"));
        let (ta, tb, te) = (names("trainA"), names("trainB"), names("testA"));
        assert!(
            ta.iter().all(|n| !tb.contains(n) && !te.contains(n)),
            "{ta:?} {tb:?} {te:?}"
        );
        // Alpha on white; A is Twemoji (green 0), B is Noto (green 200).
        let px = |d: &str, x, y| {
            *image::open(out.join(d).join(&te[0]))
                .expect("png")
                .to_rgb8()
                .get_pixel(x, y)
        };
        assert_eq!(px("testA", 0, 0).0, [255, 255, 255]);
        assert_eq!(
            (px("testA", 32, 32).0[1], px("testB", 32, 32).0[1]),
            (0, 200)
        );
        let info = read_pair_info(&out).expect("read").expect("pair file");
        assert_eq!((info.mapping, info.paired), (Mapping::Counterparts, false));
        // Paired: the same names on both sides; the same seed, the same test names.
        let paired = EmojiSplit {
            unpaired: false,
            ..split
        };
        make_emoji(Some(&root), &out, paired).expect("again");
        assert_eq!(names("trainA"), names("trainB"));
        assert_eq!(names("testA"), te);
        // A name missing from one style is an error naming it.
        std::fs::remove_file(root.join("noto/e04.png")).expect("rm");
        let err = make_emoji(Some(&root), &out, paired)
            .expect_err("unmatched")
            .to_string();
        assert!(err.contains("has no e04"), "{err}");
    }
}

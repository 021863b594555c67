//! Paired image sets (pix2pix): two folders matched by file name, or the reference
//! pix2pix's side-by-side `AB` images.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use image::imageops::FilterType;

use super::{ImageSet, flatten_alpha, list_images, push_planar};

/// Two image sets whose image `i` are counterparts.
#[derive(Debug, Clone)]
pub struct PairedSet {
    /// The inputs (domain A).
    pub a: ImageSet,
    /// Their counterparts (domain B).
    pub b: ImageSet,
    /// Each pair's name (the path relative to the folder, without extension).
    pub names: Vec<String>,
}

fn stem_of(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .with_extension("")
        .to_string_lossy()
        .into_owned()
}

fn load_one(path: &Path, channels: usize, size: usize, out: &mut Vec<u8>) -> Result<()> {
    let img = super::load_image(path, size)?;
    push_planar(&flatten_alpha(img), channels, out);
    Ok(())
}

/// Loads folders `dir_a` and `dir_b` as pairs matched by file name (extension aside), each
/// side with its own channel count. Files without a counterpart are an error naming one.
pub fn load_paired_folders(
    dir_a: &Path,
    dir_b: &Path,
    (channels_a, channels_b): (usize, usize),
    size: usize,
) -> Result<PairedSet> {
    let index = |dir: &Path| -> Result<BTreeMap<String, PathBuf>> {
        Ok(list_images(dir)?
            .into_iter()
            .map(|f| (stem_of(dir, &f), f))
            .collect())
    };
    let (a, b) = (index(dir_a)?, index(dir_b)?);
    for (have, other, other_dir) in [(&a, &b, dir_b), (&b, &a, dir_a)] {
        if let Some(name) = have.keys().find(|k| !other.contains_key(*k)) {
            anyhow::bail!(
                "{} has no counterpart of {name} (paired folders match images by file name): \
                 add it or remove the unmatched file; unpaired domains are for cyclegan",
                other_dir.display()
            );
        }
    }
    let (mut pa, mut pb) = (Vec::new(), Vec::new());
    for (name, fa) in &a {
        let fb = &b[name];
        // Both are resized to one square: pixel (x, y) of A stays pixel (x, y) of B only when
        // the two have one shape (a resolution may differ).
        let dims = |f: &Path| {
            image::image_dimensions(f).with_context(|| format!("cannot read {}", f.display()))
        };
        let ((wa, ha), (wb, hb)) = (dims(fa)?, dims(fb)?);
        ensure!(
            wa as u64 * hb as u64 == wb as u64 * ha as u64,
            "{} is {wa}x{ha} but its counterpart {} is {wb}x{hb}: the two images of a pair must \
             have the same shape, so that their pixels correspond; crop or resize one of them",
            fa.display(),
            fb.display()
        );
        load_one(fa, channels_a, size, &mut pa)?;
        load_one(fb, channels_b, size, &mut pb)?;
    }
    let set = |pixels, channels| ImageSet {
        pixels,
        labels: None,
        len: a.len(),
        channels,
        size,
        floats: None,
    };
    Ok(PairedSet {
        a: set(pa, channels_a),
        b: set(pb, channels_b),
        names: a.into_keys().collect(),
    })
}

/// Loads the reference pix2pix's aligned images: each file is A and B side by side (A left,
/// B right, each half a square), as in its `facades/train/*.jpg`.
pub fn load_aligned(dir: &Path, channels: usize, size: usize) -> Result<PairedSet> {
    let files = list_images(dir)?;
    let (mut pa, mut pb) = (Vec::new(), Vec::new());
    for f in &files {
        let img = image::open(f).with_context(|| format!("cannot decode {}", f.display()))?;
        let (w, h) = (img.width(), img.height());
        ensure!(
            w >= 2 && h > 0 && w % 2 == 0,
            "{} is {w}x{h}; an aligned pair image holds A and B side by side (width = 2 × \
             the side of each half)",
            f.display()
        );
        for (x, out) in [(0, &mut pa), (w / 2, &mut pb)] {
            let half = img.crop_imm(x, 0, w / 2, h).resize_exact(
                size as u32,
                size as u32,
                FilterType::Triangle,
            );
            push_planar(&flatten_alpha(half), channels, out);
        }
    }
    let set = |pixels| ImageSet {
        pixels,
        labels: None,
        len: files.len(),
        channels,
        size,
        floats: None,
    };
    Ok(PairedSet {
        a: set(pa),
        b: set(pb),
        names: files.iter().map(|f| stem_of(dir, f)).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gray(path: &Path, w: u32, h: u32, v: impl Fn(u32) -> u8) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        image::GrayImage::from_fn(w, h, |x, _| image::Luma([v(x)]))
            .save(path)
            .expect("png");
    }

    #[test]
    fn folders_pair_by_name() {
        let dir = tempfile::tempdir().expect("tmp");
        let (a, b) = (dir.path().join("A"), dir.path().join("B"));
        for i in 0..6u8 {
            gray(&a.join(format!("{i}.png")), 4, 4, |_| i * 10);
            gray(&b.join(format!("{i}.png")), 4, 4, |_| i * 10 + 5);
        }
        let set = load_paired_folders(&a, &b, (1, 3), 4).expect("pairs");
        assert_eq!((set.a.len, set.b.channels), (6, 3));
        // Pair i holds A's image i and its counterpart: B is A's value + 5 in every pair.
        for i in 0..6 {
            let (p, q) = (set.a.pixels[i * 16], set.b.pixels[i * 48]);
            assert_eq!(q, p + 5, "pair {i}");
        }
        std::fs::remove_file(b.join("3.png")).expect("rm");
        let err = load_paired_folders(&a, &b, (1, 1), 4)
            .expect_err("unmatched")
            .to_string();
        assert!(err.contains("no counterpart of 3"), "{err}");
        // Counterparts of another resolution pair up; of another shape, they are refused.
        gray(&b.join("3.png"), 8, 8, |_| 35);
        load_paired_folders(&a, &b, (1, 1), 4).expect("same shape, twice the size");
        gray(&b.join("3.png"), 8, 4, |_| 35);
        let err = format!(
            "{:#}",
            load_paired_folders(&a, &b, (1, 1), 4).expect_err("shape")
        );
        assert!(
            err.contains("is 4x4 but its counterpart") && err.contains("8x4"),
            "{err}"
        );
    }

    #[test]
    fn aligned_images_split_in_halves() {
        let dir = tempfile::tempdir().expect("tmp");
        gray(
            &dir.path().join("p.png"),
            8,
            4,
            |x| if x < 4 { 0 } else { 255 },
        );
        let set = load_aligned(dir.path(), 1, 4).expect("aligned");
        assert!(set.a.pixels.iter().all(|&p| p == 0));
        assert!(set.b.pixels.iter().all(|&p| p == 255));
        gray(&dir.path().join("odd.png"), 7, 4, |_| 0);
        assert!(load_aligned(dir.path(), 1, 4).is_err());
    }
}

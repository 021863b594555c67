//! Datasets: MNIST-style IDX sets, image folders, where to find them, and seeded batching.

pub mod classes;
pub mod dataset;
pub mod idx;
pub mod pair;
pub mod paired;
pub mod similarity;
pub mod toy;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail, ensure};
use burn::prelude::*;
use image::imageops::FilterType;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::config::{DataConfig, DatasetKind};
use crate::streams::mix;

/// Images held as bytes (N × C × S × S, row-major), scaled to [-1, 1] when batched.
#[derive(Debug, Clone)]
pub struct ImageSet {
    /// Pixel bytes, image after image, channel-planar.
    pub pixels: Vec<u8>,
    /// Class labels, when the set has them.
    pub labels: Option<Vec<u8>>,
    /// Number of images.
    pub len: usize,
    /// 1 or 3.
    pub channels: usize,
    /// Side of each square image.
    pub size: usize,
    /// Raw values instead of pixel bytes (the 2-D toy sets: `channels` = 2, `size` = 1);
    /// batched as they are, not rescaled.
    pub floats: Option<Vec<f32>>,
}

impl ImageSet {
    /// `n` deterministic patterned images (benchmarks and tests; no files needed).
    pub fn synthetic(n: usize, channels: usize, size: usize) -> Self {
        ImageSet {
            pixels: (0..n * channels * size * size)
                .map(|i| ((i * 37) % 256) as u8)
                .collect(),
            labels: None,
            len: n,
            channels,
            size,
            floats: None,
        }
    }

    /// Bytes per image.
    pub fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Keeps the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len {
            self.len = n;
            self.pixels.truncate(n * self.image_len());
            let keep = n * self.image_len();
            if let Some(f) = &mut self.floats {
                f.truncate(keep);
            }
            if let Some(l) = &mut self.labels {
                l.truncate(n);
            }
        }
    }

    /// Converts to `channels` and a `size`×`size` side (gray→RGB repeats the plane,
    /// RGB→gray uses the luma weights; resizing is bilinear).
    pub fn conform(self, channels: usize, size: usize) -> ImageSet {
        if channels == self.channels && size == self.size {
            return self;
        }
        let mut pixels = Vec::with_capacity(self.len * channels * size * size);
        for i in 0..self.len {
            let img = self.to_image(i);
            let img = if size == self.size {
                img
            } else {
                img.resize_exact(size as u32, size as u32, FilterType::Triangle)
            };
            push_planar(&img, channels, &mut pixels);
        }
        ImageSet {
            pixels,
            labels: self.labels,
            len: self.len,
            channels,
            size,
            floats: None,
        }
    }

    /// Image `i` as a picture.
    pub fn to_image(&self, i: usize) -> image::DynamicImage {
        let (s, n) = (self.size as u32, self.size * self.size);
        let px = &self.pixels[i * self.image_len()..(i + 1) * self.image_len()];
        if self.channels == 1 {
            image::DynamicImage::ImageLuma8(
                image::GrayImage::from_raw(s, s, px.to_vec()).expect("sized buffer"),
            )
        } else {
            let mut rgb = Vec::with_capacity(3 * n);
            for p in 0..n {
                rgb.extend_from_slice(&[px[p], px[n + p], px[2 * n + p]]);
            }
            image::DynamicImage::ImageRgb8(image::RgbImage::from_raw(s, s, rgb).expect("sized"))
        }
    }

    /// The class labels of images `indices` as a `[B]` tensor, when the set is labelled.
    pub fn label_tensor(&self, indices: &[usize], device: &Device) -> Option<Tensor<1, Int>> {
        let labels = self.labels.as_ref()?;
        let v: Vec<i64> = indices.iter().map(|&i| labels[i] as i64).collect();
        Some(Tensor::from_data(
            TensorData::new(v, [indices.len()]),
            device,
        ))
    }

    /// Images `indices` as a `[B, C, S, S]` tensor in [-1, 1] (raw values for a float set).
    pub fn tensor(&self, indices: &[usize], device: &Device) -> Tensor<4> {
        let il = self.image_len();
        if let Some(f) = &self.floats {
            let mut v = Vec::with_capacity(indices.len() * il);
            for &i in indices {
                v.extend_from_slice(&f[i * il..(i + 1) * il]);
            }
            let shape = [indices.len(), self.channels, self.size, self.size];
            return Tensor::from_data(TensorData::new(v, shape), device);
        }
        let mut v = Vec::with_capacity(indices.len() * il);
        for &i in indices {
            v.extend(
                self.pixels[i * il..(i + 1) * il]
                    .iter()
                    .map(|&p| p as f32 / 127.5 - 1.0),
            );
        }
        Tensor::from_data(
            TensorData::new(v, [indices.len(), self.channels, self.size, self.size]),
            device,
        )
    }
}

/// One augmented view of an image: a `crop`×`crop` window at `(x, y)`, optionally mirrored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct View {
    /// Image index.
    pub index: usize,
    /// Left edge of the window.
    pub x: usize,
    /// Top edge of the window.
    pub y: usize,
    /// Mirror left-right.
    pub flip: bool,
}

impl View {
    /// A random window of side `crop` in an image of side `size` (and a coin flip when
    /// `flip`), drawn from `rng`.
    pub fn random(
        index: usize,
        size: usize,
        crop: usize,
        flip: bool,
        rng: &mut impl rand::Rng,
    ) -> Self {
        let span = size.saturating_sub(crop) + 1;
        View {
            index,
            x: rng.random_range(0..span),
            y: rng.random_range(0..span),
            flip: flip && rng.random_bool(0.5),
        }
    }

    /// The centred window of side `crop`, not mirrored.
    pub fn centre(index: usize, size: usize, crop: usize) -> Self {
        let off = size.saturating_sub(crop) / 2;
        View {
            index,
            x: off,
            y: off,
            flip: false,
        }
    }
}

impl ImageSet {
    /// The `views` (each `crop`×`crop`, inside the image) as a `[B, C, crop, crop]` tensor in
    /// [-1, 1].
    pub fn views(&self, views: &[View], crop: usize, device: &Device) -> Tensor<4> {
        let (s, c) = (self.size, self.channels);
        let mut v = Vec::with_capacity(views.len() * c * crop * crop);
        for view in views {
            let base = view.index * self.image_len();
            for ch in 0..c {
                for row in 0..crop {
                    let start = base + (ch * s + view.y + row) * s + view.x;
                    let line = &self.pixels[start..start + crop];
                    let scale = |p: &u8| *p as f32 / 127.5 - 1.0;
                    if view.flip {
                        v.extend(line.iter().rev().map(scale));
                    } else {
                        v.extend(line.iter().map(scale));
                    }
                }
            }
        }
        Tensor::from_data(TensorData::new(v, [views.len(), c, crop, crop]), device)
    }
}

fn push_planar(img: &image::DynamicImage, channels: usize, out: &mut Vec<u8>) {
    if channels == 1 {
        out.extend_from_slice(img.to_luma8().as_raw());
    } else {
        let rgb = img.to_rgb8();
        for c in 0..3 {
            out.extend(rgb.pixels().map(|p| p.0[c]));
        }
    }
}

/// Which half of an IDX dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 images.
    Train,
    /// 10,000 images.
    Test,
}

impl Split {
    fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// The canonical file names of an IDX set's split (images, labels).
pub fn idx_file_names(split: Split) -> [String; 2] {
    let p = split.prefix();
    [
        format!("{p}-images-idx3-ubyte"),
        format!("{p}-labels-idx1-ubyte"),
    ]
}

/// The file holding `name` in `dir`: `name.gz` or `name`, also in the dotted spelling.
pub fn find_idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    idx_file_candidates(dir, name).into_iter().next()
}

/// Every copy of IDX file `name` in `dir`, in the order they are read: gzipped first, then
/// raw; also the dotted spelling of LeCun's original archives (`train-images.idx3-ubyte`).
/// Regular files only.
pub fn idx_file_candidates(dir: &Path, name: &str) -> Vec<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    [name, dotted.as_str()]
        .iter()
        .flat_map(|n| [format!("{n}.gz"), n.to_string()])
        .map(|n| dir.join(n))
        .filter(|p| crate::io::is_regular(p))
        .collect()
}

fn has_idx_split(dir: &Path, split: Split) -> bool {
    idx_file_names(split)
        .iter()
        .all(|n| find_idx_file(dir, n).is_some())
}

/// Folders searched for a dataset, in order: `--data-dir` (and its `<name>` subfolder),
/// `$ZOO_DATA/<name>`, `./data/<name>`, and Debian's `/usr/share/datasets/<name>`.
pub fn candidate_dirs(kind: DatasetKind, explicit: Option<&Path>) -> Vec<PathBuf> {
    let name = kind.name();
    let mut dirs = Vec::new();
    if let Some(d) = explicit {
        dirs.push(d.to_path_buf());
        dirs.push(d.join(name));
        return dirs;
    }
    if let Some(root) = std::env::var_os("ZOO_DATA") {
        dirs.push(PathBuf::from(root).join(name));
    }
    dirs.push(PathBuf::from("data").join(name));
    dirs.push(PathBuf::from("/usr/share/datasets").join(name));
    dirs
}

/// Finds the folder that holds `split` of an IDX dataset, or explains what is missing.
pub fn locate_idx(kind: DatasetKind, explicit: Option<&Path>, split: Split) -> Result<PathBuf> {
    let dirs = candidate_dirs(kind, explicit);
    if let Some(d) = dirs.iter().find(|d| has_idx_split(d, split)) {
        return Ok(d.clone());
    }
    let [img, lab] = idx_file_names(split);
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    let name = kind.name();
    if let Some(given) = explicit {
        ensure!(
            !given.is_file(),
            "--data-dir {} is a file; pass the folder that holds {img}[.gz] and {lab}[.gz]",
            given.display()
        );
        // The folders zoo would search without --data-dir: say so when the data is there.
        if let Some(found) = candidate_dirs(kind, None)
            .into_iter()
            .find(|d| has_idx_split(d, split))
        {
            bail!(
                "{name} not found in --data-dir {} (expected {img}[.gz] and {lab}[.gz] in {}); \
                 it is in {}: drop --data-dir to use that copy",
                given.display(),
                searched.join(" or "),
                found.display()
            );
        }
        bail!(
            "{name} not found in --data-dir {}: expected {img}[.gz] and {lab}[.gz] in {}. \
             Run `zoo data get {name} --data-dir {}`, or pass the folder that holds the files \
             (see datasets.md)",
            given.display(),
            searched.join(" or "),
            given.display()
        );
    }
    bail!(
        "{name} not found: expected {img}[.gz] and {lab}[.gz] in one of: {}. \
         Run `zoo data get {name}`, or pass --data-dir DIR / set ZOO_DATA (see datasets.md)",
        searched.join(", "),
    )
}

/// Loads one split of MNIST or Fashion-MNIST from `dir`.
pub fn load_idx_split(dir: &Path, split: Split) -> Result<ImageSet> {
    let [img_name, lab_name] = idx_file_names(split);
    let img_path = find_idx_file(dir, &img_name)
        .with_context(|| format!("missing {img_name}[.gz] in {}", dir.display()))?;
    let lab_path = find_idx_file(dir, &lab_name)
        .with_context(|| format!("missing {lab_name}[.gz] in {}", dir.display()))?;
    let images = idx::read(&img_path)?;
    let labels = idx::read(&lab_path)?;
    ensure!(
        images.dims.len() == 3 && images.dims[1] == images.dims[2] && images.dims[1] > 0,
        "{} holds an array of shape {:?}; expected N×S×S square gray images (e.g. 60000×28×28)",
        img_path.display(),
        images.dims
    );
    ensure!(
        labels.dims.len() == 1,
        "{} holds an array of shape {:?}; expected a 1-D list of labels",
        lab_path.display(),
        labels.dims
    );
    ensure!(
        images.dims[0] == labels.dims[0],
        "{} has {} images but {} has {} labels; the two files must come from the same split",
        img_path.display(),
        images.dims[0],
        lab_path.display(),
        labels.dims[0]
    );
    ensure!(images.dims[0] > 0, "{} holds no images", img_path.display());
    Ok(ImageSet {
        len: images.dims[0],
        size: images.dims[1],
        channels: 1,
        pixels: images.data,
        labels: Some(labels.data),
        floats: None,
    })
}

const IMAGE_EXTS: [&str; 3] = ["png", "jpg", "jpeg"];

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>, seen: &mut Vec<PathBuf>) -> Result<()> {
    // A folder reached twice through links (a loop) is read once.
    let real = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    if seen.contains(&real) {
        return Ok(());
    }
    seen.push(real);
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read folder {}", dir.display()))?;
    for e in entries {
        let path = e
            .with_context(|| format!("cannot read folder {}", dir.display()))?
            .path();
        if path.is_dir() {
            collect_images(&path, out, seen)?;
        } else if path
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| IMAGE_EXTS.contains(&x.to_ascii_lowercase().as_str()))
        {
            // Only regular files: opening a FIFO named x.png would block forever.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => out.push(path),
                Ok(m) => tracing::warn!(
                    "skipping {}: {}, not a regular file",
                    path.display(),
                    crate::io::kind_of(&m)
                ),
                Err(e) => tracing::warn!("skipping {}: {e}", path.display()),
            }
        }
    }
    Ok(())
}

/// Lists the png/jpg files under `dir` (recursively, sorted; regular files only).
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    list_images_of(dir, "--data-dir")
}

/// [`list_images`] of a folder given by `flag` (`--input`, `--data-dir`): the messages name it.
pub fn list_images_of(dir: &Path, flag: &str) -> Result<Vec<PathBuf>> {
    ensure!(
        !dir.is_file(),
        "{flag} {} is a file, not a folder; pass the folder that holds the png/jpg images",
        dir.display()
    );
    ensure!(
        dir.is_dir(),
        "image folder {} does not exist; pass {flag} with a folder of png/jpg images",
        dir.display()
    );
    let mut files = Vec::new();
    collect_images(dir, &mut files, &mut Vec::new())?;
    files.sort();
    ensure!(
        !files.is_empty(),
        "image folder {} holds no .png/.jpg/.jpeg files; point {flag} at a folder of images",
        dir.display()
    );
    Ok(files)
}

/// Loads one image as a square `size`×`size` image: centre-cropped to a square, then resized.
pub fn load_image(path: &Path, size: usize) -> Result<image::DynamicImage> {
    let bytes = crate::io::read_regular(path)?;
    decode_image(&bytes, size).with_context(|| format!("cannot decode {}", path.display()))
}

/// Decodes an image file's bytes (png or jpeg, told by content) as a square `size`×`size`
/// image: centre-cropped to a square, then resized.
pub fn decode_image(bytes: &[u8], size: usize) -> Result<image::DynamicImage> {
    let img = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()?
        .decode()?;
    let (w, h) = (img.width(), img.height());
    ensure!(w > 0 && h > 0, "the image is {w}x{h} pixels");
    let side = w.min(h);
    let img = img.crop_imm((w - side) / 2, (h - side) / 2, side, side);
    Ok(if side as usize == size {
        img
    } else {
        img.resize_exact(size as u32, size as u32, FilterType::Triangle)
    })
}

/// Loads a folder of images; unreadable files are skipped with a warning.
pub fn load_folder(dir: &Path, channels: usize, size: usize) -> Result<ImageSet> {
    let files = list_images(dir)?;
    ensure_set_fits(files.len(), channels, size)?;
    let (set, _) = load_image_files(&files, channels, size)
        .with_context(|| format!("no usable image in {}", dir.display()))?;
    Ok(set)
}

/// Loads image files as `size`×`size` images with `channels` channels; unreadable files are
/// skipped with a warning. Returns the set and the files that made it in, in order.
pub fn load_image_files(
    files: &[PathBuf],
    channels: usize,
    size: usize,
) -> Result<(ImageSet, Vec<PathBuf>)> {
    let mut pixels = Vec::new();
    let mut loaded = Vec::with_capacity(files.len());
    let mut first_error = None;
    for f in files {
        match load_image(f, size) {
            Ok(img) => {
                push_planar(&flatten_alpha(img), channels, &mut pixels);
                loaded.push(f.clone());
            }
            Err(e) => {
                tracing::warn!("skipping unreadable image: {e:#}");
                first_error.get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    ensure!(
        !loaded.is_empty(),
        "none of the {} image files could be read (first: {}); check that they are valid \
         png/jpg",
        files.len(),
        first_error.unwrap_or_default()
    );
    if loaded.len() < files.len() {
        tracing::warn!(
            "{} of {} images skipped",
            files.len() - loaded.len(),
            files.len()
        );
    }
    let set = ImageSet {
        pixels,
        labels: None,
        len: loaded.len(),
        channels,
        size,
        floats: None,
    };
    Ok((set, loaded))
}

/// Composites transparent pixels over white (emoji and icons are RGBA).
fn flatten_alpha(img: image::DynamicImage) -> image::DynamicImage {
    if !img.color().has_alpha() {
        return img;
    }
    let mut rgba = img.to_rgba8();
    for p in rgba.pixels_mut() {
        let a = p.0[3] as u32;
        for c in 0..3 {
            p.0[c] = ((p.0[c] as u32 * a + 255 * (255 - a)) / 255) as u8;
        }
        p.0[3] = 255;
    }
    image::DynamicImage::ImageRgb8(image::DynamicImage::ImageRgba8(rgba).to_rgb8())
}

/// Loads the training images that `cfg` names, conformed to its channels and size.
pub fn load_training_set(cfg: &DataConfig) -> Result<ImageSet> {
    if cfg.dataset.is_toy() {
        return toy::training_set(cfg);
    }
    let mut set = match cfg.dataset {
        k @ (DatasetKind::Mnist | DatasetKind::FashionMnist) => {
            let dir = locate_idx(k, cfg.dir.as_deref(), Split::Train)?;
            tracing::info!("loading {} from {}", k.name(), dir.display());
            load_idx_split(&dir, Split::Train)?
        }
        DatasetKind::Ring8 | DatasetKind::Grid25 => unreachable!("handled above"),
        DatasetKind::Folder => {
            let dir = cfg.dir.as_deref().context(
                "data.dataset = \"folder\" needs a folder: pass --data-dir DIR (or --set data.dir=DIR)",
            )?;
            tracing::info!("loading images from {}", dir.display());
            load_folder(dir, cfg.channels, cfg.image_size)?
        }
    };
    if let Some(n) = cfg.limit {
        set.truncate(n);
    }
    ensure_set_fits(set.len, cfg.channels, cfg.image_size)?;
    Ok(set.conform(cfg.channels, cfg.image_size))
}

/// The memory check of a training set of `len` images held as bytes at `size`×`size` with
/// `channels` channels (see [`crate::mem`]).
fn ensure_set_fits(len: usize, channels: usize, size: usize) -> Result<()> {
    crate::mem::ensure_fits(
        len as u128 * (channels * size * size) as u128,
        &format!("the training set ({len} images of {size}x{size}x{channels})"),
        "data.image_size or data.limit",
    )
}

/// Seeded, epoch-wise shuffled batches, addressed by a global batch index so that a run
/// resumed at any step sees exactly the batches an uninterrupted run would.
pub struct Batches {
    set: Arc<ImageSet>,
    batch_size: usize,
    seed: u64,
    cached: Option<(u64, Vec<usize>)>,
}

impl Batches {
    /// Batches of `batch_size` (the last partial batch of each epoch is dropped).
    pub fn new(set: Arc<ImageSet>, batch_size: usize, seed: u64) -> Result<Self> {
        ensure!(
            set.len >= batch_size,
            "the dataset has {} images, fewer than train.batch_size = {batch_size}; \
             lower the batch size or add data",
            set.len
        );
        Ok(Self {
            set,
            batch_size,
            seed,
            cached: None,
        })
    }

    /// Full batches in one pass over the data.
    pub fn per_epoch(&self) -> u64 {
        (self.set.len / self.batch_size) as u64
    }

    /// The data.
    pub fn set(&self) -> &ImageSet {
        &self.set
    }

    /// The dataset indices of batch number `index` (counting from the start of training).
    pub fn indices(&mut self, index: u64) -> Vec<usize> {
        let epoch = index / self.per_epoch();
        let within = (index % self.per_epoch()) as usize;
        if self.cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
            let mut perm: Vec<usize> = (0..self.set.len).collect();
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(mix(self.seed, epoch));
            perm.shuffle(&mut rng);
            self.cached = Some((epoch, perm));
        }
        let perm = &self.cached.as_ref().expect("just filled").1;
        perm[within * self.batch_size..(within + 1) * self.batch_size].to_vec()
    }

    /// Batch number `index` as a tensor.
    pub fn batch(&mut self, index: u64, device: &Device) -> Tensor<4> {
        let idx = self.indices(index);
        self.set.tensor(&idx, device)
    }

    /// Batch number `index` with its class labels (when the set has them).
    pub fn real(&mut self, index: u64, device: &Device) -> Real {
        let idx = self.indices(index);
        Real {
            images: self.set.tensor(&idx, device),
            labels: self.set.label_tensor(&idx, device),
        }
    }
}

/// A batch of real images and, for labelled data, their classes.
#[derive(Debug, Clone)]
pub struct Real {
    /// `[B, C, H, W]` in [-1, 1].
    pub images: Tensor<4>,
    /// `[B]` class indices, when the data set is labelled (MNIST, Fashion-MNIST, class folders).
    pub labels: Option<Tensor<1, Int>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize) -> ImageSet {
        ImageSet {
            pixels: (0..n * 4).map(|i| (i % 256) as u8).collect(),
            labels: None,
            len: n,
            channels: 1,
            size: 2,
            floats: None,
        }
    }

    #[test]
    fn batches_are_seeded_permutations_per_epoch() {
        let set = Arc::new(toy(10));
        let mut a = Batches::new(set.clone(), 3, 7).expect("ok");
        let mut b = Batches::new(set.clone(), 3, 7).expect("ok");
        assert_eq!(a.per_epoch(), 3);
        let epoch0: Vec<usize> = (0..3).flat_map(|i| a.indices(i)).collect();
        let mut sorted = epoch0.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 9, "no repeats within an epoch");
        // Random access gives the same batches as sequential access.
        assert_eq!(b.indices(2), epoch0[6..9].to_vec());
        assert_ne!(a.indices(3), a.indices(0), "a new epoch reshuffles");
        let mut c = Batches::new(set.clone(), 3, 8).expect("ok");
        assert_ne!(c.indices_range(0..3), epoch0, "another seed, another order");
        assert!(Batches::new(set, 11, 0).is_err());
    }

    impl Batches {
        fn indices_range(&mut self, r: std::ops::Range<u64>) -> Vec<usize> {
            r.flat_map(|i| self.indices(i)).collect()
        }
    }

    #[test]
    fn tensors_are_scaled_to_minus_one_one() {
        let mut set = toy(2);
        set.pixels = vec![0, 255, 127, 128, 0, 0, 0, 0];
        let t = set.tensor(&[0], &Device::flex());
        assert_eq!(t.dims(), [1, 1, 2, 2]);
        let v = t.into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(v[0], -1.0);
        assert_eq!(v[1], 1.0);
        assert!((v[2] + 0.0039).abs() < 1e-3 && (v[3] - 0.0039).abs() < 1e-3);
    }

    #[test]
    fn conform_resizes_and_converts_channels() {
        let set = toy(3).conform(3, 4);
        assert_eq!((set.len, set.channels, set.size), (3, 3, 4));
        assert_eq!(set.pixels.len(), 3 * 3 * 16);
    }

    #[test]
    fn views_crop_and_mirror() {
        // One 3×3 gray image with pixels 0..9 (row-major).
        let set = ImageSet {
            pixels: (0..9).collect(),
            labels: None,
            len: 1,
            channels: 1,
            size: 3,
            floats: None,
        };
        let px = |t: Tensor<4>| -> Vec<f32> {
            let v = t.into_data().try_to_vec::<f32>().expect("f32");
            v.iter().map(|x| ((x + 1.0) * 127.5).round()).collect()
        };
        let dev = Device::flex();
        let v = View {
            index: 0,
            x: 1,
            y: 0,
            flip: false,
        };
        assert_eq!(px(set.views(&[v], 2, &dev)), vec![1.0, 2.0, 4.0, 5.0]);
        let f = View { flip: true, ..v };
        assert_eq!(px(set.views(&[f], 2, &dev)), vec![2.0, 1.0, 5.0, 4.0]);
        assert_eq!(
            View::centre(0, 5, 3),
            View {
                index: 0,
                x: 1,
                y: 1,
                flip: false
            }
        );
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
        for _ in 0..50 {
            let r = View::random(0, 5, 3, true, &mut rng);
            assert!(r.x <= 2 && r.y <= 2);
        }
    }
}

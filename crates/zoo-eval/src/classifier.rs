//! zoo's own feature extractor for 28×28 gray labelled sets (MNIST, Fashion-MNIST): a small
//! CNN trained on the real training split, then used frozen for the image metrics (its
//! 128-dimensional penultimate layer for FD, KID and precision/recall, its softmax for the
//! classifier score and class coverage) — the FID recipe with a domain network, as TF-GAN
//! does for MNIST.
//!
//! Trained once per dataset and cached: `$ZOO_CACHE`, else `$XDG_CACHE_HOME/zoo`, else
//! `~/.cache/zoo`, as `classifier-<dataset>-v1.bpk` with a `.toml` beside it recording the
//! test accuracy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::tensor::activation::{relu, softmax};
use serde::{Deserialize, Serialize};
use zoo_core::kernels::FastConv;

use crate::metrics::Features;
use zoo_core::config::DatasetKind;
use zoo_core::data::{Batches, ImageSet, Split, load_idx_split, locate_idx};
use zoo_core::io::write_atomic;
use zoo_core::streams::{CLASSIFIER_INIT, mix};

/// Width of the feature layer.
pub const FEATURES: usize = 128;
/// Version of the architecture and recipe, part of the cache file name.
const VERSION: u32 = 1;
/// Images per forward pass when extracting features.
const CHUNK: usize = 500;

/// conv3×3(32) → ReLU → pool → conv3×3(64) → ReLU → pool → FC 128 (the features) → ReLU →
/// dropout 0.3 → FC 10.
#[derive(Module, Debug)]
pub struct Classifier {
    conv1: Conv2d,
    conv2: Conv2d,
    pool: MaxPool2d,
    fc1: Linear,
    fc2: Linear,
    dropout: Dropout,
}

impl Classifier {
    /// A fresh network for 28×28 gray images and `classes` classes.
    pub fn new(classes: usize, device: &Device) -> Self {
        let conv = |i, o| {
            Conv2dConfig::new([i, o], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        Self {
            conv1: conv(1, 32),
            conv2: conv(32, 64),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            fc1: LinearConfig::new(64 * 7 * 7, FEATURES).init(device),
            fc2: LinearConfig::new(FEATURES, classes).init(device),
            dropout: DropoutConfig::new(0.3).init(),
        }
    }

    /// Penultimate features `[N, 128]` of images `[N, 1, 28, 28]` in [-1, 1].
    pub fn features(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.pool.forward(relu(self.conv1.fast_forward(x)));
        let x = self.pool.forward(relu(self.conv2.fast_forward(x)));
        let n = x.dims()[0];
        relu(self.fc1.forward(x.reshape([n, 64 * 7 * 7])))
    }

    /// Class logits.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.fc2.forward(self.dropout.forward(self.features(x)))
    }
}

/// What the cache records beside the weights.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassifierInfo {
    /// Dataset name.
    pub dataset: String,
    /// Accuracy on the test split.
    pub test_accuracy: f64,
    /// Training epochs.
    pub epochs: u64,
    /// Training images used (the whole split unless limited).
    pub train_images: usize,
}

/// The cache folder.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("ZOO_CACHE") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("zoo");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".cache").join("zoo"),
        None => PathBuf::from(".zoo-cache"),
    }
}

fn cache_paths(kind: DatasetKind) -> (PathBuf, PathBuf) {
    let base = cache_dir().join(format!("classifier-{}-v{VERSION}", kind.name()));
    (base.with_extension("bpk"), base.with_extension("toml"))
}

/// The labelled dataset kinds the classifier supports.
pub fn check_kind(kind: DatasetKind) -> Result<()> {
    ensure!(
        matches!(kind, DatasetKind::Mnist | DatasetKind::FashionMnist),
        "the image metrics need a labelled 28x28 gray set (mnist or fashion-mnist); \
         {} has no labels",
        kind.name()
    );
    Ok(())
}

/// Loads one split of a labelled set.
pub fn load_split(kind: DatasetKind, data_dir: Option<&Path>, split: Split) -> Result<ImageSet> {
    check_kind(kind)?;
    let dir = locate_idx(kind, data_dir, split)?;
    load_idx_split(&dir, split)
}

fn label_tensor(set: &ImageSet, idx: &[usize], device: &Device) -> Tensor<1, Int> {
    let labels = set.labels.as_deref().unwrap_or(&[]);
    let v: Vec<i64> = idx.iter().map(|&i| i64::from(labels[i])).collect();
    Tensor::from_data(TensorData::new(v, [idx.len()]), device)
}

/// Accuracy of `net` on `set`.
pub fn accuracy(net: &Classifier, set: &ImageSet, device: &Device) -> f64 {
    let labels = set.labels.as_deref().unwrap_or(&[]);
    let mut correct = 0usize;
    for start in (0..set.len).step_by(CHUNK) {
        let idx: Vec<usize> = (start..(start + CHUNK).min(set.len)).collect();
        let pred = net
            .forward(set.tensor(&idx, device))
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .expect("converted to i64");
        correct += idx
            .iter()
            .zip(pred)
            .filter(|(i, p)| i64::from(labels[**i]) == *p)
            .count();
    }
    correct as f64 / set.len.max(1) as f64
}

/// Trains the classifier on the training split (Adam, batch 128, lr cosine-decayed from 1e-3
/// to 1e-5) and reports its test accuracy.
pub fn train(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    epochs: u64,
    limit: Option<usize>,
    device: &Device,
) -> Result<(Classifier, ClassifierInfo)> {
    let seed = 0;
    let mut train = load_split(kind, data_dir, Split::Train)?;
    if let Some(n) = limit {
        train.truncate(n);
    }
    let train = Arc::new(train);
    let test = load_split(kind, data_dir, Split::Test)?;
    ensure!(
        train.size == 28 && test.size == 28,
        "the classifier expects 28x28 images; {} has {}x{}",
        kind.name(),
        train.size,
        train.size
    );
    // MNIST and Fashion-MNIST have ten classes: any other label is a damaged file.
    let classes = 10;
    for (set, split) in [(&*train, "training"), (&test, "test")] {
        let labels = set
            .labels
            .as_deref()
            .with_context(|| format!("the {} {split} split has no labels", kind.name()))?;
        if let Some((i, &l)) = labels
            .iter()
            .enumerate()
            .find(|(_, l)| **l as usize >= classes)
        {
            anyhow::bail!(
                "{} {split} label {i} is {l}, outside 0-9: the labels file is damaged; fetch it \
                 again with `zoo data get {}`",
                kind.name(),
                kind.name()
            );
        }
    }
    let ad = device.clone().autodiff();
    ad.seed(mix(seed, CLASSIFIER_INIT));
    let mut net = Classifier::new(classes, &ad);
    let mut opt = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut batches = Batches::new(train.clone(), 128, seed)?;
    let steps = epochs * batches.per_epoch();
    let bar = zoo_train::progress::bar(steps, &format!("{} classifier", kind.name()));
    for step in 0..steps {
        ad.seed(mix(seed, step));
        let idx = batches.indices(step);
        let x = train.tensor(&idx, &ad);
        let y = label_tensor(&train, &idx, &ad);
        let loss = loss_fn.forward(net.forward(x), y);
        if step % 50 == 0 {
            let loss = loss.clone().into_scalar::<f32>();
            bar.set_message(format!("loss {loss:.4}"));
            // Into a log file or a pipe, where no bar is drawn: a line now and then.
            if bar.is_hidden() && step % 500 == 0 {
                tracing::info!("classifier step {step}/{steps}: loss {loss:.4}");
            }
        }
        bar.inc(1);
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        // Cosine decay from 1e-3 to 1e-5.
        let t = step as f64 / steps.max(1) as f64;
        let lr = 1e-5 + 0.5 * (1e-3 - 1e-5) * (1.0 + (std::f64::consts::PI * t).cos());
        net = opt.step(lr, net, grads);
    }
    bar.finish_and_clear();
    let net = net.valid();
    let test_accuracy = accuracy(&net, &test, device);
    let info = ClassifierInfo {
        dataset: kind.name().to_string(),
        test_accuracy,
        epochs,
        train_images: train.len,
    };
    Ok((net, info))
}

/// Trains and caches the classifier of `kind`, replacing a cached one.
pub fn train_and_cache(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    epochs: u64,
    limit: Option<usize>,
    device: &Device,
) -> Result<ClassifierInfo> {
    let (net, info) = train(kind, data_dir, epochs, limit, device)?;
    // A classifier near chance would make every metric meaningless: never cached.
    ensure!(
        info.test_accuracy >= MIN_CACHED_ACCURACY,
        "the {} classifier reached only {:.1}% test accuracy (chance is 10%): the data or its \
         labels look wrong, so it was not cached; check the files (`zoo data get {}` verifies \
         them) or train longer (--epochs)",
        kind.name(),
        100.0 * info.test_accuracy,
        kind.name()
    );
    let (weights, meta) = cache_paths(kind);
    let dir = weights.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache folder {}", dir.display()))?;
    let tmp = weights.with_extension("bpk.tmp");
    net.save_file(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &weights)
        .with_context(|| format!("cannot write {}", weights.display()))?;
    let text = toml::to_string(&info).context("serialising the classifier record")?;
    write_atomic(&meta, text.as_bytes())?;
    Ok(info)
}

/// The lowest test accuracy a classifier may have to be cached (MNIST's reaches 99%; even
/// 500 images for one epoch give far more than this).
pub const MIN_CACHED_ACCURACY: f64 = 0.3;

/// Epochs of the classifier trained on demand.
pub const DEFAULT_EPOCHS: u64 = 6;

/// The cached classifier of `kind`, trained first when there is none.
pub fn load_or_train(
    kind: DatasetKind,
    data_dir: Option<&Path>,
    device: &Device,
) -> Result<(Classifier, ClassifierInfo)> {
    check_kind(kind)?;
    let (weights, meta) = cache_paths(kind);
    if !(weights.is_file() && meta.is_file()) {
        tracing::info!(
            "no cached {} classifier in {}; training one (a few minutes)",
            kind.name(),
            cache_dir().display()
        );
        train_and_cache(kind, data_dir, DEFAULT_EPOCHS, None, device)?;
    }
    let text = std::fs::read_to_string(&meta)
        .with_context(|| format!("cannot read {}", meta.display()))?;
    let info: ClassifierInfo = toml::from_str(&text)
        .with_context(|| format!("{} is damaged; delete it to retrain", meta.display()))?;
    let net = Classifier::new(10, device)
        .try_load_file(&weights)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot load {} ({e}); delete it to retrain the classifier",
                weights.display()
            )
        })?;
    Ok((net, info))
}

/// Features and class probabilities of images in [-1, 1] (any count; chunked).
pub fn embed(net: &Classifier, images: &[Tensor<4>]) -> (Features, Features) {
    let mut feats = Vec::new();
    let mut probs = Vec::new();
    let mut rows = 0;
    let mut classes = 0;
    for x in images {
        let f = net.features(x.clone());
        let p = softmax(net.fc2.forward(f.clone()), 1);
        let [n, k] = p.dims();
        rows += n;
        classes = k;
        let to_vec = |t: Tensor<2>| {
            t.into_data()
                .convert::<f32>()
                .try_to_vec::<f32>()
                .expect("converted to f32")
        };
        feats.extend(to_vec(f).into_iter().map(f64::from));
        probs.extend(to_vec(p).into_iter().map(f64::from));
    }
    (
        Features::from_row_slice(rows, FEATURES, &feats),
        Features::from_row_slice(rows, classes, &probs),
    )
}

/// Splits images `[N, C, H, W]` into chunks for [`embed`].
pub fn chunks(x: Tensor<4>) -> Vec<Tensor<4>> {
    let n = x.dims()[0];
    (0..n)
        .step_by(CHUNK)
        .map(|s| x.clone().narrow(0, s, CHUNK.min(n - s)))
        .collect()
}

/// Images `idx` of a set, in chunks.
pub fn set_chunks(set: &ImageSet, idx: &[usize], device: &Device) -> Vec<Tensor<4>> {
    idx.chunks(CHUNK).map(|c| set.tensor(c, device)).collect()
}

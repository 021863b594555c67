//! `zoo eval`: image metrics of a run's generator against the real data, with the
//! real-vs-real floor (test split against train split) beside every number.

use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use burn::prelude::*;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::classifier::{self, Classifier};
use crate::metrics::{
    Coverage, Features, MeanStd, classifier_score, coverage, frechet_distance, kid,
    precision_recall,
};
use zoo_core::config::DataConfig;
use zoo_core::data::classes::builtin_classes;
use zoo_core::data::similarity::TranslationError;
use zoo_core::data::{ImageSet, Split};
use zoo_core::streams::{REFERENCE_TEST, REFERENCE_TRAIN, mix};

/// Rows used for precision and recall (their k-NN search is quadratic).
pub const PR_MAX: usize = 5000;
/// KID subsets and their size (the KID paper's protocol).
const KID_SUBSETS: usize = 100;
const KID_SIZE: usize = 1000;
/// Neighbours of the precision/recall manifolds (Kynkäänniemi et al.).
pub const PR_K: usize = 3;

/// The metrics of one image set against the real training images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageMetrics {
    /// Images evaluated.
    pub n: usize,
    /// Fréchet distance of classifier features ("FD").
    pub fd: f64,
    /// KID (unbiased MMD², cubic kernel) over 100 subsets: mean ± std.
    pub kid: MeanStd,
    /// Classifier score (the Inception-Score recipe), over 10 splits.
    pub score: MeanStd,
    /// Classes hit and the KL of the class histogram from uniform.
    pub coverage: Coverage,
    /// Improved precision (k = 3).
    pub precision: f64,
    /// Improved recall (k = 3).
    pub recall: f64,
}

/// The per-class metrics of a class-conditional generator (or, as the floor, of the real
/// test split read with its true labels).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Class names, index order.
    pub classes: Vec<String>,
    /// Per class: the share of its images that the classifier reads as that class.
    pub label_agreement: Vec<f64>,
    /// The mean of `label_agreement`.
    pub label_agreement_mean: f64,
    /// Per class: the Fréchet distance between its images and the real training images of
    /// that class.
    pub intra_fd: Vec<f64>,
    /// The mean of `intra_fd`.
    pub intra_fd_mean: f64,
}

impl ClassMetrics {
    /// The class with the lowest label agreement and its value.
    pub fn worst(&self) -> (&str, f64) {
        let i = (0..self.label_agreement.len())
            .min_by(|&a, &b| self.label_agreement[a].total_cmp(&self.label_agreement[b]))
            .unwrap_or(0);
        (
            self.classes.get(i).map_or("", String::as_str),
            self.label_agreement.get(i).copied().unwrap_or(f64::NAN),
        )
    }
}

/// What `zoo eval` reports and writes to `eval.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// The model's registry name.
    pub model: String,
    /// The run folder.
    pub run: PathBuf,
    /// The checkpoint's step.
    pub step: u64,
    /// The dataset the metrics compare against.
    pub dataset: String,
    /// The feature classifier's test accuracy.
    pub classifier_accuracy: f64,
    /// The generator's samples against the training split.
    pub samples: ImageMetrics,
    /// The floor: the real test split against the training split.
    pub floor: ImageMetrics,
    /// A class-conditional run's per-class metrics (its samples drawn class-balanced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Box<ClassMetrics>>,
    /// The same for the real test split with its true labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_floor: Option<Box<ClassMetrics>>,
}

/// The real images and the classifier the metrics of one dataset use.
pub struct Reference {
    net: Classifier,
    accuracy: f64,
    dataset: String,
    train: (Features, Features),
    train_labels: Vec<usize>,
    test: (Features, Features),
    test_labels: Vec<usize>,
    names: Vec<String>,
    floor: ImageMetrics,
    seed: u64,
    scale: f64,
    device: Device,
}

fn pick(set: &ImageSet, n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..set.len).collect();
    idx.shuffle(&mut Xoshiro256PlusPlus::seed_from_u64(seed));
    idx.truncate(n);
    idx
}

/// The metrics of `fake` (features, probabilities) against `real`.
pub fn compare_sets(
    real: &(Features, Features),
    fake: &(Features, Features),
    seed: u64,
) -> ImageMetrics {
    let rows = |x: &Features, n: usize| x.rows(0, n.min(x.nrows())).into_owned();
    let pr_n = PR_MAX.min(real.0.nrows()).min(fake.0.nrows());
    let (precision, recall) = precision_recall(&rows(&real.0, pr_n), &rows(&fake.0, pr_n), PR_K);
    // Subsets of at most half of the smaller set, so that they differ.
    let kid_size = KID_SIZE.min(real.0.nrows().min(fake.0.nrows()) / 2).max(2);
    ImageMetrics {
        n: fake.0.nrows(),
        fd: frechet_distance(&real.0, &fake.0),
        kid: kid(&real.0, &fake.0, KID_SUBSETS, kid_size, seed),
        score: classifier_score(&fake.1, 10),
        coverage: coverage(&fake.1),
        precision,
        recall,
    }
}

impl Reference {
    /// Loads (or trains) the classifier of the data's dataset and embeds `n` random training
    /// images and up to `n` test images (the floor).
    pub fn new(data: &DataConfig, n: usize, seed: u64, device: &Device) -> Result<Self> {
        classifier::check_kind(data.dataset)?;
        ensure!(
            data.image_size == 28 && data.channels == 1,
            "the image metrics use a classifier of 28x28 gray images; this run has {0}x{0}x{1}",
            data.image_size,
            data.channels
        );
        let (net, info) = classifier::load_or_train(data.dataset, data.dir.as_deref(), device)?;
        let train = classifier::load_split(data.dataset, data.dir.as_deref(), Split::Train)?;
        let test = classifier::load_split(data.dataset, data.dir.as_deref(), Split::Test)?;
        let embed = |set: &ImageSet, stream: u64| {
            let idx = pick(set, n, mix(seed, stream));
            let labels = set.labels.as_deref().unwrap_or(&[]);
            let labels: Vec<usize> = idx
                .iter()
                .map(|&i| labels.get(i).map_or(usize::MAX, |&l| l as usize))
                .collect();
            let f = classifier::embed(&net, &classifier::set_chunks(set, &idx, device));
            (f, labels)
        };
        let ((train_f, train_labels), (test_f, test_labels)) =
            (embed(&train, REFERENCE_TRAIN), embed(&test, REFERENCE_TEST));
        // Features are rescaled so that the real training features have unit mean square per
        // dimension: KID's cubic kernel (x·y/d + 1)³ then sees values of order one.
        let scale = 1.0
            / (train_f.0.norm_squared() / train_f.0.len().max(1) as f64)
                .sqrt()
                .max(1e-12);
        let train_f = (train_f.0 * scale, train_f.1);
        let test_f = (test_f.0 * scale, test_f.1);
        let floor = compare_sets(&train_f, &test_f, seed);
        Ok(Self {
            net,
            accuracy: info.test_accuracy,
            dataset: data.dataset.name().to_string(),
            train: train_f,
            train_labels,
            test: test_f,
            test_labels,
            names: builtin_classes(data.dataset).unwrap_or_default(),
            floor,
            seed,
            scale,
            device: device.clone(),
        })
    }

    /// The device the classifier runs on.
    pub fn device(&self) -> Device {
        self.device.clone()
    }

    /// The real test split against the training split.
    pub fn floor(&self) -> &ImageMetrics {
        &self.floor
    }

    /// The metrics of generated images (in [-1, 1], chunked) against the training images.
    pub fn score(&self, images: &[Tensor<4>]) -> ImageMetrics {
        let fake = classifier::embed(&self.net, images);
        compare_sets(&self.train, &(fake.0 * self.scale, fake.1), self.seed)
    }

    /// A full report for a run's generator samples.
    pub fn report(&self, model: &str, run: &Path, step: u64, images: &[Tensor<4>]) -> EvalReport {
        self.assemble(model, run, step, self.score(images))
    }

    fn assemble(&self, model: &str, run: &Path, step: u64, samples: ImageMetrics) -> EvalReport {
        EvalReport {
            model: model.to_string(),
            run: run.to_path_buf(),
            step,
            dataset: self.dataset.clone(),
            classifier_accuracy: self.accuracy,
            samples,
            floor: self.floor.clone(),
            classes: None,
            class_floor: None,
        }
    }

    /// A full report for a class-conditional run's samples, `labels[i]` the class image `i`
    /// was drawn for: the unconditional metrics of all samples, and per class the label
    /// agreement and the FD against the real images of that class, each with its floor.
    pub fn class_report(
        &self,
        model: &str,
        run: &Path,
        step: u64,
        images: &[Tensor<4>],
        labels: &[usize],
        classes: &[String],
    ) -> Result<EvalReport> {
        ensure!(
            classes == self.names.as_slice(),
            "the run's classes ({}) are not those of {} ({}), which the classifier reads",
            classes.join(", "),
            self.dataset,
            self.names.join(", ")
        );
        let fake = classifier::embed(&self.net, images);
        let fake = (fake.0 * self.scale, fake.1);
        let samples = compare_sets(&self.train, &fake, self.seed);
        let mut report = self.assemble(model, run, step, samples);
        report.classes = Some(Box::new(self.class_metrics(&fake, labels)?));
        report.class_floor = Some(Box::new(self.class_metrics(&self.test, &self.test_labels)?));
        Ok(report)
    }

    /// Per-class label agreement and intra-class FD of `set` (features, probabilities) whose
    /// row `i` is of class `labels[i]`.
    fn class_metrics(&self, set: &(Features, Features), labels: &[usize]) -> Result<ClassMetrics> {
        let k = self.names.len();
        ensure!(
            k > 0 && set.1.ncols() == k,
            "per-class metrics need the classifier's {} classes",
            set.1.ncols()
        );
        ensure!(labels.len() == set.0.nrows(), "one label per image");
        let rows_of = |labels: &[usize], c: usize| -> Vec<usize> {
            (0..labels.len()).filter(|&i| labels[i] == c).collect()
        };
        let mut agreement = Vec::with_capacity(k);
        let mut intra = Vec::with_capacity(k);
        for c in 0..k {
            let mine = rows_of(labels, c);
            let real = rows_of(&self.train_labels, c);
            ensure!(
                mine.len() >= 2 && real.len() >= 2,
                "class `{}` has {} images to score and {} real ones; evaluate more samples \
                 (-n)",
                self.names[c],
                mine.len(),
                real.len()
            );
            let hits = mine
                .iter()
                .filter(|&&i| {
                    let row = set.1.row(i);
                    (0..k).max_by(|&a, &b| row[a].total_cmp(&row[b])) == Some(c)
                })
                .count();
            agreement.push(hits as f64 / mine.len() as f64);
            intra.push(frechet_distance(
                &self.train.0.select_rows(real.iter()),
                &set.0.select_rows(mine.iter()),
            ));
        }
        Ok(ClassMetrics {
            classes: self.names.clone(),
            label_agreement_mean: agreement.iter().sum::<f64>() / k as f64,
            intra_fd_mean: intra.iter().sum::<f64>() / k as f64,
            label_agreement: agreement,
            intra_fd: intra,
        })
    }
}

impl EvalReport {
    /// The table `zoo eval` prints.
    pub fn table(&self) -> String {
        let (s, f) = (&self.samples, &self.floor);
        let ms = |m: &MeanStd, scale: f64| format!("{:.2} ± {:.2}", m.mean * scale, m.std * scale);
        let rows = [
            (
                "FD (lower is better)",
                format!("{:.2}", s.fd),
                format!("{:.2}", f.fd),
            ),
            ("KID x 1000", ms(&s.kid, 1000.0), ms(&f.kid, 1000.0)),
            ("classifier score", ms(&s.score, 1.0), ms(&f.score, 1.0)),
            (
                "classes hit",
                format!("{}/{}", s.coverage.classes_hit, s.coverage.classes),
                format!("{}/{}", f.coverage.classes_hit, f.coverage.classes),
            ),
            (
                "class KL from uniform",
                format!("{:.4}", s.coverage.kl_uniform),
                format!("{:.4}", f.coverage.kl_uniform),
            ),
            (
                "precision (k=3)",
                format!("{:.3}", s.precision),
                format!("{:.3}", f.precision),
            ),
            (
                "recall (k=3)",
                format!("{:.3}", s.recall),
                format!("{:.3}", f.recall),
            ),
        ];
        let what = if self.model == crate::evaluate::IMAGES {
            format!("the images in {}", self.run.display())
        } else {
            format!("{} at step {}", self.model, self.step)
        };
        let mut out = format!(
            "{what}: {} samples against {} train images ({} classifier, test accuracy {:.2}%)\n",
            s.n,
            self.dataset,
            self.dataset,
            100.0 * self.classifier_accuracy
        );
        let mut rows = rows.to_vec();
        if let (Some(c), Some(f)) = (&self.classes, &self.class_floor) {
            let (name, worst) = c.worst();
            let (fname, fworst) = f.worst();
            rows.extend([
                (
                    "label agreement (mean)",
                    format!("{:.3}", c.label_agreement_mean),
                    format!("{:.3}", f.label_agreement_mean),
                ),
                (
                    "  lowest class",
                    format!("{worst:.3} ({name})"),
                    format!("{fworst:.3} ({fname})"),
                ),
                (
                    "intra-class FD (mean)",
                    format!("{:.2}", c.intra_fd_mean),
                    format!("{:.2}", f.intra_fd_mean),
                ),
            ]);
        }
        out.push_str(&columns(
            ["metric", "samples", "floor (test vs train)"],
            &rows,
            24,
            22,
        ));
        if let (Some(c), Some(f)) = (&self.classes, &self.class_floor) {
            out.push_str("\nper class (floor: the real test images of the class)\n");
            out.push_str(&format!(
                "{:<14}{:>12}{:>12}{:>12}{:>12}\n",
                "class", "agreement", "floor", "intra FD", "floor"
            ));
            for i in 0..c.classes.len() {
                out.push_str(&format!(
                    "{:<14}{:>12.3}{:>12.3}{:>12.2}{:>12.2}\n",
                    c.classes[i],
                    c.label_agreement[i],
                    f.label_agreement.get(i).copied().unwrap_or(f64::NAN),
                    c.intra_fd[i],
                    f.intra_fd.get(i).copied().unwrap_or(f64::NAN),
                ));
            }
        }
        out
    }
}

/// A three-column text table: a left-aligned name column of `w0` and two right-aligned ones.
fn columns(head: [&str; 3], rows: &[(&str, String, String)], w0: usize, w: usize) -> String {
    let mut out = format!("{:<w0$}{:>w$}{:>w$}\n", head[0], head[1], head[2]);
    for (name, a, b) in rows {
        out.push_str(&format!("{name:<w0$}{a:>w$}{b:>w$}\n"));
    }
    out
}

/// What `zoo eval` reports for an image-to-image run (CycleGAN), on held-out images.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TranslationEval {
    /// The model's registry name.
    pub model: String,
    /// The run folder.
    pub run: PathBuf,
    /// The checkpoint's step.
    pub step: u64,
    /// Images of A and of B evaluated (testA/testB when the root has them).
    pub images: (usize, usize),
    /// Mean |F(G(a)) − a| in pixel units of [0, 1] (models with generators both ways).
    pub cycle_l1_a: Option<f64>,
    /// Mean |G(F(b)) − b|.
    pub cycle_l1_b: Option<f64>,
    /// What the translations are scored against: `counterparts` (paired test images) or a
    /// pair's pixelwise mapping (`invert`).
    pub mapping: Option<String>,
    /// A → B against the truth (None where the model does not translate that way).
    pub a2b: Option<TranslationError>,
    /// B → A against the truth.
    pub b2a: Option<TranslationError>,
    /// Share of A digits whose translation (mapped back) the classifier gives the same label.
    pub label_agreement_a2b: Option<f64>,
    /// The same for B digits and F.
    pub label_agreement_b2a: Option<f64>,
}

impl TranslationEval {
    /// The table `zoo eval` prints.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{} at step {}: {} held-out A and {} B images\n",
            self.model, self.step, self.images.0, self.images.1
        );
        let opt =
            |x: Option<f64>, digits: usize| x.map_or("n/a".into(), |v| format!("{v:.digits$}"));
        let f = |e: Option<TranslationError>, pick: fn(&TranslationError) -> f64, d: usize| {
            opt(e.as_ref().map(pick), d)
        };
        let (a, b) = (self.a2b, self.b2a);
        let rows = [
            (
                "cycle L1 (lower is better)",
                opt(self.cycle_l1_a, 4),
                opt(self.cycle_l1_b, 4),
            ),
            ("L1 vs truth", f(a, |e| e.l1, 4), f(b, |e| e.l1, 4)),
            (
                "  doing nothing",
                f(a, |e| e.identity_l1, 4),
                f(b, |e| e.identity_l1, 4),
            ),
            (
                "  ratio (below 1: better)",
                f(a, TranslationError::l1_ratio, 3),
                f(b, TranslationError::l1_ratio, 3),
            ),
            (
                "PSNR vs truth (dB)",
                f(a, |e| e.psnr, 2),
                f(b, |e| e.psnr, 2),
            ),
            (
                "  doing nothing",
                f(a, |e| e.identity_psnr, 2),
                f(b, |e| e.identity_psnr, 2),
            ),
            ("SSIM vs truth", f(a, |e| e.ssim, 3), f(b, |e| e.ssim, 3)),
            (
                "  doing nothing",
                f(a, |e| e.identity_ssim, 3),
                f(b, |e| e.identity_ssim, 3),
            ),
            (
                "label agreement",
                opt(self.label_agreement_a2b, 3),
                opt(self.label_agreement_b2a, 3),
            ),
        ];
        out.push_str(&columns(["metric", "A -> B", "B -> A"], &rows, 28, 14));
        out
    }
}

/// What `zoo eval` reports for a GAN trained on a 2-D toy mixture.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ToyEval {
    /// The model's registry name.
    pub model: String,
    /// The run folder.
    pub run: PathBuf,
    /// The checkpoint's step.
    pub step: u64,
    /// `ring8` or `grid25`.
    pub dataset: String,
    /// σ of the mixture's Gaussians.
    pub std: f64,
    /// The generator's samples.
    pub samples: zoo_core::data::toy::ToyMetrics,
    /// Real samples of the mixture, scored the same way.
    pub floor: zoo_core::data::toy::ToyMetrics,
    /// The scatter plot of the samples over the modes.
    pub scatter: PathBuf,
}

impl ToyEval {
    /// The table `zoo eval` prints.
    pub fn table(&self) -> String {
        let (s, f) = (&self.samples, &self.floor);
        let mut out = format!(
            "{} at step {} on {} (sigma {}): {} samples\n",
            self.model, self.step, self.dataset, self.std, s.n
        );
        let rows = [
            (
                "modes captured",
                format!("{}/{}", s.modes_captured, s.modes),
                format!("{}/{}", f.modes_captured, f.modes),
            ),
            (
                "high-quality samples",
                format!("{:.1}%", 100.0 * s.high_quality),
                format!("{:.1}%", 100.0 * f.high_quality),
            ),
            (
                "KL of modes from uniform",
                format!("{:.4}", s.kl_uniform),
                format!("{:.4}", f.kl_uniform),
            ),
        ];
        out.push_str(&columns(["metric", "samples", "real data"], &rows, 28, 14));
        out.push_str(&format!("scatter plot: {}\n", self.scatter.display()));
        out
    }
}

/// What `zoo eval` found.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evaluation {
    /// A noise-to-image GAN.
    Images(EvalReport),
    /// An image-to-image model.
    Translation(TranslationEval),
    /// A GAN on a 2-D toy mixture.
    Toy(ToyEval),
}

impl Evaluation {
    /// The printed table.
    pub fn table(&self) -> String {
        match self {
            Evaluation::Images(r) => r.table(),
            Evaluation::Translation(t) => t.table(),
            Evaluation::Toy(t) => t.table(),
        }
    }
}

//! Sample-quality metrics on feature vectors and class probabilities: Fréchet distance, KID,
//! the classifier (Inception-recipe) score, class coverage, and precision/recall.
//!
//! Features come from zoo's own classifier ([`crate::classifier`]); the recipes are those of
//! FID (Heusel et al. 2017), KID (Bińkowski et al. 2018), the Inception Score (Salimans et al.
//! 2016) and improved precision and recall (Kynkäänniemi et al. 2019).

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// Rows are samples.
pub type Features = DMatrix<f64>;

/// A mean with its spread (standard deviation over subsets or seeds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanStd {
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
}

impl MeanStd {
    /// Mean and (population) standard deviation of `xs`; NaN for an empty slice.
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        Self {
            mean,
            std: var.sqrt(),
        }
    }
}

/// Mean vector and unbiased covariance of the rows.
pub fn mean_cov(x: &Features) -> (DVector<f64>, DMatrix<f64>) {
    let n = x.nrows() as f64;
    let mean = x.row_mean().transpose();
    let mut centred = x.clone();
    for mut row in centred.row_iter_mut() {
        row -= mean.transpose();
    }
    let cov = centred.transpose() * &centred / (n - 1.0).max(1.0);
    (mean, cov)
}

/// √ of a symmetric positive semi-definite matrix (negative round-off eigenvalues clamp to 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = SymmetricEigen::new(m.clone());
    let d = DMatrix::from_diagonal(&e.eigenvalues.map(|v| v.max(0.0).sqrt()));
    &e.eigenvectors * d * e.eigenvectors.transpose()
}

/// Fréchet distance between Gaussians fitted to two feature sets:
/// ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2(Σ₁Σ₂)^½), with Tr (Σ₁Σ₂)^½ = Tr (Σ₁^½ Σ₂ Σ₁^½)^½.
pub fn frechet_distance(a: &Features, b: &Features) -> f64 {
    let (m1, c1) = mean_cov(a);
    let (m2, c2) = mean_cov(b);
    let s1 = sqrt_psd(&c1);
    let inner = &s1 * &c2 * &s1;
    let inner = (&inner + inner.transpose()) * 0.5;
    let tr_sqrt: f64 = SymmetricEigen::new(inner)
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    let d = (m1 - m2).norm_squared() + c1.trace() + c2.trace() - 2.0 * tr_sqrt;
    d.max(0.0)
}

/// The KID kernel k(x, y) = (x·y / d + 1)³ between all rows of `a` and `b`.
fn poly_kernel(a: &Features, b: &Features) -> DMatrix<f64> {
    let d = a.ncols() as f64;
    (a * b.transpose()).map(|v| (v / d + 1.0).powi(3))
}

/// Kernel Inception Distance: the unbiased MMD² estimate with the cubic polynomial kernel,
/// averaged over `subsets` random subsets of `size` rows of each set (seeded); mean ± std over
/// subsets.
pub fn kid(a: &Features, b: &Features, subsets: usize, size: usize, seed: u64) -> MeanStd {
    let m = size.min(a.nrows()).min(b.nrows());
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut values = Vec::with_capacity(subsets);
    for _ in 0..subsets.max(1) {
        let pick = |x: &Features, rng: &mut Xoshiro256PlusPlus| {
            let mut idx: Vec<usize> = (0..x.nrows()).collect();
            idx.shuffle(rng);
            x.select_rows(&idx[..m])
        };
        let (x, y) = (pick(a, &mut rng), pick(b, &mut rng));
        let (kxx, kyy, kxy) = (
            poly_kernel(&x, &x),
            poly_kernel(&y, &y),
            poly_kernel(&x, &y),
        );
        let off_diag = |k: &DMatrix<f64>| k.sum() - k.trace();
        let mf = m as f64;
        values.push(
            off_diag(&kxx) / (mf * (mf - 1.0)) + off_diag(&kyy) / (mf * (mf - 1.0))
                - 2.0 * kxy.sum() / (mf * mf),
        );
    }
    MeanStd::of(&values)
}

/// The Inception-Score recipe with zoo's classifier: exp(E_x KL(p(y|x) ‖ p(y))), computed on
/// `splits` consecutive splits of the rows of `probs` (each row a class distribution); mean ±
/// std over splits.
pub fn classifier_score(probs: &Features, splits: usize) -> MeanStd {
    let n = probs.nrows();
    let splits = splits.clamp(1, n.max(1));
    let per = n / splits;
    let mut scores = Vec::with_capacity(splits);
    for s in 0..splits {
        let part = probs.rows(s * per, per);
        let marginal = part.row_mean();
        let mut kl = 0.0;
        for row in part.row_iter() {
            for (p, q) in row.iter().zip(marginal.iter()) {
                if *p > 0.0 {
                    kl += p * ((p / q.max(1e-300)).ln());
                }
            }
        }
        scores.push((kl / per as f64).exp());
    }
    MeanStd::of(&scores)
}

/// Class coverage of samples: how many classes the classifier's argmax hits, and the KL
/// divergence of the predicted-class histogram from uniform (0 = perfectly balanced).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Classes predicted for at least one sample.
    pub classes_hit: usize,
    /// Classes in total.
    pub classes: usize,
    /// KL(histogram ‖ uniform), in nats.
    pub kl_uniform: f64,
}

/// [`Coverage`] of the argmax predictions in `probs`.
pub fn coverage(probs: &Features) -> Coverage {
    let k = probs.ncols();
    let mut hist = vec![0usize; k];
    for row in probs.row_iter() {
        let arg = row
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        hist[arg] += 1;
    }
    let n = probs.nrows() as f64;
    let kl = hist
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            p * (p * k as f64).ln()
        })
        .sum();
    Coverage {
        classes_hit: hist.iter().filter(|&&c| c > 0).count(),
        classes: k,
        kl_uniform: kl,
    }
}

/// Squared Euclidean distances between all rows of `a` and all rows of `b`.
fn sq_distances(a: &Features, b: &Features) -> DMatrix<f64> {
    let na: Vec<f64> = a.row_iter().map(|r| r.norm_squared()).collect();
    let nb: Vec<f64> = b.row_iter().map(|r| r.norm_squared()).collect();
    let mut d = a * b.transpose() * -2.0;
    for i in 0..d.nrows() {
        for j in 0..d.ncols() {
            d[(i, j)] = (d[(i, j)] + na[i] + nb[j]).max(0.0);
        }
    }
    d
}

/// Squared distance from each row to its `k`-th nearest other row (the manifold radii).
fn knn_radii(x: &Features, k: usize) -> Vec<f64> {
    let d = sq_distances(x, x);
    (0..x.nrows())
        .map(|i| {
            let mut row: Vec<f64> = d.row(i).iter().copied().collect();
            row.sort_by(f64::total_cmp);
            // row[0] is the point itself (distance 0).
            row[k.min(row.len() - 1)]
        })
        .collect()
}

/// Fraction of `queries` inside at least one ball around `support` rows of the given radii.
fn inside_fraction(support: &Features, radii: &[f64], queries: &Features) -> f64 {
    let d = sq_distances(queries, support);
    let hits = (0..queries.nrows())
        .filter(|&i| (0..support.nrows()).any(|j| d[(i, j)] <= radii[j]))
        .count();
    hits as f64 / queries.nrows().max(1) as f64
}

/// Improved precision and recall (Kynkäänniemi et al. 2019) with `k`-NN manifolds:
/// precision = share of fakes inside the real manifold, recall = share of reals inside the
/// fake manifold.
pub fn precision_recall(real: &Features, fake: &Features, k: usize) -> (f64, f64) {
    let real_radii = knn_radii(real, k);
    let fake_radii = knn_radii(fake, k);
    (
        inside_fraction(real, &real_radii, fake),
        inside_fraction(fake, &fake_radii, real),
    )
}

#[cfg(test)]
mod tests;

//! The 2-D toy mixtures of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018), and
//! their mode-collapse metrics.
//!
//! - `ring8`: 8 Gaussians of σ = 0.01 at angles 2πk/8, k = 0…7, on a circle of radius 1 (the
//!   angles exclude 2π, so mode 8 does not coincide with mode 1);
//! - `grid25`: 25 Gaussians of σ = 0.05 at {−4, −2, 0, 2, 4}².
//!
//! Metrics on 2,500 samples (the papers' protocol): a sample is **high quality** when it lies
//! within 3σ of its nearest mode; a mode is **captured** when at least one high-quality sample
//! has it as its nearest mode; and the **KL** is that of the histogram of high-quality
//! samples over the modes from the uniform distribution (the papers' "reverse KL").

use anyhow::{Result, ensure};
use rand::RngExt;
use rand::SeedableRng;
use rand::rngs::Xoshiro256PlusPlus;
use serde::{Deserialize, Serialize};

use crate::config::{DataConfig, DatasetKind};
use crate::data::ImageSet;
use crate::streams::{TOY_POINTS, mix};

/// The mixture's centres.
pub fn modes(kind: DatasetKind, radius: f64) -> Vec<[f64; 2]> {
    match kind {
        DatasetKind::Ring8 => (0..8)
            .map(|k| {
                let a = std::f64::consts::TAU * k as f64 / 8.0;
                [radius * a.cos(), radius * a.sin()]
            })
            .collect(),
        _ => {
            let g = [-4.0, -2.0, 0.0, 2.0, 4.0];
            g.iter()
                .flat_map(|&x| g.iter().map(move |&y| [x, y]))
                .collect()
        }
    }
}

/// The configured σ, or the protocol's default for `kind`.
pub fn std_of(cfg: &DataConfig) -> f64 {
    cfg.toy.std.unwrap_or(match cfg.dataset {
        DatasetKind::Ring8 => 0.01,
        _ => 0.05,
    })
}

/// `n` points of the mixture (row-major x, y), seeded: a uniformly chosen mode plus N(0, σ²I).
pub fn sample(cfg: &DataConfig, n: usize, seed: u64) -> Vec<f32> {
    let centres = modes(cfg.dataset, cfg.toy.radius);
    let std = std_of(cfg);
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
    let mut out = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let c = centres[rng.random_range(0..centres.len())];
        // Box–Muller: two independent normals.
        let (u, v): (f64, f64) = (rng.random_range(1e-12..1.0), rng.random_range(0.0..1.0));
        let r = (-2.0 * u.ln()).sqrt();
        let t = std::f64::consts::TAU * v;
        out.push((c[0] + std * r * t.cos()) as f32);
        out.push((c[1] + std * r * t.sin()) as f32);
    }
    out
}

/// The training set: `data.toy.points` points as a float "image" set of 2 channels, 1×1.
pub fn training_set(cfg: &DataConfig) -> Result<ImageSet> {
    let t = &cfg.toy;
    ensure!(
        t.points >= 2,
        "data.toy.points must be at least 2 (got {})",
        t.points
    );
    ensure!(
        t.radius.is_finite() && t.radius > 0.0,
        "data.toy.radius must be a positive number (got {})",
        t.radius
    );
    if let Some(s) = t.std {
        ensure!(
            s.is_finite() && s > 0.0,
            "data.toy.std must be a positive number (got {s})"
        );
    }
    let points = cfg.limit.map_or(t.points, |l| l.min(t.points));
    crate::mem::ensure_fits(
        8 * points as u128,
        &format!("{points} toy points"),
        "data.toy.points",
    )?;
    Ok(ImageSet {
        pixels: Vec::new(),
        labels: None,
        len: points,
        channels: 2,
        size: 1,
        floats: Some(sample(cfg, points, mix(TOY_POINTS, points as u64))),
    })
}

/// Mode-collapse metrics of 2-D samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ToyMetrics {
    /// Samples scored.
    pub n: usize,
    /// Modes of the mixture.
    pub modes: usize,
    /// Modes with at least one high-quality sample.
    pub modes_captured: usize,
    /// Share of samples within 3σ of their nearest mode.
    pub high_quality: f64,
    /// KL of the high-quality samples' mode histogram from uniform, in nats.
    pub kl_uniform: f64,
}

/// Scores `points` (x, y pairs) against the mixture's modes.
pub fn metrics(points: &[[f64; 2]], centres: &[[f64; 2]], std: f64) -> ToyMetrics {
    let mut hist = vec![0usize; centres.len()];
    let mut hq = 0;
    for p in points {
        let (best, d2) = centres
            .iter()
            .enumerate()
            .map(|(i, c)| (i, (p[0] - c[0]).powi(2) + (p[1] - c[1]).powi(2)))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((0, f64::INFINITY));
        if d2.sqrt() <= 3.0 * std {
            hq += 1;
            hist[best] += 1;
        }
    }
    let k = centres.len() as f64;
    let kl = if hq == 0 {
        f64::INFINITY
    } else {
        hist.iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / hq as f64;
                p * (p * k).ln()
            })
            .sum()
    };
    ToyMetrics {
        n: points.len(),
        modes: centres.len(),
        modes_captured: hist.iter().filter(|&&c| c > 0).count(),
        high_quality: hq as f64 / points.len().max(1) as f64,
        kl_uniform: kl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(kind: DatasetKind) -> DataConfig {
        DataConfig {
            dataset: kind,
            ..DataConfig::default()
        }
    }

    fn pairs(v: &[f32]) -> Vec<[f64; 2]> {
        v.chunks(2).map(|c| [c[0] as f64, c[1] as f64]).collect()
    }

    #[test]
    fn ring_modes_are_eight_distinct_points_on_the_circle() {
        let m = modes(DatasetKind::Ring8, 1.0);
        assert_eq!(m.len(), 8);
        for (i, a) in m.iter().enumerate() {
            assert!(((a[0] * a[0] + a[1] * a[1]).sqrt() - 1.0).abs() < 1e-12);
            for b in &m[i + 1..] {
                let d = ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)).sqrt();
                assert!(d > 0.7, "modes {a:?} and {b:?} too close");
            }
        }
        assert_eq!(modes(DatasetKind::Grid25, 1.0).len(), 25);
    }

    #[test]
    fn real_samples_capture_every_mode_with_high_quality() {
        for kind in [DatasetKind::Ring8, DatasetKind::Grid25] {
            let c = cfg(kind);
            let pts = pairs(&sample(&c, 2500, 1));
            let m = metrics(&pts, &modes(kind, 1.0), std_of(&c));
            assert_eq!(m.modes_captured, m.modes, "{kind:?}");
            // Within 3σ in 2-D: 1 − e^{−9/2} ≈ 98.9%.
            assert!((m.high_quality - 0.989).abs() < 0.01, "{kind:?}: {m:?}");
            assert!(m.kl_uniform < 0.02, "{kind:?}: {m:?}");
        }
    }

    #[test]
    fn a_collapsed_generator_captures_one_mode() {
        let c = cfg(DatasetKind::Ring8);
        let pts: Vec<[f64; 2]> = (0..2500).map(|_| [1.0, 0.0]).collect();
        let m = metrics(&pts, &modes(DatasetKind::Ring8, 1.0), std_of(&c));
        assert_eq!((m.modes_captured, m.high_quality), (1, 1.0));
        assert!((m.kl_uniform - 8f64.ln()).abs() < 1e-12);
        let far: Vec<[f64; 2]> = (0..100).map(|_| [0.0, 0.0]).collect();
        let m = metrics(&far, &modes(DatasetKind::Ring8, 1.0), 0.01);
        assert_eq!((m.modes_captured, m.high_quality), (0, 0.0));
    }
}

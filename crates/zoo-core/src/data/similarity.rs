//! How close translations are to their true counterparts: L1, PSNR and SSIM (Wang, Bovik,
//! Sheikh & Simoncelli 2004), in pixel units of [0, 1], each beside the same figure for the
//! input itself (the error of doing nothing, the baseline a translator must beat).

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use serde::{Deserialize, Serialize};

/// Errors of translations against their true counterparts, in pixel units of [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TranslationError {
    /// Mean |translation − truth|.
    pub l1: f64,
    /// PSNR of the translations against the truth (from the mean squared error over all
    /// images), in dB.
    pub psnr: f64,
    /// Mean SSIM of translation and truth (11×11 Gaussian window, σ = 1.5, per channel).
    pub ssim: f64,
    /// Mean |input − truth|: the L1 of doing nothing.
    pub identity_l1: f64,
    /// PSNR of the input against the truth.
    pub identity_psnr: f64,
    /// SSIM of the input against the truth.
    pub identity_ssim: f64,
}

impl TranslationError {
    /// The translation's L1 as a share of doing nothing's (below 1: better than the input).
    pub fn l1_ratio(&self) -> f64 {
        self.l1 / self.identity_l1.max(1e-12)
    }
}

impl std::fmt::Display for TranslationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "against the truth: L1 {:.4} (doing nothing: {:.4}, ratio {:.2}), \
             PSNR {:.2} dB ({:.2}), SSIM {:.3} ({:.3})",
            self.l1,
            self.identity_l1,
            self.l1_ratio(),
            self.psnr,
            self.identity_psnr,
            self.ssim,
            self.identity_ssim
        )
    }
}

/// Running sums over batches of (input, translation, truth), for [`TranslationError`].
#[derive(Debug, Clone, Default)]
pub struct ErrorSums {
    n: f64,
    l1: f64,
    mse: f64,
    ssim: f64,
    id_l1: f64,
    id_mse: f64,
    id_ssim: f64,
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>().to_f64()
}

fn psnr(mse: f64) -> f64 {
    -10.0 * mse.max(1e-12).log10()
}

impl ErrorSums {
    /// Adds a batch: all three `[N, C, H, W]` in [-1, 1]; `translated` and `truth` have the
    /// same shape, `input` may have another channel count (converted as the loader would).
    pub fn add(&mut self, input: Tensor<4>, translated: Tensor<4>, truth: Tensor<4>) {
        let k = input.dims()[0] as f64;
        let input = conform(input, truth.dims()[1]);
        // [-1, 1] → [0, 1] halves every difference.
        let l1 = |x: Tensor<4>| scalar((x - truth.clone()).abs().mean()) / 2.0;
        let mse = |x: Tensor<4>| scalar((x - truth.clone()).square().mean()) / 4.0;
        let ss = |x: Tensor<4>| scalar(ssim(x, truth.clone()).mean());
        self.n += k;
        self.l1 += l1(translated.clone()) * k;
        self.mse += mse(translated.clone()) * k;
        self.ssim += ss(translated) * k;
        self.id_l1 += l1(input.clone()) * k;
        self.id_mse += mse(input.clone()) * k;
        self.id_ssim += ss(input) * k;
    }

    /// Images added so far.
    pub fn count(&self) -> usize {
        self.n as usize
    }

    /// The means over everything added, or `None` before the first batch.
    pub fn error(&self) -> Option<TranslationError> {
        let n = self.n;
        (n > 0.0).then(|| TranslationError {
            l1: self.l1 / n,
            psnr: psnr(self.mse / n),
            ssim: self.ssim / n,
            identity_l1: self.id_l1 / n,
            identity_psnr: psnr(self.id_mse / n),
            identity_ssim: self.id_ssim / n,
        })
    }
}

/// The errors of one batch (see [`ErrorSums::add`]).
pub fn translation_error(
    input: Tensor<4>,
    translated: Tensor<4>,
    truth: Tensor<4>,
) -> TranslationError {
    let mut s = ErrorSums::default();
    s.add(input, translated, truth);
    s.error().expect("one batch added")
}

/// Images in [-1, 1] with `channels` channels: gray → RGB repeats the plane, RGB → gray takes
/// the luma the image loader uses (Rec. 709 weights); otherwise unchanged.
pub fn conform(x: Tensor<4>, channels: usize) -> Tensor<4> {
    let c = x.dims()[1];
    match (c, channels) {
        (1, 3) => x.repeat_dim(1, 3),
        (3, 1) => {
            let w = Tensor::<1>::from_floats([0.2126, 0.7152, 0.0722], &x.device());
            (x * w.reshape([1, 3, 1, 1])).sum_dim(1)
        }
        _ => x,
    }
}

/// Side of the SSIM window for `side`-pixel images: 11, or the largest odd side that fits.
fn window_side(side: usize) -> usize {
    let w = side.min(11);
    if w.is_multiple_of(2) { w - 1 } else { w }.max(1)
}

/// The SSIM of each image pair, `[N]`: images `[N, C, H, W]` in [-1, 1], compared in [0, 1]
/// with an 11×11 Gaussian window (σ = 1.5) over the valid region, C₁ = 0.01², C₂ = 0.03², and
/// averaged over channels and positions (Wang et al. 2004's mean SSIM).
pub fn ssim(a: Tensor<4>, b: Tensor<4>) -> Tensor<1> {
    let [n, c, h, w] = a.dims();
    let device = a.device();
    let k = window_side(h.min(w));
    let sigma = 1.5f64;
    let g: Vec<f64> = (0..k)
        .map(|i| {
            let d = i as f64 - (k / 2) as f64;
            (-d * d / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let total: f64 = g.iter().sum();
    let window: Vec<f32> = (0..k * k)
        .map(|i| (g[i / k] * g[i % k] / (total * total)) as f32)
        .collect();
    let weight = Tensor::<4>::from_data(TensorData::new(window, [1, 1, k, k]), &device);
    let planes = |x: Tensor<4>| x.add_scalar(1.0).div_scalar(2.0).reshape([n * c, 1, h, w]);
    let (x, y) = (planes(a), planes(b));
    let blur = |t: Tensor<4>| {
        conv2d(
            t,
            weight.clone(),
            None,
            ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
        )
    };
    let (mx, my) = (blur(x.clone()), blur(y.clone()));
    let sxx = blur(x.clone().square()) - mx.clone().square();
    let syy = blur(y.clone().square()) - my.clone().square();
    let sxy = blur(x * y) - mx.clone() * my.clone();
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let num = (mx.clone() * my.clone()).mul_scalar(2.0).add_scalar(c1)
        * sxy.mul_scalar(2.0).add_scalar(c2);
    let den = (mx.square() + my.square()).add_scalar(c1) * (sxx + syy).add_scalar(c2);
    let map = num / den;
    let [_, _, oh, ow] = map.dims();
    map.reshape([n, c * oh * ow]).mean_dim(1).reshape([n])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, c: usize, s: usize, seed: u64, dev: &Device) -> Tensor<4> {
        dev.seed(seed);
        Tensor::random(
            [n, c, s, s],
            burn::tensor::Distribution::Uniform(-1.0, 1.0),
            dev,
        )
    }

    #[test]
    fn ssim_is_one_for_equal_images_and_falls_with_noise() {
        let dev = Device::flex();
        let x = noise(2, 3, 16, 1, &dev);
        let same = ssim(x.clone(), x.clone())
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert!(same.iter().all(|v| (v - 1.0).abs() < 1e-4), "{same:?}");
        let other = noise(2, 3, 16, 2, &dev);
        let diff = scalar(ssim(x.clone(), other).mean());
        // Independent uniform noise: SSIM near 0 (either sign).
        assert!(diff.abs() < 0.1, "{diff}");
        let slightly = x.clone() + noise(2, 3, 16, 3, &dev).mul_scalar(0.1);
        let near = scalar(ssim(x, slightly).mean());
        assert!(near > 0.7 && near < 0.999, "{near}");
    }

    #[test]
    fn ssim_of_a_constant_shift_matches_the_formula() {
        // Two flat images x = 0.25, y = 0.75 in [0, 1]: σ terms vanish, so
        // SSIM = (2·μx·μy + C1) / (μx² + μy² + C1).
        let dev = Device::flex();
        let x = Tensor::<4>::full([1, 1, 12, 12], -0.5, &dev);
        let y = Tensor::<4>::full([1, 1, 12, 12], 0.5, &dev);
        let c1 = 1e-4;
        let want = (2.0 * 0.25 * 0.75 + c1) / (0.0625 + 0.5625 + c1);
        let got = scalar(ssim(x, y).mean());
        // f32 variances of flat images are ~1e-7, not 0: a few 1e-4 off the exact formula.
        assert!((got - want).abs() < 5e-4, "{got} vs {want}");
    }

    #[test]
    fn sums_score_truth_identity_and_channel_changes() {
        let dev = Device::flex();
        let truth = noise(3, 3, 12, 4, &dev);
        let gray = conform(truth.clone(), 1);
        assert_eq!(gray.dims(), [3, 1, 12, 12]);
        // The truth itself: no error; the gray input: a real baseline.
        let e = translation_error(gray.clone(), truth.clone(), truth.clone());
        assert!(
            e.l1 < 1e-7 && e.psnr > 100.0 && (e.ssim - 1.0).abs() < 1e-4,
            "{e:?}"
        );
        assert!(e.identity_l1 > 0.05 && e.identity_ssim < 0.95, "{e:?}");
        // Batches add up to the whole.
        let mut s = ErrorSums::default();
        let other = noise(3, 3, 12, 5, &dev);
        s.add(
            gray.clone().narrow(0, 0, 1),
            other.clone().narrow(0, 0, 1),
            truth.clone().narrow(0, 0, 1),
        );
        s.add(
            gray.clone().narrow(0, 1, 2),
            other.clone().narrow(0, 1, 2),
            truth.clone().narrow(0, 1, 2),
        );
        let whole = translation_error(gray, other, truth);
        let parts = s.error().expect("added");
        assert_eq!(s.count(), 3);
        for (p, w) in [
            (parts.l1, whole.l1),
            (parts.psnr, whole.psnr),
            (parts.ssim, whole.ssim),
        ] {
            assert!((p - w).abs() < 1e-5, "{p} vs {w}");
        }
        assert!(e.l1_ratio() < 1e-5);
    }
}

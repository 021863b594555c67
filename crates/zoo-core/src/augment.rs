//! Differentiable augmentation of what the discriminator sees (DiffAugment; Zhao, Liu, Lin, Zhu
//! & Han, NeurIPS 2020).
//!
//! D is shown augmented real images *and* augmented fakes, in its own update and in G's, so the
//! augmentation cannot leak into the samples (G is never asked to draw augmented images), and
//! G's gradient flows back through the augmentation. The three transforms of the paper, each
//! drawn per image, in the paper's order:
//! - **color**: brightness (add U(−½, ½)), saturation (scale the distance to the per-pixel
//!   channel mean by U(0, 2); no effect on gray images), contrast (scale the distance to the
//!   image mean by U(½, 3⁄2));
//! - **translation**: shift by up to `translation_ratio` of the side (an integer per axis,
//!   uniform in [−s, s]), filling with zeros (mid-gray in [−1, 1]);
//! - **cutout**: zero a square of `cutout_ratio` of the side at a uniformly drawn centre
//!   (clipped at the border).
//!
//! Every draw comes from the device RNG, which the engine seeds per step, so a run with the
//! augmentation stays reproducible and resumable bit for bit. Translation is one gather (its
//! gradient a scatter-add), cutout a product with a constant mask, color plain arithmetic: all
//! differentiable on any burn backend.

use anyhow::{Result, ensure};
use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use serde::{Deserialize, Serialize};

/// `[train.diffaug]`: which DiffAugment transforms D's inputs get (all off by default).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiffAugment {
    /// Random brightness, saturation and contrast.
    pub color: bool,
    /// Random shifts with zero fill.
    pub translation: bool,
    /// A random square cut out.
    pub cutout: bool,
    /// Largest shift as a fraction of the side (the paper's 1/8).
    pub translation_ratio: f64,
    /// Side of the cut-out square as a fraction of the image's (the paper's 1/2).
    pub cutout_ratio: f64,
}

impl Default for DiffAugment {
    fn default() -> Self {
        Self {
            color: false,
            translation: false,
            cutout: false,
            translation_ratio: 0.125,
            cutout_ratio: 0.5,
        }
    }
}

/// Uniform draws in [0, 1), one per image, read back to the host.
fn draws(n: usize, device: &Device) -> Vec<f32> {
    Tensor::<1>::random([n], Distribution::Uniform(0.0, 1.0), device)
        .into_data()
        .convert::<f32>()
        .try_to_vec::<f32>()
        .expect("converted to f32")
}

/// An integer uniform in [lo, hi] from a draw `u` in [0, 1).
fn integer(u: f32, lo: i64, hi: i64) -> i64 {
    (lo + ((u as f64) * (hi - lo + 1) as f64).floor() as i64).min(hi)
}

impl DiffAugment {
    /// The paper's full policy (`color,translation,cutout`).
    pub fn all() -> Self {
        Self {
            color: true,
            translation: true,
            cutout: true,
            ..Self::default()
        }
    }

    /// Whether any transform is on.
    pub fn is_on(&self) -> bool {
        self.color || self.translation || self.cutout
    }

    /// Checks the ratios, naming the key.
    pub fn validate(&self) -> Result<()> {
        for (key, r) in [
            ("translation_ratio", self.translation_ratio),
            ("cutout_ratio", self.cutout_ratio),
        ] {
            ensure!(
                r.is_finite() && (0.0..=1.0).contains(&r),
                "train.diffaug.{key} must be between 0 and 1 (got {r}); the paper's are 0.125 \
                 and 0.5"
            );
        }
        Ok(())
    }

    /// The augmented batch `[N, C, H, W]` (a fresh draw per call and per image).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let mut x = x;
        if self.color {
            x = color(x);
        }
        if self.translation {
            x = translation(x, self.translation_ratio);
        }
        if self.cutout {
            x = cutout(x, self.cutout_ratio);
        }
        x
    }
}

fn color(x: Tensor<4>) -> Tensor<4> {
    let n = x.dims()[0];
    let device = x.device();
    let u = |device: &Device| {
        Tensor::<4>::random([n, 1, 1, 1], Distribution::Uniform(0.0, 1.0), device)
    };
    // Brightness.
    let x = x + u(&device).sub_scalar(0.5);
    // Saturation (on gray images the channel mean is the pixel itself: unchanged, exactly).
    let mean = x.clone().mean_dim(1);
    let x = (x - mean.clone()) * u(&device).mul_scalar(2.0) + mean;
    // Contrast.
    let mean = x.clone().mean_dim(1).mean_dim(2).mean_dim(3);
    (x - mean.clone()) * u(&device).add_scalar(0.5) + mean
}

/// The side's shift bound or cut size: `round(side · ratio)`.
fn part(side: usize, ratio: f64) -> usize {
    (side as f64 * ratio + 0.5) as usize
}

fn translation(x: Tensor<4>, ratio: f64) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let device = x.device();
    let (sh, sw) = (part(h, ratio) as i64, part(w, ratio) as i64);
    let (uh, uw) = (draws(n, &device), draws(n, &device));
    if sh == 0 && sw == 0 {
        return x;
    }
    // Pad one zero row/column each side; every out-of-range source is clamped onto it.
    let (ph, pw) = (h + 2, w + 2);
    let padded = Tensor::<4>::zeros([n, c, ph, pw], &device)
        .slice_assign([0..n, 0..c, 1..h + 1, 1..w + 1], x);
    let mut index = Vec::with_capacity(n * c * h * w);
    for i in 0..n {
        let (dy, dx) = (integer(uh[i], -sh, sh), integer(uw[i], -sw, sw));
        let plane: Vec<i64> = (0..h as i64)
            .flat_map(|y| {
                let sy = (y + dy + 1).clamp(0, h as i64 + 1);
                (0..w as i64).map(move |x| {
                    let sx = (x + dx + 1).clamp(0, w as i64 + 1);
                    sy * pw as i64 + sx
                })
            })
            .collect();
        for _ in 0..c {
            index.extend_from_slice(&plane);
        }
    }
    let index = Tensor::<3, Int>::from_data(TensorData::new(index, [n, c, h * w]), &device);
    padded
        .reshape([n, c, ph * pw])
        .gather(2, index)
        .reshape([n, c, h, w])
}

fn cutout(x: Tensor<4>, ratio: f64) -> Tensor<4> {
    let [n, _, h, w] = x.dims();
    let device = x.device();
    let (ch, cw) = (part(h, ratio), part(w, ratio));
    let (uh, uw) = (draws(n, &device), draws(n, &device));
    if ch == 0 || cw == 0 {
        return x;
    }
    let mut mask = vec![1.0f32; n * h * w];
    for i in 0..n {
        // The square's centre, as the paper draws it (odd sizes stay inside the image).
        let oy = integer(uh[i], 0, h as i64 - (ch as i64 % 2)) - ch as i64 / 2;
        let ox = integer(uw[i], 0, w as i64 - (cw as i64 % 2)) - cw as i64 / 2;
        let ys = oy.clamp(0, h as i64) as usize..(oy + ch as i64).clamp(0, h as i64) as usize;
        for y in ys {
            let xs = ox.clamp(0, w as i64) as usize..(ox + cw as i64).clamp(0, w as i64) as usize;
            for xx in xs {
                mask[(i * h + y) * w + xx] = 0.0;
            }
        }
    }
    let mask = Tensor::<4>::from_data(TensorData::new(mask, [n, 1, h, w]), &device);
    x * mask
}

#[cfg(test)]
mod tests {
    use burn::tensor::TensorData;

    use super::*;

    fn ramp(n: usize, c: usize, s: usize, device: &Device) -> Tensor<4> {
        let v: Vec<f32> = (0..n * c * s * s)
            .map(|i| ((i % 97) as f32 / 97.0) * 1.6 - 0.8)
            .collect();
        Tensor::from_data(TensorData::new(v, [n, c, s, s]), device)
    }

    fn values(x: Tensor<4>) -> Vec<f32> {
        x.into_data().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn off_by_default_and_the_paper_policy_turns_all_on() {
        assert!(!DiffAugment::default().is_on());
        let all = DiffAugment::all();
        assert!(all.color && all.translation && all.cutout);
        assert!(all.validate().is_ok());
        let bad = DiffAugment {
            cutout_ratio: 1.5,
            ..all
        };
        let e = bad.validate().expect_err("ratio > 1").to_string();
        assert!(e.contains("train.diffaug.cutout_ratio"), "{e}");
    }

    #[test]
    fn translation_shifts_each_image_by_a_whole_number_of_pixels() {
        let _l = crate::kernels::rng_lock();
        let device = Device::flex();
        device.seed(3);
        let (n, s) = (16, 8);
        let x = ramp(n, 2, s, &device);
        let src = values(x.clone());
        let aug = DiffAugment {
            translation: true,
            translation_ratio: 0.25,
            ..DiffAugment::default()
        };
        let out = values(aug.apply(x));
        let mut moved = 0;
        for i in 0..n {
            // Find the shift (within ±2) that explains the image: inside pixels copy the source,
            // outside ones are zero; both channels move together.
            let plane =
                |v: &[f32], k: usize| v[(i * 2 + k) * s * s..(i * 2 + k + 1) * s * s].to_vec();
            let fits = |dy: i64, dx: i64| {
                (0..2).all(|k| {
                    let (a, b) = (plane(&src, k), plane(&out, k));
                    (0..s as i64).all(|y| {
                        (0..s as i64).all(|xx| {
                            let (sy, sx) = (y + dy, xx + dx);
                            let want = if (0..s as i64).contains(&sy) && (0..s as i64).contains(&sx)
                            {
                                a[(sy * s as i64 + sx) as usize]
                            } else {
                                0.0
                            };
                            b[(y * s as i64 + xx) as usize] == want
                        })
                    })
                })
            };
            let found: Vec<(i64, i64)> = (-2..=2)
                .flat_map(|dy| (-2..=2).map(move |dx| (dy, dx)))
                .filter(|&(dy, dx)| fits(dy, dx))
                .collect();
            assert!(!found.is_empty(), "image {i}: not a shift of its source");
            if found[0] != (0, 0) {
                moved += 1;
            }
        }
        // 25 equally likely shifts: most of 16 images move.
        assert!((8..=16).contains(&moved), "{moved} of {n} moved");
    }

    #[test]
    fn cutout_zeroes_one_square_per_image_and_keeps_the_rest() {
        let _l = crate::kernels::rng_lock();
        let device = Device::flex();
        device.seed(5);
        let (n, s) = (12, 8);
        let x = ramp(n, 3, s, &device).add_scalar(2.0); // no pixel is zero before
        let src = values(x.clone());
        let aug = DiffAugment {
            cutout: true,
            ..DiffAugment::default()
        };
        let out = values(aug.apply(x));
        for i in 0..n {
            let zeros: Vec<usize> = (0..s * s)
                .filter(|&p| out[i * 3 * s * s + p] == 0.0)
                .collect();
            // A 4×4 square clipped at the border: 4 to 16 pixels, the same in every channel.
            assert!(
                (4..=16).contains(&zeros.len()),
                "image {i}: {} zeros",
                zeros.len()
            );
            for k in 0..3 {
                for p in 0..s * s {
                    let j = (i * 3 + k) * s * s + p;
                    if zeros.contains(&p) {
                        assert_eq!(out[j], 0.0);
                    } else {
                        assert_eq!(out[j], src[j]);
                    }
                }
            }
        }
    }

    #[test]
    fn color_moves_brightness_and_contrast_per_image_within_the_papers_ranges() {
        let _l = crate::kernels::rng_lock();
        let device = Device::flex();
        device.seed(7);
        let (n, s) = (64, 6);
        let x = ramp(n, 1, s, &device);
        let src = values(x.clone());
        let aug = DiffAugment {
            color: true,
            ..DiffAugment::default()
        };
        let out = values(aug.apply(x));
        let stats = |v: &[f32]| {
            let m = v.iter().sum::<f32>() / v.len() as f32;
            let sd = (v.iter().map(|a| (a - m).powi(2)).sum::<f32>() / v.len() as f32).sqrt();
            (m, sd)
        };
        let mut shifts = Vec::new();
        for i in 0..n {
            let (m0, s0) = stats(&src[i * s * s..(i + 1) * s * s]);
            let (m1, s1) = stats(&out[i * s * s..(i + 1) * s * s]);
            // Gray: brightness moves the mean by U(-½, ½), contrast scales the spread by U(½, 3⁄2).
            let (dm, r) = (m1 - m0, s1 / s0);
            assert!((-0.5..=0.5).contains(&dm), "image {i}: mean moved {dm}");
            assert!(
                (0.5 - 1e-4..=1.5 + 1e-4).contains(&r),
                "image {i}: spread ×{r}"
            );
            shifts.push(dm);
        }
        let spread = stats(&shifts).1;
        // U(-½, ½) has σ = 0.289.
        assert!((0.2..0.38).contains(&spread), "σ of the shifts {spread}");
    }

    #[test]
    fn gradients_flow_through_every_transform() {
        let _l = crate::kernels::rng_lock();
        let device = Device::flex().autodiff();
        device.seed(11);
        // Shifts and cutout: the sum's gradient is 1 on every pixel that survives, 0 on pixels
        // shifted away or cut out.
        let x = ramp(4, 3, 8, &device).require_grad();
        let geometric = DiffAugment {
            color: false,
            ..DiffAugment::all()
        };
        let grads = geometric.apply(x.clone()).sum().backward();
        let g = x.grad(&grads).expect("a gradient reaches the input");
        let g = g.into_data().try_to_vec::<f32>().expect("f32");
        let ones = g.iter().filter(|v| **v == 1.0).count();
        assert_eq!(ones + g.iter().filter(|v| **v == 0.0).count(), g.len());
        assert!(
            ones > g.len() / 4 && ones < g.len(),
            "{ones} of {}",
            g.len()
        );
        // With color too: finite, and varying per pixel through saturation and contrast.
        let x = ramp(4, 3, 8, &device).require_grad();
        let y = DiffAugment::all().apply(x.clone());
        let grads = (y.clone() * y).sum().backward();
        let g = x.grad(&grads).expect("a gradient reaches the input");
        let g = g.into_data().try_to_vec::<f32>().expect("f32");
        assert!(g.iter().all(|v| v.is_finite()));
        assert!(g.iter().filter(|v| v.abs() > 1e-6).count() > g.len() / 4);
    }

    #[test]
    fn a_seed_reproduces_the_draws() {
        let _l = crate::kernels::rng_lock();
        let device = Device::flex();
        let x = ramp(8, 3, 8, &device);
        device.seed(9);
        let a = values(DiffAugment::all().apply(x.clone()));
        device.seed(9);
        let b = values(DiffAugment::all().apply(x.clone()));
        device.seed(10);
        let c = values(DiffAugment::all().apply(x));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

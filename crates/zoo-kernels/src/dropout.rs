//! Dropout with a fast mask.

use burn::nn::Dropout;
use burn::tensor::{DType, Distribution, Tensor, TensorData};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

use super::rows_new;

/// A dropout layer with a fast forward on flex.
pub trait FastDropout {
    /// burn's `Dropout::forward` (identity outside training), with the mask drawn by a
    /// counter-seeded xoshiro generator on flex: burn draws one ChaCha-based f32 per element,
    /// 9% of the MLP GAN's step. The generator is seeded from the device's random stream, so a
    /// fixed seed still reproduces a run exactly; the masks differ from burn's.
    fn fast_forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;
}

impl FastDropout for Dropout {
    fn fast_forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let device = x.device();
        if !self.training.is_enabled() || !device.is_autodiff() || self.prob == 0.0 {
            return x;
        }
        let on_flex = x
            .clone()
            .try_into_primitive::<burn::backend::Autodiff<burn::backend::Flex>>()
            .is_ok();
        if x.dtype() != DType::F32 || !on_flex {
            return self.forward(x);
        }
        let keep = 1.0 - self.prob;
        // 64 bits from the device's stream (two uniform draws' bits).
        let draw = Tensor::<1>::random([2], Distribution::Default, &device).into_data();
        let bits: Vec<u32> = draw.iter::<f32>().map(|v| v.to_bits()).collect();
        let seed = (u64::from(bits[0]) << 32) | u64::from(bits[1]);
        let shape = x.shape();
        let scale = mask(shape.num_elements(), keep, seed);
        x * Tensor::from_data(TensorData::new(scale, shape), &device)
    }
}

/// Elements per independently seeded chunk of the mask (so that it does not depend on the
/// number of threads).
const CHUNK: usize = 1 << 12;

/// `n` factors: `1 / keep` with probability `keep`, else 0.
fn mask(n: usize, keep: f64, seed: u64) -> Vec<f32> {
    let threshold = (keep * 4_294_967_296.0) as u64;
    let scale = (1.0 / keep) as f32;
    // SAFETY: every element of each chunk is written.
    #[allow(unsafe_code)]
    unsafe {
        rows_new(n, CHUNK, |i, chunk| {
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(
                seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            for v in chunk {
                v.write(if u64::from(rng.random::<u32>()) < threshold {
                    scale
                } else {
                    0.0
                });
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng_lock;
    use burn::module::Module;
    use burn::nn::DropoutConfig;
    use burn::tensor::Device;

    /// Kept elements are x / keep, the rest 0, in the right proportion; the gradient is the
    /// same mask; a seed reproduces the mask, another seed changes it; inference is the
    /// identity.
    #[test]
    fn dropout_masks_scales_and_reproduces() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        let layer = DropoutConfig::new(0.3).init();
        let shape = [64, 512];
        let run = |seed: u64| {
            device.seed(seed);
            let x =
                Tensor::<2>::random(shape, Distribution::Uniform(1.0, 2.0), &device).require_grad();
            let y = layer.fast_forward(x.clone());
            let g = y.clone().sum().backward();
            (
                x.clone().inner(),
                y.inner(),
                x.grad(&g).expect("a gradient"),
            )
        };
        let (x, y, dx) = run(1);
        let kept = y
            .clone()
            .greater_elem(0.0)
            .float()
            .mean()
            .into_scalar::<f32>();
        assert!((kept - 0.7).abs() < 0.01, "kept fraction {kept}");
        let scale = (1.0 / 0.7f64) as f32;
        let expect = x
            .mul_scalar(scale)
            .mask_fill(y.clone().equal_elem(0.0), 0.0);
        assert_eq!(
            y.clone().into_data(),
            expect.into_data(),
            "kept values are x / keep"
        );
        let mask = y.clone().greater_elem(0.0).float().mul_scalar(scale);
        assert_eq!(dx.into_data(), mask.into_data(), "the gradient is the mask");
        let (_, y_again, _) = run(1);
        assert_eq!(
            y.clone().into_data(),
            y_again.into_data(),
            "same seed, same mask"
        );
        let (_, y_other, _) = run(2);
        let same = y
            .greater_elem(0.0)
            .equal(y_other.greater_elem(0.0))
            .float()
            .mean()
            .into_scalar::<f32>();
        assert!(
            same < 0.7,
            "another seed draws another mask ({same} of positions agree)"
        );
        let x = Tensor::<2>::ones(shape, &device);
        let frozen = layer.clone().valid();
        assert_eq!(
            frozen.fast_forward(x.clone().inner()).into_data(),
            x.inner().into_data()
        );
    }
}

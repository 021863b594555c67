//! Discriminator regularisers: terms of D's loss computed from the real and fake batches
//! ([`GanModel::d_regularizers`](crate::gan::GanModel::d_regularizers), or inside
//! [`Game::d_loss`](crate::game::Game::d_loss)), and transforms after D's update
//! ([`GanModel::after_d_step`](crate::gan::GanModel::after_d_step): weight clipping).
//!
//! # What burn 0.22 allows
//! burn has no double backward and no `retain_graph`: a loss cannot contain a gradient of D
//! taken by autodiff, so WGAN-GP's ‖∇D(x̂)‖ penalty and R1/R2 in their exact form are **not**
//! possible. Terms built from D's *outputs* are: the drift penalty ([`drift`]), consistency
//! regularisation (D's outputs on two augmentations), and finite-difference estimates of
//! gradient penalties ([`fd_r1`]), which use two forwards of D and are differentiable in D's
//! parameters. Spectral normalisation ([`crate::nn::SpectralNorm`]) constrains D's Lipschitz
//! constant through its layers instead of through its gradients.

use burn::prelude::*;
use burn::tensor::Distribution;

/// The drift penalty ε·E[D(x)²] of progressive GAN / WGAN-GP (keeps a critic's outputs near 0).
pub fn drift(real_logits: Tensor<2>, epsilon: f64) -> Tensor<1> {
    real_logits.powf_scalar(2.0).mean().mul_scalar(epsilon)
}

/// A finite-difference estimate of R1 = E‖∇ₓD(x)‖² on the real batch: with `n` a random unit
/// direction per image, `d`·E[((D(x + h·n) − D(x)) / h)²] (`d` = pixels per image), unbiased up
/// to O(h) for smooth D. Two forwards of `critic`; differentiable in D's parameters, which is
/// what the penalty needs. Draws `n` from the device RNG.
pub fn fd_r1(critic: impl Fn(Tensor<4>) -> Tensor<2>, real: Tensor<4>, h: f64) -> Tensor<1> {
    let [b, c, hh, w] = real.dims();
    let d = (c * hh * w) as f64;
    let n = Tensor::<4>::random(real.dims(), Distribution::Normal(0.0, 1.0), &real.device());
    let norm = n
        .clone()
        .powf_scalar(2.0)
        .sum_dims(&[1, 2, 3])
        .sqrt()
        .add_scalar(1e-12);
    let n = n / norm;
    let real = real.detach();
    let moved = critic(real.clone() + n.mul_scalar(h));
    let here = critic(real);
    let slope = (moved - here).div_scalar(h).reshape([b]);
    slope.powf_scalar(2.0).mean().mul_scalar(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_r1_estimates_the_gradient_norm_of_a_linear_critic() {
        let _l = zoo_kernels::rng_lock();
        let dev = Device::flex();
        dev.seed(11);
        // D(x) = w·x has ∇D = w everywhere, so R1 = ‖w‖².
        let w = Tensor::<1>::random([12], Distribution::Normal(0.0, 1.0), &dev);
        let want = w.clone().powf_scalar(2.0).sum().into_scalar::<f32>() as f64;
        let critic = |x: Tensor<4>| {
            let [b, ..] = x.dims();
            (x.reshape([b, 12]) * w.clone().unsqueeze_dim(0)).sum_dim(1)
        };
        let real = Tensor::<4>::random([4000, 3, 2, 2], Distribution::Normal(0.0, 1.0), &dev);
        let got = fd_r1(critic, real, 1e-2).into_scalar::<f32>() as f64;
        assert!(
            (got - want).abs() < 0.1 * want,
            "fd R1 {got} vs ‖w‖² {want}"
        );
        let drift = drift(Tensor::<2>::ones([4, 1], &dev).mul_scalar(2.0), 1e-3);
        assert!((drift.into_scalar::<f32>() - 4e-3).abs() < 1e-7);
    }
}

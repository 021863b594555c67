//! Layers any model may use.
//!
//! [`SpectralNorm`] (Miyato et al., ICLR 2018) wraps a [`Linear`] or [`Conv2d`] and divides its
//! weight by an estimate of its largest singular value σ(W), found by power iteration on the
//! weight reshaped to `[out, in·k·k]`. The left singular vector `u` is a running state: it is
//! updated by every training forward (one iteration by default, as in the paper, warm-started
//! from the last), written into checkpoints beside the weights, and only read in inference.
//! Gradients flow through σ = uᵀ W v with `u` and `v` held constant, as in the paper.

use burn::module::RunningState;
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::{conv2d, linear};
use burn::tensor::ops::ConvOptions;

/// A layer whose weight [`SpectralNorm`] can normalise.
pub trait Weighted: Module {
    /// The weight as a matrix `[out, rest]` (rows = output units).
    fn weight_matrix(&self) -> Tensor<2>;
    /// Output units (rows of [`Weighted::weight_matrix`]).
    fn outputs(&self) -> usize;
}

impl Weighted for Linear {
    fn weight_matrix(&self) -> Tensor<2> {
        // burn stores a linear weight as [in, out].
        self.weight.val().transpose()
    }
    fn outputs(&self) -> usize {
        self.weight.dims()[1]
    }
}

impl Weighted for Conv2d {
    fn weight_matrix(&self) -> Tensor<2> {
        let [o, i, h, w] = self.weight.dims();
        self.weight.val().reshape([o, i * h * w])
    }
    fn outputs(&self) -> usize {
        self.weight.dims()[0]
    }
}

/// Spectral normalisation of a layer's weight (see the module docs).
#[derive(Module, Debug)]
pub struct SpectralNorm<L: Weighted> {
    /// The wrapped layer (its weight is the unnormalised W).
    pub inner: L,
    /// The power iteration's left singular vector estimate, `[out]`.
    pub u: RunningState<Tensor<1>>,
    /// Power iterations per training forward.
    pub iterations: usize,
}

const EPS: f64 = 1e-12;

/// W·v for a matrix and a vector.
fn mv(w: Tensor<2>, v: Tensor<1>) -> Tensor<1> {
    w.matmul(v.unsqueeze_dim(1)).flatten::<1>(0, 1)
}

fn normalize(x: Tensor<1>) -> Tensor<1> {
    let n = x.clone().powf_scalar(2.0).sum().sqrt().add_scalar(EPS);
    x / n
}

impl<L: Weighted> SpectralNorm<L> {
    /// Wraps `inner` with `u` drawn from N(0, 1) and normalised (from the device RNG).
    pub fn new(inner: L, device: &Device) -> Self {
        let u = Tensor::random([inner.outputs()], Distribution::Normal(0.0, 1.0), device);
        Self {
            inner,
            u: RunningState::new(normalize(u)),
            iterations: 1,
        }
    }

    /// σ(W), the estimate of W's largest singular value; a training forward (on an autodiff
    /// device) first advances the power iteration and stores the new `u`.
    pub fn sigma(&self, w: Tensor<2>) -> Tensor<1> {
        let train = w.device().is_autodiff();
        let wd = w.clone().detach();
        let mut u = self.u.value_sync().to_device(&w.device());
        let mut v = normalize(mv(wd.clone().transpose(), u.clone()));
        if train {
            for _ in 0..self.iterations {
                v = normalize(mv(wd.clone().transpose(), u.clone()));
                u = normalize(mv(wd.clone(), v.clone()));
            }
            self.u.update(u.clone().detach());
        }
        (u.detach() * mv(w, v.detach())).sum()
    }
}

impl SpectralNorm<Linear> {
    /// The layer with W / σ(W).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let w = self.inner.weight.val();
        let sigma = self.sigma(self.inner.weight_matrix());
        let w = w / sigma.unsqueeze_dim(0);
        linear(x, w, self.inner.bias.as_ref().map(|b| b.val()))
    }
}

impl SpectralNorm<Conv2d> {
    /// The convolution with W / σ(W) (explicit or valid padding).
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = &self.inner;
        let pad = match c.padding {
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
            _ => [(0, 0), (0, 0)],
        };
        let sigma = self.sigma(c.weight_matrix());
        let w = c.weight.val() / sigma.reshape([1, 1, 1, 1]);
        let options = ConvOptions::new_with_padding(c.stride, pad, c.dilation, c.groups);
        conv2d(x, w, c.bias.as_ref().map(|b| b.val()), options)
    }
}

/// Wraps the weight of `inner` in [`SpectralNorm`] (the `Param` ids stay those of `inner`).
pub fn spectral_norm<L: Weighted>(inner: L, device: &Device) -> SpectralNorm<L> {
    SpectralNorm::new(inner, device)
}

/// The largest singular value of `w` by 200 power iterations (tests and diagnostics).
pub fn top_singular_value(w: Tensor<2>) -> f64 {
    let [_, n] = w.dims();
    let mut v = normalize(Tensor::ones([n], &w.device()));
    for _ in 0..200 {
        let wv = mv(w.clone(), v.clone());
        v = normalize(mv(w.clone().transpose(), wv));
    }
    mv(w, v).powf_scalar(2.0).sum().sqrt().into_scalar::<f32>() as f64
}

#[cfg(test)]
mod tests {
    use burn::nn::LinearConfig;
    use burn::nn::conv::Conv2dConfig;
    use burn::optim::GradientsParams;

    use super::*;

    #[test]
    fn power_iteration_finds_sigma_and_normalises_the_weight() {
        let _l = zoo_kernels::rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(3);
        let sn = spectral_norm(
            Conv2dConfig::new([3, 8], [3, 3])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&ad),
            &ad,
        );
        let truth = top_singular_value(sn.inner.weight_matrix().detach());
        let x = Tensor::<4>::random([2, 3, 5, 5], Distribution::Normal(0.0, 1.0), &ad);
        let mut sigma = 0.0;
        for _ in 0..30 {
            let _ = sn.forward(x.clone());
            sigma = sn.sigma(sn.inner.weight_matrix()).into_scalar::<f32>() as f64;
        }
        assert!((sigma - truth).abs() < 1e-3 * truth, "σ {sigma} vs {truth}");
        // The normalised weight has spectral norm 1; gradients reach the raw weight.
        let w = sn.inner.weight_matrix() / sn.sigma(sn.inner.weight_matrix()).unsqueeze_dim(0);
        let s = top_singular_value(w.detach());
        assert!((s - 1.0).abs() < 1e-2, "‖W/σ‖ = {s}");
        let loss = sn.forward(x).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &sn);
        let gw = grads
            .get::<4>(sn.inner.weight.id)
            .expect("a gradient reached the raw weight");
        assert!(gw.abs().sum().into_scalar::<f32>() > 0.0);
        // Inference does not advance u.
        let v = sn.valid();
        let before: Vec<f32> = v.u.value().into_data().try_to_vec::<f32>().expect("f32");
        let _ = v.forward(Tensor::zeros([1, 3, 5, 5], &Device::flex()));
        let after: Vec<f32> = v.u.value().into_data().try_to_vec::<f32>().expect("f32");
        assert_eq!(before, after);
    }

    #[test]
    fn u_is_checkpointed() {
        let _l = zoo_kernels::rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(5);
        let sn = spectral_norm(LinearConfig::new(6, 4).init(&ad), &ad);
        for _ in 0..3 {
            let _ = sn.forward(Tensor::<2>::ones([2, 6], &ad));
        }
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sn.bpk");
        sn.valid().save_file(&path).expect("save");
        ad.seed(99);
        let fresh = spectral_norm(LinearConfig::new(6, 4).init(&ad), &ad);
        let loaded = fresh.try_load_file(&path).expect("load");
        let a: Vec<f32> =
            sn.u.value_sync()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32");
        let b: Vec<f32> = loaded
            .u
            .value_sync()
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert_eq!(a, b);
        assert!(a.iter().any(|x| *x != 0.0));
    }
}

//! Layers any model may use.
//!
//! [`SpectralNorm`] (Miyato et al., ICLR 2018) wraps a [`Linear`] or [`Conv2d`] and divides its
//! weight by an estimate of its largest singular value σ(W), found by power iteration on the
//! weight reshaped to `[out, in·k·k]`. The left singular vector `u` is a running state: it is
//! updated by every training forward (one iteration by default, as in the paper, warm-started
//! from the last), written into checkpoints beside the weights, and only read in inference.
//! Gradients flow through σ = uᵀ W v with `u` and `v` held constant, as in the paper.
//!
//! [`ConditionalBatchNorm`] (de Vries et al. 2017; Miyato & Koyama 2018's generator) is batch
//! norm whose scale γ and shift β are rows of per-class tables picked by each image's label.

use burn::module::{Param, RunningState};
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, BatchNormConfig, Linear, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use zoo_kernels::{FastNorm, linear, try_conv2d};

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
    /// The convolution with W / σ(W) (explicit or valid padding), on zoo's one-GEMM kernels
    /// where they apply.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let c = &self.inner;
        let sigma = self.sigma(c.weight_matrix());
        let w = c.weight.val() / sigma.reshape([1, 1, 1, 1]);
        let bias = c.bias.as_ref().map(|b| b.val());
        if c.groups == 1
            && c.dilation == [1, 1]
            && let Some(y) = try_conv2d(x.clone(), w.clone(), bias.clone(), c.stride, &c.padding)
        {
            return y;
        }
        let pad = match c.padding {
            PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
            _ => [(0, 0), (0, 0)],
        };
        let options = ConvOptions::new_with_padding(c.stride, pad, c.dilation, c.groups);
        conv2d(x, w, bias, options)
    }
}

impl SpectralNorm<Linear> {
    /// Rows `index` of the normalised weight `[in, out]`: a bias-free layer applied to one-hot
    /// inputs without building them (a spectrally normalised embedding, `[N, out]`).
    pub fn rows(&self, index: Tensor<1, Int>) -> Tensor<2> {
        let sigma = self.sigma(self.inner.weight_matrix());
        (self.inner.weight.val() / sigma.unsqueeze_dim(0)).select(0, index)
    }
}

/// Batch norm with a per-class affine part: `γ[y] · x̂ + β[y]`, where `x̂` is normalised with
/// the batch's statistics in training and the running ones in inference, as burn's
/// [`BatchNorm`] does (its own γ and β are held at 1 and 0 and not trained).
#[derive(Module, Debug)]
pub struct ConditionalBatchNorm {
    /// The normalisation (frozen unit affine part).
    pub norm: BatchNorm,
    /// γ of each class, `[classes, features]`.
    pub gamma: Param<Tensor<2>>,
    /// β of each class, `[classes, features]`.
    pub beta: Param<Tensor<2>>,
}

impl ConditionalBatchNorm {
    /// γ drawn from N(1, `std`) (DCGAN's init; `std = 0` gives ones), β zero.
    pub fn new(classes: usize, features: usize, std: f64, device: &Device) -> Self {
        let mut norm = BatchNormConfig::new(features).init(device);
        norm.gamma = Param::from_tensor(Tensor::ones([features], device)).set_require_grad(false);
        norm.beta = Param::from_tensor(Tensor::zeros([features], device)).set_require_grad(false);
        let gamma = if std > 0.0 {
            Tensor::random([classes, features], Distribution::Normal(1.0, std), device)
        } else {
            Tensor::ones([classes, features], device)
        };
        Self {
            norm,
            gamma: Param::from_tensor(gamma),
            beta: Param::from_tensor(Tensor::zeros([classes, features], device)),
        }
    }

    /// Normalises `x` `[N, C, H, W]` and applies the affine part of each image's class.
    pub fn forward(&self, x: Tensor<4>, labels: Tensor<1, Int>) -> Tensor<4> {
        let [n, c, _, _] = x.dims();
        let y = self.norm.fast_forward(x);
        let gamma = self
            .gamma
            .val()
            .select(0, labels.clone())
            .reshape([n, c, 1, 1]);
        let beta = self.beta.val().select(0, labels).reshape([n, c, 1, 1]);
        y * gamma + beta
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

    #[test]
    fn the_fast_sn_convolution_is_burns() {
        let _l = zoo_kernels::rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(11);
        let mut sn = spectral_norm(
            Conv2dConfig::new([3, 5], [4, 4])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(&ad),
            &ad,
        );
        // On the autodiff device without advancing u: the fast path and burn's conv2d agree in
        // value and in the gradients of the raw weight and of the input.
        sn.iterations = 0;
        let x0 = Tensor::<4>::random([2, 3, 8, 8], Distribution::Normal(0.0, 1.0), &ad);
        let probe = Tensor::<4>::random([2, 5, 4, 4], Distribution::Normal(0.0, 1.0), &ad);
        let run = |fast: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if fast {
                sn.forward(x.clone())
            } else {
                let c = &sn.inner;
                let w = c.weight.val() / sn.sigma(c.weight_matrix()).reshape([1, 1, 1, 1]);
                let options = ConvOptions::new_with_padding([2, 2], [(1, 1), (1, 1)], [1, 1], 1);
                conv2d(x.clone(), w, c.bias.as_ref().map(|b| b.val()), options)
            };
            let grads = (y.clone() * probe.clone()).sum().backward();
            let gw = sn.inner.weight.val().grad(&grads).expect("weight gradient");
            let gx = x.grad(&grads).expect("input gradient");
            (y.inner(), gw, gx)
        };
        let (a, b) = (run(true), run(false));
        let tol = burn::tensor::Tolerance::absolute(1e-4);
        a.0.into_data()
            .assert_approx_eq::<f32>(&b.0.into_data(), tol);
        a.1.into_data()
            .assert_approx_eq::<f32>(&b.1.into_data(), tol);
        a.2.into_data()
            .assert_approx_eq::<f32>(&b.2.into_data(), tol);
    }

    #[test]
    fn conditional_batch_norm_applies_each_images_class_affine() {
        let _l = zoo_kernels::rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(2);
        let mut cbn = ConditionalBatchNorm::new(3, 2, 0.0, &ad);
        // γ of class k = k + 1 per channel, β of class k = 10·k.
        let g = Tensor::<2>::from_data([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]], &ad);
        let b = Tensor::<2>::from_data([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]], &ad);
        cbn.gamma = Param::from_tensor(g);
        cbn.beta = Param::from_tensor(b);
        let x = Tensor::<4>::random([4, 2, 3, 3], Distribution::Normal(1.0, 2.0), &ad);
        let labels = Tensor::<1, Int>::from_data([2, 0, 0, 2], &ad);
        let y = cbn.forward(x.clone(), labels.clone());
        // Against burn's batch norm with a unit affine part, then the class rows by hand.
        let plain = BatchNormConfig::new(2).init(&ad).forward(x.detach());
        for (i, k) in [2usize, 0, 0, 2].into_iter().enumerate() {
            let want = plain
                .clone()
                .slice(i..i + 1)
                .mul_scalar(k as f32 + 1.0)
                .add_scalar(10.0 * k as f32);
            y.clone()
                .slice(i..i + 1)
                .detach()
                .into_data()
                .assert_approx_eq::<f32>(
                    &want.into_data(),
                    burn::tensor::Tolerance::absolute(1e-4),
                );
        }
        // Gradients reach only the rows of the classes in the batch (class 1 is absent), never
        // the frozen affine part.
        let loss = (y.clone() * y).sum();
        let grads = GradientsParams::from_grads(loss.backward(), &cbn);
        let gg = grads.get::<2>(cbn.gamma.id).expect("γ gradient");
        let rows: Vec<f32> = gg
            .abs()
            .sum_dim(1)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert!(rows[0] > 0.0 && rows[1] == 0.0 && rows[2] > 0.0, "{rows:?}");
        let gb = grads.get::<2>(cbn.beta.id).expect("β gradient");
        let gb: Vec<f32> = gb
            .abs()
            .sum_dim(1)
            .into_data()
            .try_to_vec::<f32>()
            .expect("f32");
        assert!(gb[0] > 0.0 && gb[1] == 0.0 && gb[2] > 0.0, "{gb:?}");
        assert!(grads.get::<1>(cbn.norm.gamma.id).is_none());
        assert!(grads.get::<1>(cbn.norm.beta.id).is_none());
        // Inference uses the running statistics the training forward updated.
        let v = cbn.valid();
        let out = v.forward(
            Tensor::zeros([1, 2, 3, 3], &Device::flex()),
            Tensor::from_data([1], &Device::flex()),
        );
        assert!(
            out.into_data()
                .try_to_vec::<f32>()
                .expect("f32")
                .iter()
                .all(|p| p.is_finite())
        );
    }

    #[test]
    fn conditional_batch_norm_backward_is_batch_norms() {
        let _l = zoo_kernels::rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(4);
        let cbn = ConditionalBatchNorm::new(1, 3, 0.0, &ad);
        let bn = BatchNormConfig::new(3).init(&ad);
        let x0 = Tensor::<4>::random([4, 3, 5, 5], Distribution::Normal(0.5, 2.0), &ad);
        let probe = Tensor::<4>::random([4, 3, 5, 5], Distribution::Normal(0.0, 1.0), &ad);
        let grad = |cond: bool| {
            let x = x0.clone().detach().require_grad();
            let y = if cond {
                cbn.forward(x.clone(), Tensor::zeros([4], &ad))
            } else {
                bn.forward(x.clone())
            };
            let g = (y.clone() * probe.clone()).sum().backward();
            (y.inner(), x.grad(&g).expect("input gradient"))
        };
        let (a, b) = (grad(true), grad(false));
        let tol = burn::tensor::Tolerance::absolute(1e-4);
        a.0.into_data()
            .assert_approx_eq::<f32>(&b.0.into_data(), tol);
        a.1.into_data()
            .assert_approx_eq::<f32>(&b.1.into_data(), tol);
    }
}

//! Adversarial objectives, computed on the discriminator's raw outputs (logits).
//!
//! One enum, one dispatch site: every objective states its discriminator half and its
//! generator half in [`Adversarial::d_loss`] / [`Adversarial::g_loss`], so models never
//! repeat a `match` on the loss kind. The discriminator never ends in a sigmoid; the
//! log-probabilities are taken with stable softplus forms:
//! `-log σ(x) = softplus(-x)` and `-log(1 - σ(x)) = softplus(x)`.

use burn::prelude::*;
use burn::tensor::activation::{sigmoid, softplus};
use serde::{Deserialize, Serialize};

/// A loss to minimise and the named terms to log.
pub struct Losses {
    /// The scalar that backward runs through.
    pub total: Tensor<1>,
    /// Named scalars to log (detached by the model or not; the engine only reads them).
    pub parts: Vec<(&'static str, Tensor<1>)>,
}

impl Losses {
    /// A loss with no extra parts.
    pub fn new(total: Tensor<1>) -> Self {
        Self {
            total,
            parts: Vec::new(),
        }
    }

    /// Adds a named part.
    pub fn with(mut self, name: &'static str, value: Tensor<1>) -> Self {
        self.parts.push((name, value.detach()));
        self
    }

    /// Adds regularisation terms to the total, each logged as a part (no-op when empty).
    pub fn regularized(mut self, terms: Vec<(&'static str, Tensor<1>)>) -> Self {
        for (name, term) in terms {
            self.total = self.total + term.clone();
            self.parts.push((name, term.detach()));
        }
        self
    }
}

/// The adversarial objective of a GAN, on logits.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "LossToml", into = "LossToml")]
pub enum Adversarial {
    /// Goodfellow et al. 2014, the value function itself:
    /// D maximises `E[log D(x)] + E[log(1 - D(G(z)))]`, G minimises `E[log(1 - D(G(z)))]`.
    /// Saturates early in training, when D rejects fakes confidently.
    Minimax,
    /// The same D objective; G maximises `E[log D(G(z))]` instead (the paper's practical advice).
    #[default]
    NonSaturating,
    /// Mao et al. 2017 (LSGAN): D minimises `½E[(D(x) - b)²] + ½E[(D(G(z)) - a)²]`,
    /// G minimises `½E[(D(G(z)) - c)²]`.
    LeastSquares {
        /// Target for fakes in the D loss.
        a: f64,
        /// Target for reals in the D loss.
        b: f64,
        /// Target G wants D to give its fakes.
        c: f64,
    },
    /// Hinge loss (Lim & Ye 2017; Miyato et al. 2018): D minimises
    /// `E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]`, G minimises `-E[D(G(z))]`.
    Hinge,
    /// Wasserstein (Arjovsky et al. 2017): the critic minimises `E[D(G(z))] - E[D(x)]`,
    /// G minimises `-E[D(G(z))]`. Needs a Lipschitz constraint (clipping or a penalty) in the model.
    Wasserstein,
}

/// The TOML form: `kind` plus the least-squares targets, which only that kind accepts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LossToml {
    kind: LossKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    a: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    b: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    c: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LossKind {
    Minimax,
    NonSaturating,
    LeastSquares,
    Hinge,
    Wasserstein,
}

impl TryFrom<LossToml> for Adversarial {
    type Error = String;
    fn try_from(t: LossToml) -> Result<Self, String> {
        if t.kind != LossKind::LeastSquares && (t.a.is_some() || t.b.is_some() || t.c.is_some()) {
            return Err("the targets a, b, c only apply to kind = \"least_squares\"".into());
        }
        Ok(match t.kind {
            LossKind::Minimax => Adversarial::Minimax,
            LossKind::NonSaturating => Adversarial::NonSaturating,
            LossKind::LeastSquares => Adversarial::LeastSquares {
                a: t.a.unwrap_or(-1.0),
                b: t.b.unwrap_or(1.0),
                c: t.c.unwrap_or(0.0),
            },
            LossKind::Hinge => Adversarial::Hinge,
            LossKind::Wasserstein => Adversarial::Wasserstein,
        })
    }
}

impl From<Adversarial> for LossToml {
    fn from(a: Adversarial) -> Self {
        let plain = |kind| LossToml {
            kind,
            a: None,
            b: None,
            c: None,
        };
        match a {
            Adversarial::Minimax => plain(LossKind::Minimax),
            Adversarial::NonSaturating => plain(LossKind::NonSaturating),
            Adversarial::LeastSquares { a, b, c } => LossToml {
                kind: LossKind::LeastSquares,
                a: Some(a),
                b: Some(b),
                c: Some(c),
            },
            Adversarial::Hinge => plain(LossKind::Hinge),
            Adversarial::Wasserstein => plain(LossKind::Wasserstein),
        }
    }
}

impl Adversarial {
    /// Least squares with the paper's first coding (a = -1, b = 1, c = 0).
    pub const LEAST_SQUARES: Adversarial = Adversarial::LeastSquares {
        a: -1.0,
        b: 1.0,
        c: 0.0,
    };

    /// Discriminator loss (to minimise) from the logits on a real and on a fake batch.
    pub fn d_loss<const D: usize>(&self, real: Tensor<D>, fake: Tensor<D>) -> Tensor<1> {
        match *self {
            // -E[log σ(r)] - E[log(1 - σ(f))]
            Adversarial::Minimax | Adversarial::NonSaturating => {
                softplus(real.neg(), 1.0).mean() + softplus(fake, 1.0).mean()
            }
            Adversarial::LeastSquares { a, b, .. } => (real.sub_scalar(b).square().mean()
                + fake.sub_scalar(a).square().mean())
            .mul_scalar(0.5),
            Adversarial::Hinge => {
                (real.neg().add_scalar(1.0)).clamp_min(0.0).mean()
                    + fake.add_scalar(1.0).clamp_min(0.0).mean()
            }
            Adversarial::Wasserstein => fake.mean() - real.mean(),
        }
    }

    /// Generator loss (to minimise) from the discriminator's logits on fakes.
    pub fn g_loss<const D: usize>(&self, fake: Tensor<D>) -> Tensor<1> {
        match *self {
            // E[log(1 - σ(f))] = -E[softplus(f)]
            Adversarial::Minimax => softplus(fake, 1.0).mean().neg(),
            // -E[log σ(f)] = E[softplus(-f)]
            Adversarial::NonSaturating => softplus(fake.neg(), 1.0).mean(),
            Adversarial::LeastSquares { c, .. } => {
                fake.sub_scalar(c).square().mean().mul_scalar(0.5)
            }
            Adversarial::Hinge | Adversarial::Wasserstein => fake.mean().neg(),
        }
    }

    /// Factors `(d, g)` that turn [`Adversarial::d_loss`] / [`Adversarial::g_loss`] into the
    /// `GANLoss` convention of the pix2pix/CycleGAN reference code: the D loss is half the sum
    /// of the real and fake criteria, and the G term is the plain criterion (for least
    /// squares an unhalved mean squared error, twice the LSGAN paper's ½-scaled form).
    pub fn reference_scale(&self) -> (f64, f64) {
        match self {
            Adversarial::LeastSquares { .. } => (1.0, 2.0),
            _ => (0.5, 1.0),
        }
    }

    /// What the logs call `D(x)`: the mean probability for the sigmoid-based objectives,
    /// the mean raw output for the others (their D has no probability reading).
    pub fn score<const D: usize>(&self, logits: Tensor<D>) -> Tensor<1> {
        match self {
            Adversarial::Minimax | Adversarial::NonSaturating => sigmoid(logits).mean(),
            _ => logits.mean(),
        }
    }

    /// The discriminator's [`Losses`] from its logits on reals and fakes, with the scores
    /// `d_real` (mean D(x)) and `d_fake` (mean D(G(z))) as logged parts.
    pub fn d_losses<const D: usize>(&self, real: Tensor<D>, fake: Tensor<D>) -> Losses {
        Losses::new(self.d_loss(real.clone(), fake.clone()))
            .with("d_real", self.score(real))
            .with("d_fake", self.score(fake))
    }

    /// The generator's [`Losses`] from the discriminator's logits on its fakes.
    pub fn g_losses<const D: usize>(&self, fake: Tensor<D>) -> Losses {
        Losses::new(self.g_loss(fake))
    }

    /// Checks the parameters, naming the problem.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Adversarial::LeastSquares { a, b, c } = *self {
            anyhow::ensure!(
                a.is_finite() && b.is_finite() && c.is_finite(),
                "loss.a, loss.b and loss.c must be finite numbers (got a={a}, b={b}, c={c})"
            );
            anyhow::ensure!(
                a != b,
                "least-squares targets a (fake) and b (real) must differ (both are {a}); \
                 use a=-1, b=1, c=0 or a=0, b=1, c=1"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> Device {
        Device::flex()
    }

    fn t(v: &[f32]) -> Tensor<1> {
        Tensor::from_floats(v, &dev())
    }

    fn scalar(x: Tensor<1>) -> f64 {
        x.into_scalar::<f32>().to_f64()
    }

    fn close(got: f64, want: f64, tol: f64) {
        assert!(
            (got - want).abs() <= tol,
            "got {got}, want {want} (± {tol})"
        );
    }

    #[test]
    fn bce_losses_match_hand_computed_values() {
        // D(x) = σ(2) = 0.880797, D(G(z)) = σ(-1) = 0.268941.
        let real = t(&[2.0]);
        let fake = t(&[-1.0]);
        let want_d = -(0.880_797_f64.ln()) - (1.0 - 0.268_941_f64).ln(); // 0.126928 + 0.313262
        close(
            scalar(Adversarial::Minimax.d_loss(real.clone(), fake.clone())),
            want_d,
            1e-5,
        );
        close(
            scalar(Adversarial::NonSaturating.d_loss(real, fake.clone())),
            want_d,
            1e-5,
        );
        close(
            scalar(Adversarial::Minimax.g_loss(fake.clone())),
            (1.0 - 0.268_941_f64).ln(),
            1e-5,
        );
        close(
            scalar(Adversarial::NonSaturating.g_loss(fake)),
            -(0.268_941_f64.ln()),
            1e-5,
        );
    }

    #[test]
    fn at_zero_logits_the_value_function_is_minus_log_4() {
        let z = t(&[0.0, 0.0, 0.0]);
        // V = log ½ + log ½; the D loss is -V.
        close(
            scalar(Adversarial::Minimax.d_loss(z.clone(), z.clone())),
            4f64.ln(),
            1e-6,
        );
        close(scalar(Adversarial::Minimax.g_loss(z)), -(2f64.ln()), 1e-6);
    }

    #[test]
    fn least_squares_hinge_and_wasserstein_match_hand_computed_values() {
        let real = t(&[0.5, 1.5]);
        let fake = t(&[-0.5, 0.0]);
        // ½·mean((r-1)²) + ½·mean((f+1)²) = ½·0.25 + ½·0.625
        close(
            scalar(Adversarial::LEAST_SQUARES.d_loss(real.clone(), fake.clone())),
            0.4375,
            1e-6,
        );
        close(
            scalar(Adversarial::LEAST_SQUARES.g_loss(fake.clone())),
            0.5 * 0.125,
            1e-6,
        );
        let ls01 = Adversarial::LeastSquares {
            a: 0.0,
            b: 1.0,
            c: 1.0,
        };
        close(
            scalar(ls01.g_loss(fake.clone())),
            0.5 * (2.25 + 1.0) / 2.0,
            1e-6,
        );
        // hinge: mean(relu(1-r)) = 0.25, mean(relu(1+f)) = 0.75
        close(
            scalar(Adversarial::Hinge.d_loss(real.clone(), fake.clone())),
            1.0,
            1e-6,
        );
        close(scalar(Adversarial::Hinge.g_loss(fake.clone())), 0.25, 1e-6);
        close(
            scalar(Adversarial::Wasserstein.d_loss(real, fake.clone())),
            -1.25,
            1e-6,
        );
        close(scalar(Adversarial::Wasserstein.g_loss(fake)), 0.25, 1e-6);
    }

    #[test]
    fn extreme_logits_stay_finite_and_correct() {
        let real = t(&[100.0, -100.0]);
        let fake = t(&[-100.0, 100.0]);
        for loss in [Adversarial::Minimax, Adversarial::NonSaturating] {
            // softplus(-100) ≈ 0, softplus(100) = 100 → each mean is 50.
            let d = scalar(loss.d_loss(real.clone(), fake.clone()));
            close(d, 100.0, 1e-3);
            let g = scalar(loss.g_loss(fake.clone()));
            assert!(g.is_finite(), "{loss:?} g loss {g}");
            close(g.abs(), 50.0, 1e-3);
        }
        // Gradients stay finite too.
        let dev = dev().autodiff();
        let x: Tensor<1> = Tensor::from_floats([100.0, -100.0], &dev).require_grad();
        let loss = Adversarial::Minimax.d_loss(x.clone(), x.clone())
            + Adversarial::NonSaturating.g_loss(x.clone());
        let grads = loss.backward();
        let g = x.grad(&grads).expect("gradient");
        for v in g.into_data().try_to_vec::<f32>().expect("f32") {
            assert!(v.is_finite());
        }
    }

    #[test]
    fn minimax_saturates_where_non_saturating_and_least_squares_do_not() {
        // D rejects the fakes confidently: logits ≈ -10.
        let grad_of = |loss: Adversarial| -> f64 {
            let dev = dev().autodiff();
            let x: Tensor<1> = Tensor::from_floats([-10.0, -10.0], &dev).require_grad();
            let grads = loss.g_loss(x.clone()).backward();
            let g = x.grad(&grads).expect("gradient");
            g.abs().sum().into_scalar::<f32>().to_f64()
        };
        let minimax = grad_of(Adversarial::Minimax);
        let ns = grad_of(Adversarial::NonSaturating);
        let ls = grad_of(Adversarial::LEAST_SQUARES);
        // d/dx -softplus(x)/n = -σ(x)/n: σ(-10) = 4.54e-5.
        close(minimax, 4.54e-5, 1e-6);
        // d/dx softplus(-x)/n = -(1-σ(x))/n ≈ 1 in total.
        close(ns, 1.0, 1e-3);
        // d/dx ½(x-0)²/n = x/n → |−10| in total.
        close(ls, 10.0, 1e-3);
        assert!(ns > 1e4 * minimax && ls > 1e4 * minimax);
    }

    #[test]
    fn losses_parse_from_toml() {
        #[derive(Deserialize)]
        struct W {
            loss: Adversarial,
        }
        let w: W = toml::from_str("loss = { kind = \"minimax\" }").expect("parse");
        assert_eq!(w.loss, Adversarial::Minimax);
        let w: W =
            toml::from_str("[loss]\nkind = \"least_squares\"\na = 0.0\nc = 1.0").expect("parse");
        assert_eq!(
            w.loss,
            Adversarial::LeastSquares {
                a: 0.0,
                b: 1.0,
                c: 1.0
            }
        );
        assert!(toml::from_str::<W>("loss = { kind = \"minmax\" }").is_err());
        assert!(toml::from_str::<W>("loss = { kind = \"hinge\", a = 1.0 }").is_err());
        assert!(toml::from_str::<W>("loss = { kind = \"least_squares\", d = 1.0 }").is_err());
        let back: W = toml::from_str(&format!(
            "loss = {}",
            toml::Value::try_from(Adversarial::LEAST_SQUARES).expect("ser")
        ))
        .expect("round trip");
        assert_eq!(back.loss, Adversarial::LEAST_SQUARES);
    }

    #[test]
    fn reference_scale_matches_cyclegan_ganloss() {
        let real = Tensor::<1>::from_floats([0.3, 1.7, -0.2], &dev());
        let fake = Tensor::<1>::from_floats([0.9, -1.1, 0.4], &dev());
        let v = |t: Tensor<1>| t.into_scalar::<f32>().to_f64();
        let mse = |x: &Tensor<1>, t: f64| v(x.clone().sub_scalar(t).square().mean());
        let bce_real = |x: &Tensor<1>| v(softplus(x.clone().neg(), 1.0).mean());
        let bce_fake = |x: &Tensor<1>| v(softplus(x.clone(), 1.0).mean());
        let ls = Adversarial::LeastSquares {
            a: 0.0,
            b: 1.0,
            c: 1.0,
        };
        let (d, g) = ls.reference_scale();
        let want_d = 0.5 * (mse(&real, 1.0) + mse(&fake, 0.0));
        assert!((d * v(ls.d_loss(real.clone(), fake.clone())) - want_d).abs() < 1e-6);
        assert!((g * v(ls.g_loss(fake.clone())) - mse(&fake, 1.0)).abs() < 1e-6);
        let ns = Adversarial::NonSaturating;
        let (d, g) = ns.reference_scale();
        let want_d = 0.5 * (bce_real(&real) + bce_fake(&fake));
        assert!((d * v(ns.d_loss(real, fake.clone())) - want_d).abs() < 1e-6);
        assert!((g * v(ns.g_loss(fake.clone())) - bce_real(&fake)).abs() < 1e-6);
    }

    /// The 2014 paper's Proposition 1 and Theorem 1, checked numerically: with G fixed to a
    /// known density p_g, the D that maximises V(D, G) is p_data / (p_data + p_g), and there
    /// V = 2·JSD(p_data ‖ p_g) − log 4.
    mod theory {
        use burn::nn::{Linear, LinearConfig};
        use burn::optim::{AdamConfig, GradientsParams};
        use burn::tensor::Distribution;
        use burn::tensor::activation::relu;

        use super::*;

        #[derive(Module, Debug)]
        struct Mlp {
            a: Linear,
            b: Linear,
            c: Linear,
        }

        impl Mlp {
            fn new(device: &Device) -> Self {
                Self {
                    a: LinearConfig::new(1, 32).init(device),
                    b: LinearConfig::new(32, 32).init(device),
                    c: LinearConfig::new(32, 1).init(device),
                }
            }
            fn forward(&self, x: Tensor<2>) -> Tensor<2> {
                self.c
                    .forward(relu(self.b.forward(relu(self.a.forward(x)))))
            }
        }

        fn normal_pdf(x: f64, mu: f64) -> f64 {
            (-(x - mu).powi(2) / 2.0).exp() / (2.0 * std::f64::consts::PI).sqrt()
        }

        /// JSD of N(μ₁, 1) and N(μ₂, 1) by quadrature, in nats.
        fn jsd(mu1: f64, mu2: f64) -> f64 {
            let (lo, hi, n) = (-12.0, 12.0, 24_000);
            let h = (hi - lo) / n as f64;
            (0..n)
                .map(|i| {
                    let x = lo + (i as f64 + 0.5) * h;
                    let (p, q) = (normal_pdf(x, mu1), normal_pdf(x, mu2));
                    let m = 0.5 * (p + q);
                    let kl = |a: f64| if a > 0.0 { a * (a / m).ln() } else { 0.0 };
                    0.5 * (kl(p) + kl(q)) * h
                })
                .sum()
        }

        /// Trains D alone (Adam, the minimax D loss) with data ~ N(μ_d, 1) and fakes ~ N(μ_g, 1);
        /// returns D(x) on a grid over [−2, 2] and V(D, G) on a large fresh sample.
        fn train_d(mu_d: f64, mu_g: f64) -> (Vec<(f64, f64)>, f64) {
            let _l = zoo_kernels::rng_lock();
            let ad = Device::flex().autodiff();
            ad.seed(7);
            let mut d = Mlp::new(&ad);
            let mut opt = AdamConfig::new().init();
            let draw = |mu: f64, n: usize, dev: &Device| {
                Tensor::<2>::random([n, 1], Distribution::Normal(mu, 1.0), dev)
            };
            for step in 0..1500 {
                let loss = Adversarial::Minimax.d_loss(
                    d.forward(draw(mu_d, 512, &ad)),
                    d.forward(draw(mu_g, 512, &ad)),
                );
                let grads = GradientsParams::from_grads(loss.backward(), &d);
                let lr = if step < 1000 { 3e-3 } else { 3e-4 };
                d = opt.step(lr, d, grads);
            }
            let d = d.valid();
            let dev = Device::flex();
            let grid: Vec<f64> = (0..=40).map(|i| -2.0 + 0.1 * i as f64).collect();
            let x = Tensor::<1>::from_floats(
                grid.iter()
                    .map(|&v| v as f32)
                    .collect::<Vec<_>>()
                    .as_slice(),
                &dev,
            )
            .reshape([grid.len(), 1]);
            let probs = burn::tensor::activation::sigmoid(d.forward(x))
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32");
            let curve = grid
                .iter()
                .zip(probs)
                .map(|(&x, p)| (x, p as f64))
                .collect();
            // V(D, G) = E_data[log D] + E_g[log(1 − D)] = −(the minimax D loss).
            let v = -Adversarial::Minimax
                .d_loss(
                    d.forward(draw(mu_d, 200_000, &dev)),
                    d.forward(draw(mu_g, 200_000, &dev)),
                )
                .into_scalar::<f32>()
                .to_f64();
            (curve, v)
        }

        #[test]
        fn optimal_d_and_the_value_at_it() {
            let (mu_d, mu_g) = (-1.0, 1.0);
            let (curve, v) = train_d(mu_d, mu_g);
            for (x, got) in &curve {
                let (p, q) = (normal_pdf(*x, mu_d), normal_pdf(*x, mu_g));
                let want = p / (p + q);
                assert!((got - want).abs() < 0.05, "D({x}) = {got}, optimum {want}");
            }
            let want = 2.0 * jsd(mu_d, mu_g) - 4f64.ln();
            assert!((v - want).abs() < 0.03, "V = {v}, 2·JSD − log 4 = {want}");
        }

        #[test]
        fn at_p_g_equal_p_data_d_is_one_half_and_v_is_minus_log_4() {
            let (curve, v) = train_d(0.0, 0.0);
            for (x, got) in &curve {
                assert!((got - 0.5).abs() < 0.05, "D({x}) = {got}");
            }
            assert!(
                (v + 4f64.ln()).abs() < 0.03,
                "V = {v}, −log 4 = {}",
                -(4f64.ln())
            );
        }
    }
}

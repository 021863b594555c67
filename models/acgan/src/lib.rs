//! The auxiliary-classifier GAN (Odena, Olah & Shlens, ICML 2017).
//!
//! D has two heads on one DCGAN trunk: the real/fake logit and class logits. Both players add
//! the class cross-entropy to their adversarial loss: D learns to classify real images, G to
//! make fakes that D reads as their class. The paper also trains D's class head on the fakes
//! by the class they were drawn for (`model.fake_class_loss = true`); at 1,500 MNIST steps
//! that gave 82% label agreement (worst class 64%) against 97% (94%) without it, since D then
//! learns to read G's own class-specific artefacts rather than the real classes. G is DCGAN's generator fed z concatenated with the class one-hot (the
//! paper's input). Nets are sized from the image like `dcgan`; the non-saturating loss by
//! default.

use anyhow::{Result, ensure};
use burn::nn::Initializer;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::config::RunConfig;
use zoo_core::data::classes::run_classes;
use zoo_core::gan::{ConditionalGan, Losses, Prior};
use zoo_core::kernels::FastConv;
use zoo_core::loss::Adversarial;
use zoo_dcgan::{
    DcganConfig, Discriminator, Generator, Layout, check_nets, conditional_layout, conv_defaults,
};

/// `[model]` of `zoo train acgan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AcganConfig {
    /// Dimension of z (G's input is z and the class one-hot).
    pub latent_dim: usize,
    /// Latent prior: `normal` or `uniform`.
    pub prior: Prior,
    /// Filters of G's last hidden layer; each earlier stage doubles it.
    pub g_filters: usize,
    /// Filters of D's first layer; each later stage doubles it.
    pub d_filters: usize,
    /// Standard deviation of the N(0, σ) weight init (batch-norm γ: N(1, σ)).
    pub init_std: f64,
    /// Negative slope of D's LeakyReLUs.
    pub leaky_slope: f64,
    /// Adversarial objective (see `zoo config vanilla` for the kinds).
    pub loss: Adversarial,
    /// Weight of the class cross-entropy in both players' losses (2: every MNIST class ≥ 96% at
    /// 3,000 steps, against a worst class at 94% with 1).
    pub class_weight: f64,
    /// D also learns to classify fakes by their drawn class (the paper's L_C); `false` (the
    /// default) trains D's class head on real images only, which measured far better here.
    pub fake_class_loss: bool,
}

impl Default for AcganConfig {
    fn default() -> Self {
        Self {
            latent_dim: 100,
            prior: Prior::Normal,
            g_filters: 64,
            d_filters: 64,
            init_std: 0.02,
            leaky_slope: 0.2,
            loss: Adversarial::NonSaturating,
            class_weight: 2.0,
            fake_class_loss: false,
        }
    }
}

impl AcganConfig {
    /// The DCGAN networks' settings, with G's input widened by the one-hot.
    fn nets(&self, classes: usize) -> DcganConfig {
        DcganConfig {
            latent_dim: self.latent_dim + classes,
            prior: self.prior,
            g_filters: Some(self.g_filters),
            d_filters: self.d_filters,
            init_std: self.init_std,
            leaky_slope: self.leaky_slope,
            loss: self.loss,
            d_joint_batch: false,
        }
    }
}

/// AC-GAN's generator: DCGAN's, fed `[z, one_hot(y)]`.
#[derive(Module, Debug)]
pub struct AcGenerator {
    net: Generator,
    #[module(skip)]
    classes: usize,
}

impl AcGenerator {
    /// Images of classes `labels` from codes `z`.
    pub fn forward(&self, z: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        let hot = labels.one_hot(self.classes).float();
        self.net.forward(Tensor::cat(vec![z, hot], 1))
    }

    /// The same forward as an ONNX graph: `[z, one_hot(class)]` (rows of an identity table)
    /// into DCGAN's generator.
    pub fn to_onnx(
        &self,
        g: &mut zoo_export::Graph,
        z: &zoo_export::Value,
        class: &zoo_export::Value,
    ) -> Result<zoo_export::Value> {
        use zoo_export::layers;
        let k = self.classes;
        let eye: Vec<f32> = (0..k * k)
            .map(|i| if i / k == i % k { 1.0 } else { 0.0 })
            .collect();
        let eye = g.floats("g.one_hot", &[k, k], eye);
        let hot = layers::rows(g, &eye, class, "g.one_hot_of_class");
        let x = layers::concat(g, &[z, &hot], 1, "g.z_and_class");
        self.net.to_onnx(g, &x)
    }
}

/// AC-GAN's discriminator: DCGAN's trunk and real/fake head, and a class head (a
/// base×base convolution to the class logits).
#[derive(Module, Debug)]
pub struct AcDiscriminator {
    net: Discriminator,
    classes: Conv2d,
}

impl AcDiscriminator {
    /// The real/fake logits `[N, 1]` and the class logits `[N, classes]`.
    pub fn forward(&self, images: Tensor<4>) -> (Tensor<2>, Tensor<2>) {
        let n = images.dims()[0];
        let h = self.net.features(images);
        let k = self.classes.weight.dims()[0];
        let classes = self.classes.fast_forward(h.clone()).reshape([n, k]);
        (self.net.head(h), classes)
    }
}

/// AC-GAN.
#[derive(Debug, Clone)]
pub struct Acgan {
    cfg: AcganConfig,
    layout: Layout,
    classes: Vec<String>,
}

impl Acgan {
    fn cross_entropy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits, labels)
    }

    /// The share of `logits` whose arg-max is `labels`.
    fn accuracy(logits: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<1> {
        let n = labels.dims()[0];
        let hit = logits.detach().argmax(1).reshape([n]).equal(labels);
        hit.float().mean()
    }
}

impl ConditionalGan for Acgan {
    type Config = AcganConfig;
    type G = AcGenerator;
    type D = AcDiscriminator;
    const NAME: &'static str = "acgan";
    const ABOUT: &'static str =
        "Odena et al. 2017: D also classifies, both players add the class cross-entropy";

    /// MNIST at 28×28, batch 64, Adam 2e-4 / β (0.5, 0.999), 2,000 steps.
    fn defaults() -> RunConfig<AcganConfig> {
        conv_defaults()
    }

    fn new(cfg: &RunConfig<AcganConfig>) -> Result<Self> {
        let m = &cfg.model;
        check_nets(
            m.latent_dim,
            m.g_filters,
            m.d_filters,
            m.init_std,
            m.leaky_slope,
        )?;
        ensure!(
            m.class_weight.is_finite() && m.class_weight >= 0.0,
            "model.class_weight must be a non-negative number (got {})",
            m.class_weight
        );
        m.loss.validate()?;
        let layout = conditional_layout(Self::NAME, &cfg.data)?;
        let classes = run_classes(&cfg.data)?;
        Ok(Self {
            cfg: m.clone(),
            layout,
            classes,
        })
    }

    fn class_names(&self) -> Vec<String> {
        self.classes.clone()
    }
    fn init_g(&self, device: &Device) -> AcGenerator {
        let k = self.classes.len();
        AcGenerator {
            net: Generator::new(&self.layout, &self.cfg.nets(k), device),
            classes: k,
        }
    }
    fn init_d(&self, device: &Device) -> AcDiscriminator {
        let k = self.classes.len();
        let net = Discriminator::new(&self.layout, &self.cfg.nets(k), device);
        let classes = Conv2dConfig::new([net.feature_channels(), k], [self.layout.base; 2])
            .with_initializer(Initializer::Normal {
                mean: 0.0,
                std: self.cfg.init_std,
            })
            .init(device);
        AcDiscriminator { net, classes }
    }
    fn noise(&self, n: usize, device: &Device) -> Tensor<2> {
        self.cfg.prior.sample(n, self.cfg.latent_dim, device)
    }
    fn generate(&self, g: &AcGenerator, noise: Tensor<2>, labels: Tensor<1, Int>) -> Tensor<4> {
        g.forward(noise, labels)
    }
    fn d_loss(
        &mut self,
        d: &AcDiscriminator,
        real: Tensor<4>,
        fake: Tensor<4>,
        labels: Tensor<1, Int>,
    ) -> Losses {
        let (r, rc) = d.forward(real);
        let (f, fc) = d.forward(fake);
        let w = self.cfg.class_weight;
        let acc = Self::accuracy(rc.clone(), labels.clone());
        let mut terms = vec![(
            "class_real",
            Self::cross_entropy(rc, labels.clone()).mul_scalar(w),
        )];
        if self.cfg.fake_class_loss {
            terms.push(("class_fake", Self::cross_entropy(fc, labels).mul_scalar(w)));
        }
        self.cfg
            .loss
            .d_losses(r, f)
            .regularized(terms)
            .with("class_acc_real", acc)
    }
    fn g_loss(&mut self, d: &AcDiscriminator, fake: Tensor<4>, labels: Tensor<1, Int>) -> Losses {
        let (f, fc) = d.forward(fake);
        let ce = Self::cross_entropy(fc, labels).mul_scalar(self.cfg.class_weight);
        self.cfg.loss.g_losses(f).regularized(vec![("g_class", ce)])
    }
}

impl zoo_export::ExportConditional for Acgan {
    fn export_generator(&self, g: &AcGenerator) -> Result<zoo_export::OnnxModel> {
        zoo_export::class_to_image(
            Self::NAME,
            (self.cfg.latent_dim, self.cfg.prior),
            &self.classes,
            (self.layout.channels, self.layout.size()),
            "[z, one-hot class] into transposed convolutions, batch norm in eval mode, tanh",
            |graph, z, class| g.to_onnx(graph, z, class),
        )
    }
}

/// `zoo train acgan`'s [`zoo_core::game::Game`].
pub type AcganGame = zoo_core::gan::Conditional<Acgan>;

#[cfg(test)]
mod tests;

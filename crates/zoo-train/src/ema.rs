//! An exponential moving average of the generator's weights (Karras et al. 2018; StudioGAN's
//! `G_ema`), for any model: `train.ema.decay` > 0 turns it on. After every generator update
//! each trainable tensor becomes `decay · ema + (1 − decay) · g` (a copy of g before
//! `train.ema.start`); buffers such as batch-norm running statistics are copied from g. The
//! average lives off the autodiff graph, is checkpointed as `generator_ema.bpk`, and is what
//! grids, `zoo sample` and `zoo eval` use when it is on.

use std::collections::VecDeque;
use std::path::Path;

use anyhow::Result;
use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use zoo_core::config::EmaConfig;

/// The EMA generator's file in a checkpoint (present when `train.ema` is on).
pub const EMA_FILE: &str = "generator_ema.bpk";

/// The averaged generator.
#[derive(Clone)]
pub struct Ema<G: Module> {
    /// The average (an inference-mode copy of the generator's structure).
    pub g: G,
    cfg: EmaConfig,
}

/// Each float tensor of a module, flattened, and whether it is trained.
struct Collect(VecDeque<(Tensor<1>, bool)>);

impl ModuleVisitor for Collect {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let t = param.val();
        let trained = t.is_require_grad();
        let n = t.shape().num_elements();
        self.0.push_back((t.detach().inner().reshape([n]), trained));
    }
}

/// Blends the collected tensors into a module's, in the same visiting order.
struct Blend {
    from: VecDeque<(Tensor<1>, bool)>,
    keep: f64,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, p: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (g, trained) = self.from.pop_front().expect("same structure");
        let keep = self.keep;
        p.map(|e| {
            let g = g.reshape(e.shape());
            if trained && keep > 0.0 {
                e.mul_scalar(keep) + g.mul_scalar(1.0 - keep)
            } else {
                g
            }
        })
    }
}

impl<G: Module + Clone> Ema<G> {
    /// The average of a fresh generator `g` (on the autodiff device), or `None` when off.
    pub fn new(cfg: &EmaConfig, g: &G) -> Option<Self> {
        (cfg.decay > 0.0).then(|| Self {
            g: g.valid(),
            cfg: *cfg,
        })
    }

    /// Folds in the generator after update `step` (0-based).
    pub fn update(&mut self, g: &G, step: u64) {
        // Which tensors are trained, from the autodiff generator; their values from its
        // inference view, where batch norm's pending running-statistics update is folded in.
        let mut trained = Collect(VecDeque::new());
        g.visit(&mut trained);
        let mut c = Collect(VecDeque::new());
        g.valid().visit(&mut c);
        for ((_, t), (_, v)) in trained.0.iter().zip(c.0.iter_mut()) {
            *v = *t;
        }
        let keep = self.cfg.keep(step);
        let mut blend = Blend { from: c.0, keep };
        self.g = self.g.clone().map(&mut blend);
    }

    /// Writes the average (burnpack).
    pub fn save(&self, path: &Path) -> Result<()> {
        self.g
            .clone()
            .save_file(path)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// Reads an average written by [`Ema::save`].
    pub fn load(mut self, path: &Path) -> Result<Self> {
        self.g = crate::params::load_module(self.g, path)?;
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use burn::nn::{Linear, LinearConfig};

    use super::*;

    fn weights(m: &Linear) -> Vec<f32> {
        m.weight.val().into_data().try_to_vec::<f32>().expect("f32")
    }

    #[test]
    fn ema_follows_the_decay_rule_and_starts_as_a_copy() {
        let _l = zoo_core::kernels::rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(1);
        let g0 = LinearConfig::new(3, 2).init(&ad);
        let cfg = EmaConfig {
            decay: 0.9,
            start: 1,
            rampup: 0.0,
        };
        let mut ema = Ema::new(&cfg, &g0).expect("on");
        assert!(
            Ema::new(&EmaConfig::default(), &g0).is_none(),
            "off by default"
        );
        let g1 = LinearConfig::new(3, 2).init(&ad);
        ema.update(&g1, 0); // before start: a copy
        assert_eq!(weights(&ema.g), weights(&g1));
        let g2 = LinearConfig::new(3, 2).init(&ad);
        ema.update(&g2, 1);
        for ((e, a), b) in weights(&ema.g).iter().zip(weights(&g1)).zip(weights(&g2)) {
            assert!((e - (0.9 * a + 0.1 * b)).abs() < 1e-6, "{e} vs {a}, {b}");
        }
        assert!(!ema.g.weight.val().is_require_grad());
    }

    #[test]
    fn ema_rampup_caps_the_half_life_at_a_share_of_the_steps_so_far() {
        let cfg = EmaConfig {
            decay: 0.999,
            start: 10,
            rampup: 0.05,
        };
        assert_eq!(cfg.keep(9), 0.0, "a copy before start");
        // 100 steps after start: half-life 5 steps, 0.5^(1/5) = 0.8706 (< 0.999).
        assert!(
            (cfg.keep(109) - 0.5f64.powf(0.2)).abs() < 1e-12,
            "{}",
            cfg.keep(109)
        );
        // 2,000 steps after start: half-life 100 steps, 0.5^(1/100) = 0.993092.
        assert!(
            (cfg.keep(2009) - 0.993_092).abs() < 1e-6,
            "{}",
            cfg.keep(2009)
        );
        // Long runs: capped by the decay (half-life 693 steps from 13,860 steps on).
        assert_eq!(cfg.keep(100_000), 0.999);
        // The weight never falls as the run goes on.
        assert!((10..20_000).all(|s| cfg.keep(s + 1) >= cfg.keep(s)));
        let fixed = EmaConfig { rampup: 0.0, ..cfg };
        assert_eq!(fixed.keep(109), 0.999);
    }

    #[test]
    fn ema_copies_batch_norm_statistics_with_their_latest_update() {
        use burn::nn::{BatchNorm, BatchNormConfig};
        let _l = zoo_core::kernels::rng_lock();
        let ad = Device::flex().autodiff();
        ad.seed(2);
        let bn: BatchNorm = BatchNormConfig::new(3).init(&ad);
        let cfg = EmaConfig {
            decay: 0.5,
            start: 0,
            rampup: 0.0,
        };
        let mut ema = Ema::new(&cfg, &bn).expect("on");
        // A training forward leaves a pending running-statistics update.
        let x = Tensor::<4>::random(
            [4, 3, 2, 2],
            burn::tensor::Distribution::Normal(5.0, 1.0),
            &ad,
        );
        let _ = bn.forward(x);
        ema.update(&bn, 0);
        let mean = |m: &BatchNorm| -> Vec<f32> {
            m.running_mean
                .value()
                .into_data()
                .try_to_vec::<f32>()
                .expect("f32")
        };
        // Buffers are copied, not averaged, and include the last update (mean moved off 0).
        assert_eq!(mean(&ema.g), mean(&bn.valid()));
        assert!(mean(&ema.g).iter().all(|m| *m > 0.1), "{:?}", mean(&ema.g));
    }
}

//! One training step of any [`Game`]: the players it advances ([`Players`]), the step itself,
//! the check of its losses, and the wall time of its phases ([`Split`]).

use std::time::Instant;

use anyhow::Result;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use serde::{Deserialize, Serialize};
use zoo_core::augment::DiffAugment;
use zoo_core::config::{OnNonFinite, RunConfig};
use zoo_core::game::Game;
use zoo_core::gan::Losses;
use zoo_core::streams::mix;

use crate::ema::{EMA_FILE, Ema};
use crate::params::{init_networks, load_module};
use crate::run::Checkpoint;

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>().to_f64()
}

/// The batch and fakes as D sees them under `train.diffaug` (a fresh draw per call), or `None`
/// when it is off.
fn augmented<M: Game>(
    model: &M,
    aug: &DiffAugment,
    batch: &M::Batch,
    fakes: &M::Fakes,
) -> Option<(M::Batch, M::Fakes)> {
    if aug.is_on() {
        model.augment(aug, batch, fakes)
    } else {
        None
    }
}

/// Both networks, their optimizers and the EMA generator: the state one training step
/// advances.
pub struct Players<M: Game> {
    /// The generator (on the autodiff device).
    pub g: M::G,
    /// The discriminator.
    pub d: M::D,
    /// The generator's Adam.
    pub opt_g: ModuleOptimizer,
    /// The discriminator's Adam.
    pub opt_d: ModuleOptimizer,
    /// The moving average of the generator, when `train.ema` is on.
    pub ema: Option<Ema<M::G>>,
}

impl<M: Game> Players<M> {
    /// Fresh networks from the run's seed, fresh optimizers.
    pub fn init(model: &M, cfg: &RunConfig<M::Config>, ad: &Device) -> Self {
        let (g, d) = init_networks(model, cfg.train.seed, ad);
        Self {
            ema: Ema::new(&cfg.train.ema, &g),
            g,
            d,
            opt_g: cfg.optim.g.init(),
            opt_d: cfg.optim.d.init(),
        }
    }

    /// Loads networks and optimizer states from a checkpoint (the model's own state is
    /// [`Game::load_state`]).
    pub fn load(self, ck: &Checkpoint) -> Result<Self> {
        let opt = |e: burn::store::RecordError| anyhow::anyhow!("cannot load optimizer state: {e}");
        Ok(Self {
            g: load_module(self.g, &ck.file("generator.bpk"))?,
            d: load_module(self.d, &ck.file("discriminator.bpk"))?,
            opt_g: self.opt_g.load(ck.file("optim_g.bpk")).map_err(opt)?,
            opt_d: self.opt_d.load(ck.file("optim_d.bpk")).map_err(opt)?,
            ema: match self.ema {
                Some(e) => Some(e.load(&ck.file(EMA_FILE))?),
                None => None,
            },
        })
    }

    /// The generator that grids and samples use: the EMA when on.
    pub fn sampler(&self) -> M::G {
        match &self.ema {
            Some(e) => e.g.clone(),
            None => self.g.valid(),
        }
    }

    /// One training step (0-based `step` of `total`): `d_steps` discriminator updates, each on
    /// a fresh real batch and fresh detached fakes, then one generator update through a fresh D
    /// forward on the last fakes. The device RNG is reseeded from `(seed, step)` first.
    ///
    /// Each loss is checked before its update: a NaN or infinite one ends the step with
    /// [`NonFinite`], and with `train.on_nonfinite = "skip"` the players come back as they were
    /// before the step.
    ///
    /// With `split`, each phase's wall time is added to it (the device is synchronised between
    /// phases, so asynchronous backends are timed honestly).
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        self,
        model: &mut M,
        cfg: &RunConfig<M::Config>,
        data: &mut M::Data,
        step: u64,
        total: u64,
        ad: &Device,
        mut split: Option<&mut Split>,
    ) -> (Self, Result<(Losses, Losses), NonFinite>) {
        let mut clock = Instant::now();
        let mut lap = |phase: fn(&mut Split) -> &mut f64, split: &mut Option<&mut Split>| {
            if let Some(s) = split.as_deref_mut() {
                let _ = ad.sync();
                *phase(s) += clock.elapsed().as_secs_f64();
                clock = Instant::now();
            }
        };
        let t = &cfg.train;
        let before = (t.on_nonfinite == OnNonFinite::Skip).then(|| self.clone());
        let give_up = |now: Self, e: NonFinite| (before.unwrap_or(now), Err(e));
        let Self {
            mut g,
            mut d,
            mut opt_g,
            mut opt_d,
            mut ema,
        } = self;
        ad.seed(mix(t.seed, step));
        let factor = lr_factor(model, cfg, data, step, total);
        let mut last = None;
        for k in 0..t.d_steps {
            let batch = model.batch(data, step * t.d_steps as u64 + k as u64, ad);
            lap(|s| &mut s.data, &mut split);
            let fakes = model.fakes(&g, &batch);
            let out = match augmented(model, &t.diffaug, &batch, &fakes) {
                Some((b, f)) => model.d_loss(&d, &b, &f),
                None => model.d_loss(&d, &batch, &fakes),
            };
            lap(|s| &mut s.d_forward, &mut split);
            if let Some(e) = non_finite(step + 1, "loss_d", &out) {
                return give_up(Self::of(g, d, opt_g, opt_d, ema), e);
            }
            let grads = GradientsParams::from_grads(out.total.backward(), &d);
            lap(|s| &mut s.d_backward, &mut split);
            d = opt_d.step(cfg.optim.d.lr * factor, d, grads);
            d = model.after_d_step(d);
            lap(|s| &mut s.d_optim, &mut split);
            last = Some((out, batch, fakes));
        }
        let (d_out, batch, fakes) = last.expect("train.d_steps >= 1 is validated");
        // D's parameters need no gradient in G's update: a frozen view (same tensors, same batch
        // norm running state) spares the backward its weight gradients.
        let d_view = d.clone().no_grad();
        let (batch, fakes) = augmented(model, &t.diffaug, &batch, &fakes).unwrap_or((batch, fakes));
        let g_out = model.g_loss(&g, &d_view, batch, fakes);
        drop(d_view);
        lap(|s| &mut s.g_forward, &mut split);
        if let Some(e) = non_finite(step + 1, "loss_g", &g_out) {
            return give_up(Self::of(g, d, opt_g, opt_d, ema), e);
        }
        let grads = GradientsParams::from_grads(g_out.total.backward(), &g);
        lap(|s| &mut s.g_backward, &mut split);
        g = opt_g.step(cfg.optim.g.lr * factor, g, grads);
        if let Some(e) = ema.as_mut() {
            e.update(&g, step);
        }
        lap(|s| &mut s.g_optim, &mut split);
        (Self::of(g, d, opt_g, opt_d, ema), Ok((d_out, g_out)))
    }

    fn of(
        g: M::G,
        d: M::D,
        opt_g: ModuleOptimizer,
        opt_d: ModuleOptimizer,
        ema: Option<Ema<M::G>>,
    ) -> Self {
        Self {
            g,
            d,
            opt_g,
            opt_d,
            ema,
        }
    }
}

impl<M: Game> Clone for Players<M> {
    fn clone(&self) -> Self {
        Self {
            g: self.g.clone(),
            d: self.d.clone(),
            opt_g: self.opt_g.clone(),
            opt_d: self.opt_d.clone(),
            ema: self.ema.clone(),
        }
    }
}

/// A loss that was NaN or infinite.
#[derive(Debug, Clone)]
pub struct NonFinite {
    /// The step (1-based, as logged) whose update it stopped.
    pub step: u64,
    /// The loss term (`loss_d`, `loss_g`, or one of their parts).
    pub term: String,
    /// Its value.
    pub value: f64,
}

/// The first non-finite term of a loss (its total, then its parts), if any.
fn non_finite(step: u64, name: &str, l: &Losses) -> Option<NonFinite> {
    let total = scalar(&l.total);
    if total.is_finite() {
        return None;
    }
    let term = l
        .parts
        .iter()
        .find(|(_, v)| !scalar(v).is_finite())
        .map_or_else(|| name.to_string(), |(n, _)| format!("{name} ({n})"));
    Some(NonFinite {
        step,
        term,
        value: total,
    })
}

/// The learning-rate schedule's factor at `step` (0-based) of `total`.
pub fn lr_factor<M: Game>(
    model: &M,
    cfg: &RunConfig<M::Config>,
    data: &M::Data,
    step: u64,
    total: u64,
) -> f64 {
    let per_epoch = steps_per_epoch(model, data, cfg.train.d_steps);
    cfg.train.lr_schedule.factor(step, total, per_epoch)
}

/// Generator steps per epoch.
pub fn steps_per_epoch<M: Game>(model: &M, data: &M::Data, d_steps: usize) -> u64 {
    (model.per_epoch(data) / d_steps as u64).max(1)
}

/// Wall time of each phase of a training step, in seconds (summed over steps until divided).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Split {
    /// Fetching the real batch (and, for image pools, nothing else).
    pub data: f64,
    /// D's forward: the fakes (a G forward) and D's loss.
    pub d_forward: f64,
    /// D's backward.
    pub d_backward: f64,
    /// D's optimizer step (and any post-step hook such as weight clipping).
    pub d_optim: f64,
    /// G's forward through D.
    pub g_forward: f64,
    /// G's backward.
    pub g_backward: f64,
    /// G's optimizer step.
    pub g_optim: f64,
}

impl Split {
    /// Every phase divided by `n`.
    pub fn per(self, n: f64) -> Self {
        Self {
            data: self.data / n,
            d_forward: self.d_forward / n,
            d_backward: self.d_backward / n,
            d_optim: self.d_optim / n,
            g_forward: self.g_forward / n,
            g_backward: self.g_backward / n,
            g_optim: self.g_optim / n,
        }
    }
    /// The phases with their names.
    pub fn phases(&self) -> [(&'static str, f64); 7] {
        [
            ("data", self.data),
            ("D fwd", self.d_forward),
            ("D bwd", self.d_backward),
            ("D opt", self.d_optim),
            ("G fwd", self.g_forward),
            ("G bwd", self.g_backward),
            ("G opt", self.g_optim),
        ]
    }
}

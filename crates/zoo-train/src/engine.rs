//! The generic training engine: alternating D/G updates for any [`Game`] (every
//! [`GanModel`](zoo_core::gan::GanModel) is one).
//!
//! Per step: `d_steps` discriminator updates (each on a fresh real batch and fresh fakes,
//! detached), then one generator update through a fresh D forward on the last fakes. One Adam
//! per player. The device RNG is reseeded from `(seed, step)` at the start of every step and
//! the data order is a pure function of `(seed, epoch)`, so a run resumed from a checkpoint
//! continues exactly as an uninterrupted one would.
//!
//! [`train`] is the loop; logging is [`crate::log::Logbook`], checkpoints
//! [`crate::checkpoint`], the EMA generator [`crate::ema`], and evaluation plugs in as an
//! [`Observer`].

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Result, bail};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use zoo_core::config::{OnNonFinite, RunConfig};
use zoo_core::game::Game;
use zoo_core::gan::Losses;
use zoo_core::streams::mix;

use crate::bench::Split;
use crate::checkpoint::{EMA_FILE, check_params, fill_checkpoint, init_networks, load_module};
use crate::ema::Ema;
use crate::log::Logbook;
use crate::output::save_grid;
use crate::run::{Checkpoint, CheckpointState, RunDir};

pub use crate::checkpoint::{load_generator, number_params};

/// How the engine reports progress and learns it should stop.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// Set (to the signal number) by a SIGINT/SIGTERM handler: training stops at the end of the
    /// current step, writes a checkpoint and returns [`Interrupted`].
    pub stop: Option<Arc<AtomicUsize>>,
}

/// Training was stopped by a signal after a checkpoint was written.
#[derive(Debug, Clone)]
pub struct Interrupted {
    /// The model's registry name.
    pub model: &'static str,
    /// The signal number (2 = SIGINT, 15 = SIGTERM).
    pub signal: usize,
    /// The step of the checkpoint just written.
    pub step: u64,
    /// The run folder.
    pub run: std::path::PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped by signal {} at step {}; checkpoint written. Continue with \
             `zoo train {} --resume {}`",
            self.signal,
            self.step,
            self.model,
            self.run.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Steps completed in total.
    pub step: u64,
    /// Steps the run was configured for.
    pub total_steps: u64,
    /// Mean training throughput of this session (real images consumed per second).
    pub images_per_s: f64,
    /// Wall time of this session.
    pub seconds: f64,
    /// The last logged values, by column.
    pub last: Vec<(String, f64)>,
}

/// Total generator steps a config asks for, given the batches per epoch.
pub fn total_steps<C>(cfg: &RunConfig<C>, per_epoch: u64) -> u64 {
    match cfg.train.epochs {
        Some(e) => (e * per_epoch / cfg.train.d_steps as u64).max(1),
        None => cfg.train.steps,
    }
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>().to_f64()
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
        let factor = t
            .lr_schedule
            .factor(step, total, steps_per_epoch(model, data, t.d_steps));
        let mut last = None;
        for k in 0..t.d_steps {
            let batch = model.batch(data, step * t.d_steps as u64 + k as u64, ad);
            lap(|s| &mut s.data, &mut split);
            let fakes = model.fakes(&g, &batch);
            let out = model.d_loss(&d, &batch, &fakes);
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

/// Generator steps per epoch.
pub fn steps_per_epoch<M: Game>(model: &M, data: &M::Data, d_steps: usize) -> u64 {
    (model.per_epoch(data) / d_steps as u64).max(1)
}

/// Where training stands, as an [`Observer`] sees it.
pub struct Moment<'a, M: Game> {
    /// The model.
    pub model: &'a M,
    /// The run's config.
    pub cfg: &'a RunConfig<M::Config>,
    /// The run folder.
    pub run: &'a RunDir,
    /// Steps done.
    pub step: u64,
    /// Steps in the run.
    pub total: u64,
    /// The players after `step` steps.
    pub players: &'a Players<M>,
}

impl<'a, M: Game> Moment<'a, M> {
    /// The moment after `step` of `total` steps.
    pub fn new(
        model: &'a M,
        cfg: &'a RunConfig<M::Config>,
        run: &'a RunDir,
        (step, total): (u64, u64),
        players: &'a Players<M>,
    ) -> Self {
        Self {
            model,
            cfg,
            run,
            step,
            total,
            players,
        }
    }

    /// The checkpoint state of this moment.
    pub fn state(&self) -> CheckpointState {
        CheckpointState {
            step: self.step,
            seed: self.cfg.train.seed,
            total_steps: self.total,
        }
    }
}

/// Something that watches training (zoo-eval's FD tracker): called once before the first
/// step and after every step; its columns go into metrics.csv.
pub trait Observer<M: Game> {
    /// Called at the start (`first`) and after each step.
    fn observe(&mut self, at: &Moment<'_, M>, first: bool) -> Result<()>;
    /// Columns to log with each metrics row (name, latest value).
    fn columns(&self) -> Vec<(&'static str, f64)>;
}

/// Trains `model` into `run`, from scratch or from `resume`; `observer` (if any) watches.
#[allow(clippy::too_many_arguments)]
pub fn train<M: Game>(
    model: &mut M,
    cfg: &RunConfig<M::Config>,
    mut data: M::Data,
    run: &RunDir,
    resume: Option<&Checkpoint>,
    device: &Device,
    opts: TrainOptions,
    mut observer: Option<Box<dyn Observer<M> + '_>>,
) -> Result<Summary> {
    let (t, ad) = (&cfg.train, device.clone().autodiff());
    let total = total_steps(cfg, model.per_epoch(&data));
    let _lock = run.lock()?;
    run.remove_partial_files();
    let (mut players, start) = start(model, cfg, (run, total), resume, &ad)?;
    if let Some(o) = observer.as_mut() {
        o.observe(
            &Moment::new(model, cfg, run, (start, total), &players),
            true,
        )?;
    }
    let probe = model.probe(&data, t.seed, t.grid_samples, device);
    let grid = |model: &M, p: &Players<M>, step: u64| -> Result<()> {
        let (imgs, per_row) = model.grid(&p.sampler(), &probe);
        save_grid(
            imgs,
            per_row,
            &run.samples_dir().join(format!("step_{step:06}.png")),
        )
    };
    if start == 0 {
        grid(model, &players, 0)?;
    }
    let mut book = Logbook::new(cfg, model.per_epoch(&data), start, total, opts.progress);
    let mut skipped_in_a_row = 0;
    for step in start..total {
        let (next, outcome) = players.step(model, cfg, &mut data, step, total, &ad, None);
        players = next;
        let done = step + 1;
        let losses = match outcome {
            Ok(l) => Some(l).inspect(|_| skipped_in_a_row = 0),
            Err(e) => {
                skipped_in_a_row += 1;
                book.skipped(run, t.on_nonfinite, &e, skipped_in_a_row)?;
                None
            }
        };
        book.bar.set_position(done);
        if let Some(o) = observer.as_mut() {
            let at = Moment::new(model, cfg, run, (done, total), &players);
            book.bar.suspend(|| o.observe(&at, false))?;
        }
        if let Some(l) = &losses
            && (done.is_multiple_of(t.log_every) || done == total)
        {
            check_params(run, &players, done)?;
            let factor =
                t.lr_schedule
                    .factor(step, total, steps_per_epoch(model, &data, t.d_steps));
            let extra = observer.as_ref().map(|o| o.columns()).unwrap_or_default();
            book.log(run, done, l, &extra, factor)?;
        }
        if done.is_multiple_of(t.sample_every) || done == total {
            grid(model, &players, done)?;
            book.sampled(run, done)?;
        }
        let signal = opts.stop.as_ref().map_or(0, |s| s.load(Ordering::SeqCst));
        if done.is_multiple_of(t.checkpoint_every) || done == total || signal != 0 {
            save_checkpoint(&Moment::new(model, cfg, run, (done, total), &players))?;
        }
        if signal != 0 {
            book.bar.finish_and_clear();
            let (model, run) = (M::NAME, run.path.clone());
            return Err(Interrupted {
                model,
                signal,
                step: done,
                run,
            }
            .into());
        }
    }
    Ok(book.finish())
}

/// The players a run starts from: fresh, or loaded from `resume` (whose seed must match).
fn start<M: Game>(
    model: &mut M,
    cfg: &RunConfig<M::Config>,
    (run, total): (&RunDir, u64),
    resume: Option<&Checkpoint>,
    ad: &Device,
) -> Result<(Players<M>, u64)> {
    let mut players = Players::<M>::init(model, cfg, ad);
    let mut start = 0;
    if let Some(ck) = resume {
        let st = ck.state()?;
        if st.seed != cfg.train.seed {
            bail!(
                "checkpoint {} was written with seed {} but the config says {}",
                ck.path.display(),
                st.seed,
                cfg.train.seed
            );
        }
        players = players.load(ck)?;
        model.load_state(&ck.path, ad)?;
        start = st.step;
        tracing::info!("resuming {} at step {start}", run.path.display());
    }
    tracing::info!(
        "generator parameters: {}; discriminator parameters: {}",
        zoo_core::gan::param_summary(&players.g),
        zoo_core::gan::param_summary(&players.d)
    );
    if start >= total {
        tracing::info!("the run already has {start} of {total} steps; nothing to do");
    }
    Ok((players, start))
}

/// Writes a checkpoint of `at` (after checking the parameters are finite).
pub fn save_checkpoint<M: Game>(at: &Moment<'_, M>) -> Result<Checkpoint> {
    check_params(at.run, at.players, at.step)?;
    at.run
        .save_checkpoint(at.state(), at.cfg.train.keep_checkpoints, |dir| {
            fill_checkpoint(at.model, at.players, dir)
        })
}

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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use anyhow::{Result, bail};
use burn::prelude::*;
use zoo_core::config::RunConfig;
use zoo_core::game::Game;

use crate::checkpoint::{check_params, fill_checkpoint};
use crate::log::Logbook;
pub use crate::log::Summary;
use crate::output::save_grid;
use crate::run::{Checkpoint, CheckpointState, RunDir};
pub use crate::step::{NonFinite, Players, Split, lr_factor, steps_per_epoch};

/// How the engine reports progress and learns it should stop.
#[derive(Debug, Clone, Default)]
pub struct TrainOptions {
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
    /// SIGINT/SIGTERM: during the training loop, at the end of the step with a checkpoint
    /// ([`Interrupted`]); before and after it, at once.
    pub stop: Option<StopSignal>,
    /// `--time-limit`: end the session after the first step that finishes this long after the
    /// loop began, as if it were the last (logged, sampled, checkpointed); the schedule still
    /// runs to the configured steps, so `--resume` continues the same run exactly.
    pub time_limit: Option<std::time::Duration>,
}

/// How SIGINT/SIGTERM stop a command. The handlers (the CLI's) set `signal` to the signal's
/// number, and exit the process at once while `immediate` is true: everywhere but inside the
/// training loop, which sets it false while it runs (there a stop waits for the step and writes
/// a checkpoint, and a second signal exits at once). Loading data, evaluating or sampling thus
/// end within moments of Ctrl-C, with nothing half-written (every file is written atomically).
#[derive(Debug, Clone)]
pub struct StopSignal {
    /// The signal number, 0 while none came.
    pub signal: Arc<AtomicUsize>,
    /// Whether a signal ends the process at once.
    pub immediate: Arc<AtomicBool>,
}

impl Default for StopSignal {
    fn default() -> Self {
        Self {
            signal: Arc::new(AtomicUsize::new(0)),
            immediate: Arc::new(AtomicBool::new(true)),
        }
    }
}

impl StopSignal {
    /// The signal that came, 0 if none.
    pub fn get(&self) -> usize {
        self.signal.load(Ordering::SeqCst)
    }
}

/// Marks the training loop: a signal waits for the step while this lives.
struct Graceful<'a>(Option<&'a StopSignal>);

impl<'a> Graceful<'a> {
    fn new(stop: Option<&'a StopSignal>) -> Self {
        if let Some(s) = stop {
            s.immediate.store(false, Ordering::SeqCst);
        }
        Self(stop)
    }
}

impl Drop for Graceful<'_> {
    fn drop(&mut self) {
        if let Some(s) = self.0 {
            s.immediate.store(true, Ordering::SeqCst);
        }
    }
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

impl Interrupted {
    /// `signal` stopped a run of `M` after `step` steps.
    fn at<M: Game>(run: &RunDir, signal: usize, step: u64) -> Self {
        Self {
            model: M::NAME,
            signal,
            step,
            run: run.path.clone(),
        }
    }
}

/// Total generator steps a config asks for, given the batches per epoch.
pub fn total_steps<C>(cfg: &RunConfig<C>, per_epoch: u64) -> u64 {
    match cfg.train.epochs {
        Some(e) => (e * per_epoch / cfg.train.d_steps as u64).max(1),
        None => cfg.train.steps,
    }
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

/// Builds the observer of a run (`None`: train unobserved), once the run is locked.
pub type ObserverFactory<'a, M> = &'a dyn Fn(
    &M,
    &RunConfig<<M as Game>::Config>,
    &RunDir,
    &Device,
) -> Result<Option<Box<dyn Observer<M>>>>;

/// No observer.
pub fn unobserved<M: Game>(
    _: &M,
    _: &RunConfig<M::Config>,
    _: &RunDir,
    _: &Device,
) -> Result<Option<Box<dyn Observer<M>>>> {
    Ok(None)
}

/// Trains `model` into `run`, from scratch or from `resume`; `observer` builds what watches.
#[allow(clippy::too_many_arguments)]
pub fn train<M: Game>(
    model: &mut M,
    cfg: &RunConfig<M::Config>,
    mut data: M::Data,
    run: &RunDir,
    resume: Option<&Checkpoint>,
    device: &Device,
    opts: TrainOptions,
    observer: ObserverFactory<'_, M>,
) -> Result<Summary> {
    let (t, ad) = (&cfg.train, device.clone().autodiff());
    let total = total_steps(cfg, model.per_epoch(&data));
    let _lock = run.lock()?;
    run.remove_partial_files();
    let (mut players, start) = start(model, cfg, (run, total), resume, &ad)?;
    let mut observer = observer(model, cfg, run, device)?;
    if let Some(o) = observer.as_mut() {
        o.observe(
            &Moment::new(model, cfg, run, (start, total), &players),
            true,
        )?;
    }
    let probe = model.probe(&data, t.seed, t.grid_samples, device);
    if start == 0 {
        write_grid(model, &players, &probe, run, 0)?;
    }
    let mut book = Logbook::new(cfg, model.per_epoch(&data), start, total, opts.progress);
    let mut skipped_in_a_row = 0;
    let _graceful = Graceful::new(opts.stop.as_ref());
    let clock = std::time::Instant::now();
    for step in start..total {
        let (next, outcome) = players.step(model, cfg, &mut data, step, total, &ad, None);
        players = next;
        let done = step + 1;
        let out_of_time = opts.time_limit.is_some_and(|l| clock.elapsed() >= l);
        let last = done == total || out_of_time;
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
            && (done.is_multiple_of(t.log_every) || last)
        {
            check_params(run, &players, done)?;
            let factor = lr_factor(model, cfg, &data, step, total);
            let extra = observer.as_ref().map(|o| o.columns()).unwrap_or_default();
            book.log(run, done, l, &extra, factor)?;
        }
        if done.is_multiple_of(t.sample_every) || last {
            write_grid(model, &players, &probe, run, done)?;
            book.sampled(run, done)?;
        }
        let signal = opts.stop.as_ref().map_or(0, StopSignal::get);
        if done.is_multiple_of(t.checkpoint_every) || last || signal != 0 {
            save_checkpoint(&Moment::new(model, cfg, run, (done, total), &players))?;
        }
        if signal != 0 {
            book.bar.finish_and_clear();
            return Err(Interrupted::at::<M>(run, signal, done).into());
        }
        if out_of_time && done < total {
            tracing::info!("time limit reached after step {done} of {total}");
            return Ok(book.finish(done, true));
        }
    }
    Ok(book.finish(total, false))
}

/// Writes the sample grid of step `step` from the generator that samples (the EMA when on).
fn write_grid<M: Game>(
    model: &M,
    p: &Players<M>,
    probe: &M::Probe,
    run: &RunDir,
    step: u64,
) -> Result<()> {
    let (imgs, per_row) = model.grid(&p.sampler(), probe);
    let path = run.samples_dir().join(format!("step_{step:06}.png"));
    save_grid(imgs, per_row, &path)
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

//! The generic training engine: alternating D/G updates for any [`Game`] (every
//! [`GanModel`](crate::gan::GanModel) is one).
//!
//! Per step: `d_steps` discriminator updates (each on a fresh real batch and fresh fakes,
//! detached), then one generator update through a fresh D forward on the last fakes. One Adam
//! per player. The device RNG is reseeded from `(seed, step)` at the start of every step and
//! the data order is a pure function of `(seed, epoch)`, so a run resumed from a checkpoint
//! continues exactly as an uninterrupted one would.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use crate::config::{MAX_SKIPPED_IN_A_ROW, OnNonFinite, RunConfig};
use crate::data::mix;
use crate::game::Game;
use crate::gan::Losses;
use crate::output::{MetricsLog, plot_metrics, save_grid};
use crate::run::{Checkpoint, CheckpointState, RunDir};

/// Stream id of weight initialisation.
const INIT_STREAM: u64 = 0x1417;

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

/// Initialises the networks from the run's seed.
pub fn init_networks<M: Game>(model: &M, seed: u64, device: &Device) -> (M::G, M::D) {
    device.seed(mix(seed, INIT_STREAM));
    let g = number_params(model.init_g(device), 1 << 32);
    let d = number_params(model.init_d(device), 2 << 32);
    (g, d)
}

/// Gives a module's parameters the ids `base`, `base + 1`, … in visiting order. burn draws
/// parameter ids at random and writes them into checkpoints (and keys optimizer state by
/// them), so without this two identical runs would write files that differ in those bytes.
pub fn number_params<T: Module>(module: T, base: u64) -> T {
    use burn::module::{Param, ParamId};
    struct Number(u64);
    impl Number {
        fn next(&mut self) -> ParamId {
            self.0 += 1;
            ParamId::from(self.0 - 1)
        }
    }
    impl burn::module::ModuleMapper for Number {
        fn map_float<const D: usize>(&mut self, mut p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            p.id = self.next();
            p
        }
        fn map_int<const D: usize>(
            &mut self,
            mut p: Param<Tensor<D, Int>>,
        ) -> Param<Tensor<D, Int>> {
            p.id = self.next();
            p
        }
        fn map_bool<const D: usize>(
            &mut self,
            mut p: Param<Tensor<D, Bool>>,
        ) -> Param<Tensor<D, Bool>> {
            p.id = self.next();
            p
        }
    }
    module.map(&mut Number(base))
}

/// Loads a generator from a checkpoint into a freshly built one.
pub fn load_generator<M: Game>(model: &M, ck: &Checkpoint, device: &Device) -> Result<M::G> {
    let path = ck.file("generator.bpk");
    model.init_g(device).try_load_file(&path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load {}: {e}; the checkpoint is damaged: delete its folder and zoo \
                 uses the one before",
            path.display()
        )
    })
}

fn load_module<T: Module>(m: T, path: &std::path::Path) -> Result<T> {
    m.try_load_file(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load {}: {e}; the checkpoint is damaged: delete its folder and zoo \
             uses the one before",
            path.display()
        )
    })
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>().to_f64()
}

/// Both networks and their optimizers: the state one training step advances.
pub struct Players<M: Game> {
    /// The generator (on the autodiff device).
    pub g: M::G,
    /// The discriminator.
    pub d: M::D,
    /// The generator's Adam.
    pub opt_g: ModuleOptimizer,
    /// The discriminator's Adam.
    pub opt_d: ModuleOptimizer,
}

impl<M: Game> Players<M> {
    /// Fresh networks from the run's seed, fresh optimizers.
    pub fn init(model: &M, cfg: &RunConfig<M::Config>, ad: &Device) -> Self {
        let (g, d) = init_networks(model, cfg.train.seed, ad);
        Self {
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
        })
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
                return give_up(Self { g, d, opt_g, opt_d }, e);
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
            return give_up(Self { g, d, opt_g, opt_d }, e);
        }
        let grads = GradientsParams::from_grads(g_out.total.backward(), &g);
        lap(|s| &mut s.g_backward, &mut split);
        g = opt_g.step(cfg.optim.g.lr * factor, g, grads);
        lap(|s| &mut s.g_optim, &mut split);
        (Self { g, d, opt_g, opt_d }, Ok((d_out, g_out)))
    }
}

impl<M: Game> Clone for Players<M> {
    fn clone(&self) -> Self {
        Self {
            g: self.g.clone(),
            d: self.d.clone(),
            opt_g: self.opt_g.clone(),
            opt_d: self.opt_d.clone(),
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

/// Whether every float parameter of a module is finite.
pub fn params_finite<T: Module>(module: &T) -> bool {
    struct Check(bool);
    impl burn::module::ModuleVisitor for Check {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            if self.0 {
                let sum = param.val().detach().sum().into_scalar::<f32>().to_f64();
                self.0 = sum.is_finite();
            }
        }
    }
    let mut c = Check(true);
    module.visit(&mut c);
    c.0
}

/// Generator steps per epoch.
fn steps_per_epoch<M: Game>(model: &M, data: &M::Data, d_steps: usize) -> u64 {
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

/// Throughput of a model's training step: `windows` timed windows after the warm-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// Real images one step consumes (batch size × d_steps).
    pub images_per_step: usize,
    /// Seconds per step of each window, untimed phases (run with no device syncs in between).
    pub window_seconds_per_step: Vec<f64>,
    /// The median of the windows.
    pub seconds_per_step: f64,
    /// Images per second at the median.
    pub images_per_s: f64,
    /// The time split per step, from separate steps run with a sync after every phase.
    pub split: Split,
    /// Peak resident memory of the process, in MiB (Linux; `None` elsewhere).
    pub peak_rss_mib: Option<f64>,
}

impl BenchReport {
    /// The fastest and slowest window, seconds per step.
    pub fn range(&self) -> (f64, f64) {
        let w = &self.window_seconds_per_step;
        (
            w.iter().copied().fold(f64::INFINITY, f64::min),
            w.iter().copied().fold(0.0, f64::max),
        )
    }
}

/// Times training steps on `data` (no files are written): `warmup` untimed steps, then
/// `windows` windows of `steps / windows` steps each (the median window is the figure), then
/// `split_steps` steps with a device sync after each phase for the time split.
pub fn bench<M: Game>(
    model: &mut M,
    cfg: &RunConfig<M::Config>,
    mut data: M::Data,
    device: &Device,
    warmup: u64,
    steps: u64,
    windows: u64,
) -> Result<BenchReport> {
    let ad = device.clone().autodiff();
    let windows = windows.clamp(1, steps.max(1));
    let per_window = (steps / windows).max(1);
    let split_steps = per_window.min(10);
    let total = warmup + per_window * windows + split_steps;
    let mut players = Players::<M>::init(model, cfg, &ad);
    let mut window_seconds = Vec::new();
    let mut split = Split::default();
    let mut start = Instant::now();
    for step in 0..total {
        let timed = step - warmup.min(step);
        if step >= warmup && timed.is_multiple_of(per_window) && timed <= per_window * windows {
            device.sync().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            if timed > 0 {
                window_seconds.push(start.elapsed().as_secs_f64() / per_window as f64);
            }
            start = Instant::now();
        }
        let timing = step >= warmup + per_window * windows;
        let (next, losses) = players.step(
            model,
            cfg,
            &mut data,
            step,
            total,
            &ad,
            timing.then_some(&mut split),
        );
        players = next;
        if let Err(e) = losses {
            bail!(
                "the benchmark diverged at step {}: {} is {}",
                e.step,
                e.term,
                e.value
            );
        }
    }
    let mut sorted = window_seconds.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
    let images_per_step = cfg.train.batch_size * cfg.train.d_steps;
    Ok(BenchReport {
        images_per_step,
        window_seconds_per_step: window_seconds,
        seconds_per_step: median,
        images_per_s: images_per_step as f64 / median,
        split: split.per(split_steps as f64),
        peak_rss_mib: peak_rss_mib(),
    })
}

/// Resets the kernel's peak-RSS counter of this process (Linux), so that the next
/// [`peak_rss_mib`] is the peak from now on.
pub fn reset_peak_rss() {
    if let Err(e) = std::fs::write("/proc/self/clear_refs", "5") {
        tracing::debug!("cannot reset the peak memory counter: {e}");
    }
}

/// Peak resident set size (VmHWM) of this process, in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Trains `model` into `run`, from scratch or from `resume`.
#[allow(clippy::too_many_arguments)]
pub fn train<M: Game>(
    model: &mut M,
    cfg: &RunConfig<M::Config>,
    mut data: M::Data,
    run: &RunDir,
    resume: Option<&Checkpoint>,
    device: &Device,
    opts: TrainOptions,
) -> Result<Summary> {
    let t = &cfg.train;
    let ad = device.clone().autodiff();
    let per_epoch = model.per_epoch(&data);
    let total = total_steps(cfg, per_epoch);

    let _lock = run.lock()?;
    run.remove_partial_files();
    let mut players = Players::<M>::init(model, cfg, &ad);
    let mut start = 0;
    if let Some(ck) = resume {
        let st = ck.state()?;
        if st.seed != t.seed {
            bail!(
                "checkpoint {} was written with seed {} but the config says {}",
                ck.path.display(),
                st.seed,
                t.seed
            );
        }
        players = players.load(ck)?;
        model.load_state(&ck.path, &ad)?;
        start = st.step;
        tracing::info!("resuming {} at step {start}", run.path.display());
    }
    tracing::info!(
        "generator parameters: {}; discriminator parameters: {}",
        crate::entry::param_summary(&players.g),
        crate::entry::param_summary(&players.d)
    );
    if start >= total {
        tracing::info!("the run already has {start} of {total} steps; nothing to do");
    }

    let mut watch = if t.eval_every > 0 {
        Some(Watch::new(model, cfg, run, device)?)
    } else {
        None
    };
    if let Some(w) = watch.as_mut() {
        w.evaluate(model, cfg, run, start, total, &players, false)?;
    }
    let probe = model.probe(&data, t.seed, t.grid_samples, device);
    let write_samples = |model: &M, g: &M::G, step: u64| -> Result<()> {
        let (imgs, per_row) = model.grid(&g.valid(), &probe);
        save_grid(
            imgs,
            per_row,
            &run.samples_dir().join(format!("step_{step:06}.png")),
        )
    };
    if start == 0 {
        write_samples(model, &players.g, 0)?;
    }

    let bar = if opts.progress {
        ProgressBar::new(total)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}<{eta_precise}] {bar:30} {pos}/{len} {msg}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_position(start);

    let mut log: Option<MetricsLog> = None;
    let session_start = Instant::now();
    let mut mark = (Instant::now(), start);
    let mut last: Vec<(String, f64)> = Vec::new();
    let mut warned_d_wins = false;

    let mut skipped_in_a_row = 0;
    for step in start..total {
        let (next, outcome) = players.step(model, cfg, &mut data, step, total, &ad, None);
        players = next;
        let factor = t
            .lr_schedule
            .factor(step, total, steps_per_epoch(model, &data, t.d_steps));
        let done = step + 1;
        let losses = match outcome {
            Ok(l) => {
                skipped_in_a_row = 0;
                Some(l)
            }
            Err(e) => {
                let kept = run
                    .latest_checkpoint()?
                    .map_or_else(|| "none yet".into(), |c| c.path.display().to_string());
                if t.on_nonfinite == OnNonFinite::Stop {
                    bar.finish_and_clear();
                    bail!(
                        "training diverged at step {}: {} is {}. The last good checkpoint is \
                         {kept}. Lower the learning rate (optim.g.lr / optim.d.lr), try another \
                         loss (model.loss), or set train.on_nonfinite = \"skip\" to skip such \
                         steps",
                        e.step,
                        e.term,
                        e.value
                    );
                }
                skipped_in_a_row += 1;
                bar.suspend(|| {
                    tracing::warn!(
                        "step {}: {} is {}; update skipped ({skipped_in_a_row} in a row)",
                        e.step,
                        e.term,
                        e.value
                    )
                });
                if skipped_in_a_row >= MAX_SKIPPED_IN_A_ROW {
                    bar.finish_and_clear();
                    bail!(
                        "training diverged: {MAX_SKIPPED_IN_A_ROW} steps in a row had a \
                         non-finite loss (the last at step {}: {} is {}). The last good \
                         checkpoint is {kept}. Lower the learning rate (optim.g.lr / optim.d.lr) \
                         or try another loss (model.loss)",
                        e.step,
                        e.term,
                        e.value
                    );
                }
                None
            }
        };
        bar.set_position(done);
        if let Some(w) = watch.as_mut()
            && (done.is_multiple_of(t.eval_every) || done == total)
        {
            bar.suspend(|| w.evaluate(model, cfg, run, done, total, &players, true))?;
        }

        if let Some((d_out, g_out)) = &losses
            && (done.is_multiple_of(t.log_every) || done == total)
        {
            check_params(run, &players, done)?;
            let elapsed = mark.0.elapsed().as_secs_f64().max(1e-9);
            let ips = ((done - mark.1) * (t.batch_size * t.d_steps) as u64) as f64 / elapsed;
            mark = (Instant::now(), done);
            let mut cols: Vec<(String, f64)> = vec![
                ("step".into(), done as f64),
                (
                    "epoch".into(),
                    ((done * t.d_steps as u64) / per_epoch) as f64,
                ),
                ("loss_d".into(), scalar(&d_out.total)),
                ("loss_g".into(), scalar(&g_out.total)),
            ];
            for (name, v) in d_out.parts.iter().chain(g_out.parts.iter()) {
                cols.push(((*name).to_string(), scalar(v)));
            }
            if let Some(w) = &watch {
                cols.push(("fd".into(), w.last.0));
                cols.push(("classes_hit".into(), w.last.1));
            }
            cols.push(("images_per_s".into(), ips));
            cols.push(("lr_g".into(), cfg.optim.g.lr * factor));
            cols.push(("lr_d".into(), cfg.optim.d.lr * factor));
            if let Some((name, v)) = cols.iter().find(|(_, v)| !v.is_finite()) {
                let kept = run
                    .latest_checkpoint()?
                    .map(|c| c.path.display().to_string())
                    .unwrap_or_else(|| "none yet".into());
                bail!(
                    "training diverged at step {done}: {name} is {v}. Last good checkpoint: {kept}. \
                     Try a lower learning rate (optim.g.lr / optim.d.lr) or another loss"
                );
            }
            if log.is_none() {
                let names = cols.iter().map(|(n, _)| n.clone()).collect();
                log = Some(MetricsLog::open(&run.metrics_path(), names, Some(start))?);
            }
            let log = log.as_mut().expect("opened");
            log.append(cols.iter().map(|(_, v)| *v).collect())?;
            let get = |k: &str| cols.iter().find(|(n, _)| n == k).map_or(f64::NAN, |c| c.1);
            let d_wins = get("d_real") > 0.99 && get("d_fake") < 0.01;
            // Once per session: a discriminator that separates perfectly now and then is
            // common; the warning is a hint, not a stream.
            if d_wins && !warned_d_wins {
                bar.suspend(|| {
                    tracing::warn!(
                        "step {done}: the discriminator wins outright (D(x) {:.3}, D(G(z)) {:.3}); \
                         if the samples stop improving, try a lower optim.d.lr or another loss \
                         (warned once)",
                        get("d_real"),
                        get("d_fake")
                    )
                });
                warned_d_wins = true;
            }
            bar.set_message(format!(
                "D {:.3} G {:.3} D(x) {:.3} D(G(z)) {:.3} {:.0} img/s",
                get("loss_d"),
                get("loss_g"),
                get("d_real"),
                get("d_fake"),
                ips
            ));
            last = cols;
        }
        if done.is_multiple_of(t.sample_every) || done == total {
            write_samples(model, &players.g, done)?;
            if let Some(log) = &log {
                plot_metrics(log.columns(), &log.rows, &run.path.join("losses.png"))?;
            }
            let line = last
                .iter()
                .filter(|(n, _)| n != "step" && n != "lr_g" && n != "lr_d")
                .map(|(n, v)| format!("{n} {v:.4}"))
                .collect::<Vec<_>>()
                .join(" ");
            bar.suspend(|| tracing::info!("step {done}/{total}: {line}"));
        }
        let signal = opts.stop.as_ref().map_or(0, |s| s.load(Ordering::SeqCst));
        if done.is_multiple_of(t.checkpoint_every) || done == total || signal != 0 {
            save_checkpoint(model, run, cfg, done, total, &players)?;
        }
        if signal != 0 {
            bar.finish_and_clear();
            return Err(Interrupted {
                model: M::NAME,
                signal,
                step: done,
                run: run.path.clone(),
            }
            .into());
        }
    }
    bar.finish_and_clear();
    let seconds = session_start.elapsed().as_secs_f64();
    let done_steps = total.saturating_sub(start);
    Ok(Summary {
        step: total.max(start),
        total_steps: total,
        images_per_s: (done_steps * (t.batch_size * t.d_steps) as u64) as f64 / seconds.max(1e-9),
        seconds,
        last,
    })
}

fn save_checkpoint<M: Game>(
    model: &M,
    run: &RunDir,
    cfg: &RunConfig<M::Config>,
    step: u64,
    total: u64,
    p: &Players<M>,
) -> Result<Checkpoint> {
    check_params(run, p, step)?;
    let state = CheckpointState {
        step,
        seed: cfg.train.seed,
        total_steps: total,
    };
    run.save_checkpoint(state, cfg.train.keep_checkpoints, |dir| {
        fill_checkpoint(model, p, dir)
    })
}

/// Stops the run if a network's parameters stopped being finite (a loss can stay finite while
/// they blow up, e.g. behind a saturated tanh).
fn check_params<M: Game>(run: &RunDir, p: &Players<M>, step: u64) -> Result<()> {
    let bad = if !params_finite(&p.g) {
        "generator"
    } else if !params_finite(&p.d) {
        "discriminator"
    } else {
        return Ok(());
    };
    let kept = run
        .latest_checkpoint()?
        .map_or_else(|| "none yet".into(), |c| c.path.display().to_string());
    bail!(
        "training diverged by step {step}: the {bad}'s parameters are not finite (the losses \
         were). The last good checkpoint is {kept}. Lower the learning rate (optim.g.lr / \
         optim.d.lr) or try another loss (model.loss)"
    )
}

/// Writes both networks, both optimizer states and the model's own state into `dir`.
fn fill_checkpoint<M: Game>(model: &M, p: &Players<M>, dir: &std::path::Path) -> Result<()> {
    let rec = |e: burn::store::RecordError| anyhow::anyhow!("{e}");
    let (g, d) = (dir.join("generator.bpk"), dir.join("discriminator.bpk"));
    let (og, od) = (dir.join("optim_g.bpk"), dir.join("optim_d.bpk"));
    // `valid()` first: it folds batch norm's pending running-statistics update into the
    // shared state (a plain save would store them one update behind, and a resumed run would
    // drift from an uninterrupted one).
    p.g.valid()
        .save_file(&g)
        .map_err(rec)
        .context("saving the generator")?;
    p.d.valid()
        .save_file(&d)
        .map_err(rec)
        .context("saving the discriminator")?;
    p.opt_g
        .save(&og)
        .map_err(rec)
        .context("saving the generator's optimizer")?;
    p.opt_d
        .save(&od)
        .map_err(rec)
        .context("saving the discriminator's optimizer")?;
    for f in [&g, &d, &og, &od] {
        canonical_burnpack(f)?;
    }
    model.save_state(dir).context("saving the model's state")?;
    Ok(())
}

/// First id given to a stored tensor that has no number of ours (see [`number_params`]).
const UNNUMBERED: u64 = 3 << 32;

/// Rewrites a burnpack file so that equal states give equal bytes: burn writes an optimizer's
/// tensors in hash-map order, and the ids of batch-norm running statistics are drawn at
/// random (they do not go through [`number_params`]). The tensors are sorted by name and every
/// id outside our numbering becomes `UNNUMBERED + index`. Loading matches tensors by name and
/// optimizer state by the numbered parameter ids, so neither change matters to a resume.
fn canonical_burnpack(path: &std::path::Path) -> Result<()> {
    let pack = |e: burn_pack::Error| anyhow::anyhow!("{}: {e}", path.display());
    let reader = burn_pack::Reader::from_file(path).map_err(pack)?;
    let metadata = reader.metadata().clone();
    let scalars = reader.scalars().clone();
    let mut tensors = reader.into_tensors().map_err(pack)?;
    tensors.sort_by(|a, b| a.name.cmp(&b.name));
    for (i, t) in tensors.iter_mut().enumerate() {
        if let Some(id) = t.param_id
            && !(1 << 32..UNNUMBERED).contains(&id)
        {
            t.param_id = Some(UNNUMBERED + i as u64);
        }
    }
    let mut writer = burn_pack::Writer::new(tensors)
        .auto_extension(false)
        .overwrite(true);
    for (k, v) in &metadata {
        writer = writer.with_metadata(k, v);
    }
    for (k, v) in &scalars {
        writer = writer.with_scalar(k, *v);
    }
    writer.write_to_file(path).map_err(pack)
}

/// What the engine watches when `train.eval_every` is set: FD and class coverage of a fixed
/// batch of samples against the real training images, the best FD so far (kept as
/// `checkpoints/best`), and coverage collapse.
struct Watch {
    reference: crate::eval::Reference,
    /// (FD, classes hit) of the latest evaluation.
    last: (f64, f64),
    best: Option<f64>,
    most_classes: f64,
}

/// Stream id of the samples scored during training.
const WATCH_STREAM: u64 = 0x3A7C4;

impl Watch {
    fn new<M: Game>(
        model: &M,
        cfg: &RunConfig<M::Config>,
        run: &RunDir,
        device: &Device,
    ) -> Result<Self> {
        model
            .sample_noise(1, device)
            .context("train.eval_every needs a model that samples from noise; set it to 0")?;
        let reference =
            crate::eval::Reference::new(&cfg.data, cfg.train.eval_samples, cfg.train.seed, device)
                .context("train.eval_every (set it to 0 to train without evaluations)")?;
        let best = match run.best_checkpoint()? {
            Some(ck) => {
                let p = ck.file("metric.toml");
                let text = std::fs::read_to_string(&p)
                    .with_context(|| format!("cannot read {}", p.display()))?;
                let t: toml::Table = text
                    .parse()
                    .with_context(|| format!("{} is damaged", p.display()))?;
                t.get("fd").and_then(toml::Value::as_float)
            }
            None => None,
        };
        Ok(Self {
            reference,
            last: (f64::NAN, f64::NAN),
            best,
            most_classes: 0.0,
        })
    }

    /// Scores the generator at `step`; keeps a new best checkpoint when `keep` and FD improved.
    #[allow(clippy::too_many_arguments)]
    fn evaluate<M: Game>(
        &mut self,
        model: &M,
        cfg: &RunConfig<M::Config>,
        run: &RunDir,
        step: u64,
        total: u64,
        p: &Players<M>,
        keep: bool,
    ) -> Result<()> {
        let device = self.reference.device();
        let g = p.g.valid();
        let images = crate::entry::generate(
            model,
            &g,
            cfg.train.eval_samples,
            mix(cfg.train.seed, WATCH_STREAM),
            &device,
        )?;
        let m = self.reference.score(&images);
        let classes = m.coverage.classes_hit as f64;
        self.last = (m.fd, classes);
        tracing::info!(
            "step {step}: FD {:.2} (floor {:.2}), {} of {} classes",
            m.fd,
            self.reference.floor().fd,
            m.coverage.classes_hit,
            m.coverage.classes
        );
        if classes + 2.0 <= self.most_classes {
            tracing::warn!(
                "step {step}: class coverage collapsed from {} to {} classes (mode collapse); \
                 the best checkpoint so far is kept in checkpoints/best",
                self.most_classes,
                classes
            );
        }
        self.most_classes = self.most_classes.max(classes);
        if keep && m.fd.is_finite() && self.best.is_none_or(|b| m.fd < b) {
            self.best = Some(m.fd);
            let state = CheckpointState {
                step,
                seed: cfg.train.seed,
                total_steps: total,
            };
            run.save_best(state, |dir| {
                fill_checkpoint(model, p, dir)?;
                crate::io::write_atomic(
                    &dir.join("metric.toml"),
                    format!(
                        "fd = {:?}\nclasses_hit = {}\n",
                        m.fd, m.coverage.classes_hit
                    )
                    .as_bytes(),
                )
            })?;
        }
        Ok(())
    }
}

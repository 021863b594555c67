//! The generic training engine: alternating D/G updates for any [`GanModel`].
//!
//! Per step: `d_steps` discriminator updates (each on a fresh real batch and fresh fakes,
//! detached), then one generator update through a fresh D forward on the last fakes. One Adam
//! per player. The device RNG is reseeded from `(seed, step)` at the start of every step and
//! the data order is a pure function of `(seed, epoch)`, so a run resumed from a checkpoint
//! continues exactly as an uninterrupted one would.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use burn::optim::GradientsParams;
use burn::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};

use crate::config::RunConfig;
use crate::data::{Batches, ImageSet, mix};
use crate::gan::{GanModel, Losses};
use crate::output::{MetricsLog, plot_metrics, save_grid};
use crate::run::{Checkpoint, CheckpointState, RunDir};

/// Stream id of the fixed noise behind the sample grids.
const FIXED_NOISE_STREAM: u64 = 0xF1CED;
/// Stream id of weight initialisation.
const INIT_STREAM: u64 = 0x1417;

/// How the engine reports progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrainOptions {
    /// Draw a progress bar on stderr (when it is a terminal).
    pub progress: bool,
}

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
pub fn init_networks<M: GanModel>(model: &M, seed: u64, device: &Device) -> (M::G, M::D) {
    device.seed(mix(seed, INIT_STREAM));
    (model.init_g(device), model.init_d(device))
}

/// The fixed latent batch behind every sample grid of a run.
pub fn fixed_noise<M: GanModel>(model: &M, seed: u64, n: usize, device: &Device) -> Tensor<2> {
    device.seed(mix(seed, FIXED_NOISE_STREAM));
    model.noise(n, device)
}

/// Loads a generator from a checkpoint into a freshly built one.
pub fn load_generator<M: GanModel>(model: &M, ck: &Checkpoint, device: &Device) -> Result<M::G> {
    let path = ck.file("generator.bpk");
    model
        .init_g(device)
        .try_load_file(&path)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))
}

fn load_module<T: Module>(m: T, path: &std::path::Path) -> Result<T> {
    m.try_load_file(path)
        .map_err(|e| anyhow::anyhow!("cannot load {}: {e}", path.display()))
}

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>().to_f64()
}

fn grid_rows(n: usize) -> usize {
    ((n as f64).sqrt().ceil() as usize).max(1)
}

/// Trains `model` into `run`, from scratch or from `resume`.
#[allow(clippy::too_many_arguments)]
pub fn train<M: GanModel>(
    model: &mut M,
    cfg: &RunConfig<M::Config>,
    data: Arc<ImageSet>,
    run: &RunDir,
    resume: Option<&Checkpoint>,
    device: &Device,
    opts: TrainOptions,
) -> Result<Summary> {
    let t = &cfg.train;
    let ad = device.clone().autodiff();
    let mut batches = Batches::new(data, t.batch_size, t.seed)?;
    let total = total_steps(cfg, batches.per_epoch());

    let (mut g, mut d) = init_networks(model, t.seed, &ad);
    let mut opt_g = cfg.optim.g.init();
    let mut opt_d = cfg.optim.d.init();
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
        g = load_module(g, &ck.file("generator.bpk"))?;
        d = load_module(d, &ck.file("discriminator.bpk"))?;
        opt_g = opt_g
            .load(ck.file("optim_g.bpk"))
            .map_err(|e| anyhow::anyhow!("cannot load optimizer state: {e}"))?;
        opt_d = opt_d
            .load(ck.file("optim_d.bpk"))
            .map_err(|e| anyhow::anyhow!("cannot load optimizer state: {e}"))?;
        start = st.step;
        tracing::info!("resuming {} at step {start}", run.path.display());
    }
    tracing::info!(
        "generator: {} parameters; discriminator: {} parameters",
        crate::entry::param_summary(&g),
        crate::entry::param_summary(&d)
    );
    if start >= total {
        tracing::info!("the run already has {start} of {total} steps; nothing to do");
    }

    let fixed = fixed_noise(model, t.seed, t.grid_samples, device);
    let nrow = grid_rows(t.grid_samples);
    let write_samples = |model: &M, g: &M::G, step: u64| -> Result<()> {
        let imgs = model.generate(&g.valid(), fixed.clone());
        save_grid(
            imgs,
            nrow,
            &run.samples_dir().join(format!("step_{step:06}.png")),
        )
    };
    if start == 0 {
        write_samples(model, &g, 0)?;
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
    let per_epoch = batches.per_epoch();

    for step in start..total {
        ad.seed(mix(t.seed, step));
        let factor = t.lr_schedule.factor(step, total);
        let mut d_out: Option<Losses> = None;
        let mut fake_for_g = None;
        for k in 0..t.d_steps {
            let real = batches.batch(step * t.d_steps as u64 + k as u64, &ad);
            let n = real.dims()[0];
            let fake = model.generate(&g, model.noise(n, &ad));
            let out = model.d_loss(&d, real, fake.clone().detach());
            let grads = GradientsParams::from_grads(out.total.backward(), &d);
            d = opt_d.step(cfg.optim.d.lr * factor, d, grads);
            d = model.after_d_step(d);
            d_out = Some(out);
            fake_for_g = Some(fake);
        }
        let fake = fake_for_g.expect("d_steps >= 1");
        let g_out = model.g_loss(&d, fake);
        let grads = GradientsParams::from_grads(g_out.total.backward(), &g);
        g = opt_g.step(cfg.optim.g.lr * factor, g, grads);
        let done = step + 1;
        bar.set_position(done);

        if done.is_multiple_of(t.log_every) || done == total {
            let d_out = d_out.expect("d_steps >= 1");
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
            write_samples(model, &g, done)?;
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
        if done.is_multiple_of(t.checkpoint_every) || done == total {
            save_checkpoint(run, cfg, done, total, &g, &d, &opt_g, &opt_d)?;
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

#[allow(clippy::too_many_arguments)]
fn save_checkpoint<C, G: Module, D: Module>(
    run: &RunDir,
    cfg: &RunConfig<C>,
    step: u64,
    total: u64,
    g: &G,
    d: &D,
    opt_g: &burn::optim::ModuleOptimizer,
    opt_d: &burn::optim::ModuleOptimizer,
) -> Result<Checkpoint> {
    let state = CheckpointState {
        step,
        seed: cfg.train.seed,
        total_steps: total,
    };
    let rec = |e: burn::store::RecordError| anyhow::anyhow!("{e}");
    run.save_checkpoint(state, cfg.train.keep_checkpoints, |dir| {
        g.clone()
            .save_file(dir.join("generator.bpk"))
            .map_err(rec)
            .context("saving the generator")?;
        d.clone()
            .save_file(dir.join("discriminator.bpk"))
            .map_err(rec)
            .context("saving the discriminator")?;
        opt_g
            .save(dir.join("optim_g.bpk"))
            .map_err(rec)
            .context("saving the generator's optimizer")?;
        opt_d
            .save(dir.join("optim_d.bpk"))
            .map_err(rec)
            .context("saving the discriminator's optimizer")?;
        Ok(())
    })
}

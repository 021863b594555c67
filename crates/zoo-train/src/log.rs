//! What a training session tells the user: the progress bar, metrics.csv, losses.png, the
//! periodic log line, and the messages of a diverged run.

use std::time::Instant;

use anyhow::{Result, bail};
use burn::prelude::*;
use indicatif::ProgressBar;
use zoo_core::config::{MAX_SKIPPED_IN_A_ROW, OnNonFinite, RunConfig};
use zoo_core::gan::Losses;

use crate::checkpoint::last_good;
use crate::output::{MetricsLog, plot_metrics, read_metrics};
use crate::run::RunDir;
use crate::step::NonFinite;

fn scalar(t: &Tensor<1>) -> f64 {
    t.clone().into_scalar::<f32>().to_f64()
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
    /// The session ended at `--time-limit` before `total_steps` (resume to go on).
    pub time_limited: bool,
    /// The last logged values, by column.
    pub last: Vec<(String, f64)>,
}

/// The session's log: see the module docs.
pub struct Logbook {
    /// The progress bar (hidden unless asked for).
    pub bar: ProgressBar,
    log: Option<MetricsLog>,
    session_start: Instant,
    mark: (Instant, u64),
    last: Vec<(String, f64)>,
    warned_d_wins: bool,
    start: u64,
    total: u64,
    per_epoch: u64,
    images_per_step: u64,
    d_steps: u64,
    lr: (f64, f64),
}

impl Logbook {
    /// A log for a session from step `start` of `total`.
    pub fn new<C>(
        cfg: &RunConfig<C>,
        per_epoch: u64,
        start: u64,
        total: u64,
        progress: bool,
    ) -> Self {
        let bar = crate::progress::bar_if(progress, total, "train");
        bar.set_position(start);
        let t = &cfg.train;
        Self {
            bar,
            log: None,
            session_start: Instant::now(),
            mark: (Instant::now(), start),
            last: Vec::new(),
            warned_d_wins: false,
            start,
            total,
            per_epoch,
            images_per_step: (t.batch_size * t.d_steps) as u64,
            d_steps: t.d_steps as u64,
            lr: (cfg.optim.g.lr, cfg.optim.d.lr),
        }
    }

    /// A step whose loss was not finite: stops the run (`on_nonfinite = "stop"`, or after
    /// too many in a row) or warns that the update was skipped.
    pub fn skipped(
        &mut self,
        run: &RunDir,
        on_nonfinite: OnNonFinite,
        e: &NonFinite,
        in_a_row: u64,
    ) -> Result<()> {
        // Looked up only when the run stops: finding it verifies the checkpoint's files.
        if on_nonfinite == OnNonFinite::Stop {
            let kept = last_good(run)?;
            self.bar.finish_and_clear();
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
        self.bar.suspend(|| {
            tracing::warn!(
                "step {}: {} is {}; update skipped ({in_a_row} in a row)",
                e.step,
                e.term,
                e.value
            )
        });
        if in_a_row >= MAX_SKIPPED_IN_A_ROW {
            let kept = last_good(run)?;
            self.bar.finish_and_clear();
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
        Ok(())
    }

    /// Appends the row of step `done` to metrics.csv (with the observer's `extra` columns and
    /// the schedule's `factor`) and updates the bar.
    pub fn log(
        &mut self,
        run: &RunDir,
        done: u64,
        (d_out, g_out): &(Losses, Losses),
        extra: &[(&'static str, f64)],
        factor: f64,
    ) -> Result<()> {
        let elapsed = self.mark.0.elapsed().as_secs_f64().max(1e-9);
        let ips = ((done - self.mark.1) * self.images_per_step) as f64 / elapsed;
        self.mark = (Instant::now(), done);
        let mut cols: Vec<(String, f64)> = vec![
            ("step".into(), done as f64),
            (
                "epoch".into(),
                ((done * self.d_steps) / self.per_epoch) as f64,
            ),
            ("loss_d".into(), scalar(&d_out.total)),
            ("loss_g".into(), scalar(&g_out.total)),
        ];
        for (name, v) in d_out.parts.iter().chain(g_out.parts.iter()) {
            cols.push(((*name).to_string(), scalar(v)));
        }
        cols.extend(extra.iter().map(|(n, v)| ((*n).to_string(), *v)));
        cols.push(("images_per_s".into(), ips));
        cols.push(("lr_g".into(), self.lr.0 * factor));
        cols.push(("lr_d".into(), self.lr.1 * factor));
        if let Some((name, v)) = cols.iter().find(|(_, v)| !v.is_finite()) {
            bail!(
                "training diverged at step {done}: {name} is {v}. Last good checkpoint: {}. \
                 Try a lower learning rate (optim.g.lr / optim.d.lr) or another loss",
                last_good(run)?
            );
        }
        if self.log.is_none() {
            let names = cols.iter().map(|(n, _)| n.clone()).collect();
            self.log = Some(MetricsLog::open(
                &run.metrics_path(),
                names,
                Some(self.start),
            )?);
        }
        let log = self.log.as_mut().expect("opened");
        log.append(cols.iter().map(|(_, v)| *v).collect())?;
        let get = |k: &str| cols.iter().find(|(n, _)| n == k).map_or(f64::NAN, |c| c.1);
        // Probabilities only: the hinge, least-squares and Wasserstein losses log raw D outputs
        // (outside [0, 1] as soon as D learns), for which these thresholds say nothing.
        let (real, fake) = (get("d_real"), get("d_fake"));
        let probabilities = (0.0..=1.0).contains(&real) && (0.0..=1.0).contains(&fake);
        let d_wins = probabilities && real > 0.99 && fake < 0.01;
        // Once per session: a discriminator that separates perfectly now and then is
        // common; the warning is a hint, not a stream.
        if d_wins && !self.warned_d_wins {
            self.bar.suspend(|| {
                tracing::warn!(
                    "step {done}: the discriminator wins outright (D(x) {:.3}, D(G(z)) {:.3}); \
                     if the samples stop improving, try a lower optim.d.lr or another loss \
                     (warned once)",
                    get("d_real"),
                    get("d_fake")
                )
            });
            self.warned_d_wins = true;
        }
        self.bar
            .set_message(progress_message(&cols, &g_out.parts, ips));
        self.last = cols;
        Ok(())
    }

    /// After a sample grid: redraws losses.png and logs the latest values. Before this
    /// session's first log row (a resumed run samples before it logs when `sample_every` is
    /// not a multiple of `log_every`) both come from the metrics.csv the run already has.
    pub fn sampled(&mut self, run: &RunDir, done: u64) -> Result<()> {
        let on_disk;
        let (columns, rows) = match &self.log {
            Some(log) => (log.columns(), &log.rows),
            None => {
                let path = run.metrics_path();
                on_disk = if path.exists() {
                    let (columns, mut rows) = read_metrics(&path)?;
                    rows.retain(|r| r.first().is_some_and(|&s| s <= done as f64));
                    (columns, rows)
                } else {
                    (Vec::new(), Vec::new())
                };
                (on_disk.0.as_slice(), &on_disk.1)
            }
        };
        plot_metrics(columns, rows, &run.path.join("losses.png"))?;
        let last: Vec<(&str, f64)> = if self.last.is_empty() {
            rows.last()
                .map(|r| {
                    columns
                        .iter()
                        .map(String::as_str)
                        .zip(r.iter().copied())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            self.last.iter().map(|(n, v)| (n.as_str(), *v)).collect()
        };
        let line = last
            .iter()
            .filter(|(n, _)| !matches!(*n, "step" | "lr_g" | "lr_d"))
            .map(|(n, v)| format!("{n} {v:.4}"))
            .collect::<Vec<_>>()
            .join(" ");
        let total = self.total;
        self.bar.suspend(|| {
            if line.is_empty() {
                tracing::info!("step {done}/{total}: sample grid written");
            } else {
                tracing::info!("step {done}/{total}: {line}")
            }
        });
        Ok(())
    }

    /// The session's summary, its last step `step` (`time_limited`: stopped there by the
    /// time limit).
    pub fn finish(self, step: u64, time_limited: bool) -> Summary {
        self.bar.finish_and_clear();
        let start = self.start;
        let seconds = self.session_start.elapsed().as_secs_f64();
        let done_steps = step.saturating_sub(start);
        Summary {
            step: step.max(start),
            total_steps: self.total,
            images_per_s: (done_steps * self.images_per_step) as f64 / seconds.max(1e-9),
            seconds,
            time_limited,
            last: self.last,
        }
    }
}

/// The progress bar's message: both losses, then D's mean scores when the loss has them
/// (D(x), D(G(z))), else the model's first generator terms (CycleGAN's G_A, G_B, cycle_A, …),
/// then the throughput. Never a column the model does not log.
fn progress_message(
    cols: &[(String, f64)],
    g_parts: &[(&'static str, Tensor<1>)],
    images_per_s: f64,
) -> String {
    let get = |k: &str| cols.iter().find(|(n, _)| n == k).map(|c| c.1);
    let mut msg = String::new();
    for (label, key) in [("D", "loss_d"), ("G", "loss_g")] {
        if let Some(v) = get(key) {
            msg += &format!("{label} {v:.3} ");
        }
    }
    match (get("d_real"), get("d_fake")) {
        (Some(real), Some(fake)) => msg += &format!("D(x) {real:.3} D(G(z)) {fake:.3} "),
        _ => {
            for (name, _) in g_parts.iter().take(4) {
                if let Some(v) = get(name) {
                    msg += &format!("{name} {v:.3} ");
                }
            }
        }
    }
    msg + &format!("{images_per_s:.0} img/s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(names: &[&str]) -> Vec<(String, f64)> {
        names.iter().map(|n| ((*n).to_string(), 0.5)).collect()
    }

    #[test]
    fn progress_shows_only_logged_columns() {
        let d = Device::flex();
        let gan = progress_message(
            &cols(&["step", "loss_d", "loss_g", "d_real", "d_fake"]),
            &[],
            12.0,
        );
        assert_eq!(gan, "D 0.500 G 0.500 D(x) 0.500 D(G(z)) 0.500 12 img/s");
        let t = || Tensor::<1>::zeros([1], &d);
        let parts = [
            ("G_A", t()),
            ("G_B", t()),
            ("cycle_A", t()),
            ("cycle_B", t()),
            ("idt_A", t()),
        ];
        let cycle = progress_message(
            &cols(&[
                "loss_d", "loss_g", "D_A", "G_A", "G_B", "cycle_A", "cycle_B", "idt_A",
            ]),
            &parts,
            3.0,
        );
        assert_eq!(
            cycle,
            "D 0.500 G 0.500 G_A 0.500 G_B 0.500 cycle_A 0.500 cycle_B 0.500 3 img/s"
        );
        assert!(!cycle.contains("NaN") && !cycle.contains("D(x)"));
    }
}

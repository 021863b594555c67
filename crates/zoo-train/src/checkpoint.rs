//! What a checkpoint holds and how it is written and read: both networks, both optimizer
//! states, the EMA generator when on, and the model's own state, in burnpack files rewritten
//! canonically so that equal runs write equal bytes.

pub use crate::params::{init_networks, number_params};

use std::path::Path;

use anyhow::{Context, Result, bail};
use burn::prelude::*;
use zoo_core::game::Game;

use crate::params::load_module;
use crate::run::{Checkpoint, RunDir};
use crate::step::Players;

pub use crate::ema::EMA_FILE;

/// Loads the generator a run samples with from a checkpoint: the EMA generator when the run
/// keeps one, else the trained generator.
pub fn load_generator<M: Game>(model: &M, ck: &Checkpoint, device: &Device) -> Result<M::G> {
    load_generator_of(model, ck, Weights::Sampled, device)
}

/// Which of a checkpoint's generators to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weights {
    /// The one the run samples with: the EMA generator when the run keeps one.
    #[default]
    Sampled,
    /// The trained generator itself, beside its EMA (`zoo eval --no-ema`); an error for a run
    /// without an EMA, where it would silently be the same as [`Weights::Sampled`].
    Trained,
}

/// Loads the chosen generator from a checkpoint (see [`Weights`]).
pub fn load_generator_of<M: Game>(
    model: &M,
    ck: &Checkpoint,
    weights: Weights,
    device: &Device,
) -> Result<M::G> {
    let ema = ck.file(EMA_FILE);
    let path = match weights {
        Weights::Sampled if ema.is_file() => ema,
        Weights::Sampled => ck.file("generator.bpk"),
        Weights::Trained => {
            if !ema.is_file() {
                bail!(
                    "--no-ema: this run keeps no moving average of its generator (train.ema.decay \
                     was 0), so its samples already come from the trained generator; drop --no-ema"
                );
            }
            ck.file("generator.bpk")
        }
    };
    load_module(model.init_g(device), &path)
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

/// Stops the run if a network's parameters stopped being finite (a loss can stay finite while
/// they blow up, e.g. behind a saturated tanh).
pub fn check_params<M: Game>(run: &RunDir, p: &Players<M>, step: u64) -> Result<()> {
    let bad = if !params_finite(&p.g) {
        "generator"
    } else if !params_finite(&p.d) {
        "discriminator"
    } else {
        return Ok(());
    };
    bail!(
        "training diverged by step {step}: the {bad}'s parameters are not finite (the losses \
         were). The last good checkpoint is {}. Lower the learning rate (optim.g.lr / \
         optim.d.lr) or try another loss (model.loss)",
        last_good(run)?
    )
}

/// The latest checkpoint's path, or "none yet", for messages.
pub fn last_good(run: &RunDir) -> Result<String> {
    Ok(run
        .latest_checkpoint()?
        .map_or_else(|| "none yet".into(), |c| c.path.display().to_string()))
}

/// Writes both networks, both optimizer states, the EMA generator and the model's own state
/// into `dir`.
pub fn fill_checkpoint<M: Game>(model: &M, p: &Players<M>, dir: &Path) -> Result<()> {
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
    let mut files = vec![g, d, og, od];
    if let Some(ema) = &p.ema {
        let path = dir.join(EMA_FILE);
        ema.save(&path).context("saving the EMA generator")?;
        files.push(path);
    }
    for f in &files {
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
pub fn canonical_burnpack(path: &Path) -> Result<()> {
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

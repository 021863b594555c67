//! Helpers for model crates' tests: tiny data, one-call training, loading what a run saved.

use std::sync::Arc;

use burn::prelude::*;
use zoo_core::config::RunConfig;
use zoo_core::data::{Batches, ImageSet};
use zoo_core::game::Game;
use zoo_core::gan::GanModel;
pub use zoo_core::kernels::rng_lock;

use crate::checkpoint::{init_networks, load_generator};
use crate::engine::{self, Summary, TrainOptions};
use crate::run::RunDir;

/// `n` deterministic patterned images of `channels`×`size`×`size`.
pub fn toy_images(n: usize, channels: usize, size: usize) -> Arc<ImageSet> {
    Arc::new(ImageSet::synthetic(n, channels, size))
}

/// Seeded batches of `data` for a noise GAN's config.
pub fn batches<C>(cfg: &RunConfig<C>, data: Arc<ImageSet>) -> Batches {
    Batches::new(data, cfg.train.batch_size, cfg.train.seed).expect("enough images")
}

/// Trains the noise GAN `M` on `data` into `run` (from its latest checkpoint when
/// `resume`), on the CPU.
pub fn train<M: GanModel>(
    cfg: &RunConfig<M::Config>,
    data: Arc<ImageSet>,
    run: &RunDir,
    resume: bool,
) -> Summary {
    train_game::<M>(cfg, batches(cfg, data), run, resume)
}

/// Trains any [`Game`] into `run` (from its latest checkpoint when `resume`), on the CPU.
pub fn train_game<M: Game>(
    cfg: &RunConfig<M::Config>,
    data: M::Data,
    run: &RunDir,
    resume: bool,
) -> Summary {
    let mut model = M::new(cfg).expect("valid config");
    let ck = resume.then(|| {
        run.latest_checkpoint()
            .expect("readable")
            .expect("a checkpoint")
    });
    engine::train(
        &mut model,
        cfg,
        data,
        run,
        ck.as_ref(),
        &Device::flex(),
        TrainOptions::default(),
        &engine::unobserved::<M>,
    )
    .expect("training runs")
}

/// The generator and discriminator of a run's latest checkpoint.
pub fn load_trained<M: Game>(cfg: &RunConfig<M::Config>, run: &RunDir) -> (M::G, M::D) {
    let model = M::new(cfg).expect("valid config");
    let ck = run
        .latest_checkpoint()
        .expect("readable")
        .expect("a checkpoint");
    let dev = Device::flex();
    let g = load_generator(&model, &ck, &dev).expect("generator loads");
    let d = model
        .init_d(&dev)
        .try_load_file(ck.file("discriminator.bpk"))
        .expect("discriminator loads");
    (g, d)
}

/// Runs one training step from the seed's initial networks and asserts that the logged
/// values are finite and that every parameter tensor of both players moved.
pub fn assert_one_step_moves_both<M: GanModel>(cfg: &RunConfig<M::Config>, data: Arc<ImageSet>) {
    assert_one_step_moves_all::<M>(cfg, batches(cfg, data));
}

/// [`assert_one_step_moves_both`] for any [`Game`] (every network of a bundle checked).
pub fn assert_one_step_moves_all<M: Game>(cfg: &RunConfig<M::Config>, data: M::Data) {
    let mut cfg = cfg.clone();
    cfg.train.steps = 1;
    cfg.train.log_every = 1;
    let out = tempfile_dir();
    let run = RunDir::create(&out, M::NAME).expect("run folder");
    let model = M::new(&cfg).expect("valid config");
    let (g0, d0) = init_networks(&model, cfg.train.seed, &Device::flex());
    let summary = train_game::<M>(&cfg, data, &run, false);
    for (name, v) in &summary.last {
        assert!(v.is_finite(), "{name} = {v}");
    }
    let (g1, d1) = load_trained::<M>(&cfg, &run);
    let moved = |a: Vec<Vec<f32>>, b: Vec<Vec<f32>>| {
        a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| x != y)
    };
    use zoo_core::gan::param_values;
    // Batch norm's running statistics move too (they are updated in the forward pass).
    assert!(
        moved(param_values(&g0), param_values(&g1)),
        "every G tensor moved"
    );
    assert!(
        moved(param_values(&d0), param_values(&d1)),
        "every D tensor moved"
    );
    let _ = std::fs::remove_dir_all(out);
}

/// A fresh folder under the system temp dir (removed by the caller).
pub fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let p = std::env::temp_dir().join(format!(
        "zoo-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&p).expect("temp folder");
    p
}

/// Save → load of both networks reproduces their outputs bit for bit.
pub fn assert_checkpoint_round_trip<M: GanModel>(cfg: &RunConfig<M::Config>) {
    let dev = Device::flex();
    let dir = tempfile_dir();
    let m = <M as GanModel>::new(cfg).expect("valid config");
    let (g, d) = init_networks(&m, 3, &dev);
    g.clone().save_file(dir.join("g.bpk")).expect("save");
    d.clone().save_file(dir.join("d.bpk")).expect("save");
    let g2 = <M as GanModel>::init_g(&m, &dev)
        .try_load_file(dir.join("g.bpk"))
        .expect("load");
    let d2 = <M as GanModel>::init_d(&m, &dev)
        .try_load_file(dir.join("d.bpk"))
        .expect("load");
    let z = m.noise(5, &dev);
    let x = m.generate(&g.valid(), z.clone());
    let x2 = m.generate(&g2.valid(), z);
    x.clone().into_data().assert_eq(&x2.into_data(), true);
    // The discriminators agree too (through the model's own G loss on the same fakes).
    let mut m = m;
    let a = <M as GanModel>::g_loss(&mut m, &d.valid(), x.clone()).total;
    let b = <M as GanModel>::g_loss(&mut m, &d2.valid(), x).total;
    a.into_data().assert_eq(&b.into_data(), true);
    let _ = std::fs::remove_dir_all(dir);
}

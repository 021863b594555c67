use std::sync::Arc;

use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use zoo_core::data::ImageSet;
use zoo_core::gan::param_values;
use zoo_train::run::RunDir;
use zoo_train::testing::{
    assert_checkpoint_round_trip, assert_one_step_moves_both, load_trained, rng_lock, toy_images,
};

use super::*;

fn lock() -> std::sync::MutexGuard<'static, ()> {
    rng_lock()
}

fn small_config(steps: u64) -> RunConfig<VanillaConfig> {
    let mut cfg = RunConfig::<VanillaConfig>::default();
    cfg.model.latent_dim = 4;
    cfg.model.g_hidden = vec![16];
    cfg.model.d_hidden = vec![16];
    cfg.data.image_size = 4;
    cfg.train.steps = steps;
    cfg.train.batch_size = 8;
    cfg.train.log_every = 1;
    cfg.train.sample_every = 1000;
    cfg.train.checkpoint_every = 1000;
    cfg
}

fn train(
    cfg: &RunConfig<VanillaConfig>,
    data: Arc<ImageSet>,
    run: &RunDir,
    resume: bool,
) -> zoo_train::engine::Summary {
    zoo_train::testing::train::<Vanilla>(cfg, data, run, resume)
}

fn load(cfg: &RunConfig<VanillaConfig>, run: &RunDir) -> (Generator, Discriminator) {
    load_trained::<Vanilla>(cfg, run)
}

#[test]
fn shapes_at_small_sizes() {
    let _l = lock();
    let dev = Device::flex();
    for (c, s) in [(1, 4), (3, 5)] {
        let mut cfg = small_config(1);
        cfg.data.channels = c;
        cfg.data.image_size = s;
        let m = Vanilla::new(&cfg).expect("valid");
        let g = m.init_g(&dev);
        let d = m.init_d(&dev);
        let x = m.generate(&g, m.noise(3, &dev));
        assert_eq!(x.dims(), [3, c, s, s]);
        let v = x.clone().into_data().try_to_vec::<f32>().expect("f32");
        assert!(v.iter().all(|p| (-1.0..=1.0).contains(p)), "tanh range");
        assert_eq!(d.forward(x).dims(), [3, 1]);
    }
}

#[test]
fn default_parameter_counts() {
    let mut cfg = RunConfig::<VanillaConfig>::default();
    let dev = Device::flex();
    let m = Vanilla::new(&cfg).expect("valid");
    // burn's num_params counts batch norm's running mean and variance with γ and β.
    assert_eq!(m.init_g(&dev).num_params(), 1_486_352 + 4 * 1792);
    let g = m.init_g(&dev.clone().autodiff());
    assert_eq!(zoo_core::gan::trainable_params(&g), 1_486_352 + 2 * 1792);
    cfg.model.g_batchnorm = false;
    let m = Vanilla::new(&cfg).expect("valid");
    // 100→256→512→1024→784 and 784→1024→512→256→1, weights plus biases.
    assert_eq!(m.init_g(&dev).num_params(), 1_486_352);
    assert_eq!(m.init_d(&dev).num_params(), 1_460_225);
}

#[test]
fn invalid_model_values_are_rejected() {
    let mut cfg = small_config(1);
    cfg.model.dropout = 1.0;
    assert!(
        Vanilla::new(&cfg)
            .expect_err("must fail")
            .to_string()
            .contains("model.dropout")
    );
    let mut cfg = small_config(1);
    cfg.model.latent_dim = 0;
    assert!(
        Vanilla::new(&cfg)
            .expect_err("must fail")
            .to_string()
            .contains("latent_dim")
    );
}

#[test]
fn one_step_gives_finite_losses_and_moves_both_players() {
    let _l = lock();
    assert_one_step_moves_both::<Vanilla>(&small_config(1), toy_images(32, 1, 4));
}

#[test]
fn checkpoint_round_trip_reproduces_outputs_bit_for_bit() {
    let _l = lock();
    assert_checkpoint_round_trip::<Vanilla>(&small_config(1));
}

#[test]
fn resume_matches_an_uninterrupted_run_exactly() {
    let _l = lock();
    let data = toy_images(40, 1, 4);
    // Straight: 12 steps.
    let out = tempfile::tempdir().expect("tmp");
    let mut cfg = small_config(12);
    cfg.train.checkpoint_every = 6;
    let straight = RunDir::create(out.path(), "vanilla").expect("run");
    train(&cfg, data.clone(), &straight, false);
    // Interrupted: 6 steps, then resumed to 12 (the data order crosses epochs: 5 batches each).
    let mut half = cfg.clone();
    half.train.steps = 6;
    let resumed = RunDir::create(out.path(), "vanilla").expect("run");
    train(&half, data.clone(), &resumed, false);
    train(&cfg, data, &resumed, true);

    let (ga, da) = load(&cfg, &straight);
    let (gb, db) = load(&cfg, &resumed);
    assert_eq!(param_values(&ga), param_values(&gb), "generators identical");
    assert_eq!(
        param_values(&da),
        param_values(&db),
        "discriminators identical"
    );
    // metrics.csv holds each step once.
    let text = std::fs::read_to_string(resumed.metrics_path()).expect("csv");
    let steps: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap_or_default())
        .collect();
    let want: Vec<String> = (1..=12).map(|s| s.to_string()).collect();
    assert_eq!(steps, want);
}

#[test]
fn same_seed_same_run_other_seed_other_run() {
    let _l = lock();
    let data = toy_images(40, 1, 4);
    let out = tempfile::tempdir().expect("tmp");
    let cfg = small_config(5);
    let mut params = Vec::new();
    for seed in [1, 1, 2] {
        let mut c = cfg.clone();
        c.train.seed = seed;
        let run = RunDir::create(out.path(), "vanilla").expect("run");
        train(&c, data.clone(), &run, false);
        params.push(param_values(&load(&c, &run).0));
    }
    assert_eq!(params[0], params[1]);
    assert_ne!(params[0], params[2]);
}

/// The "does it learn" test: a 1-D mixture ½N(-0.5, 0.1²) + ½N(0.5, 0.1²), as 1×1 images.
#[test]
fn learns_a_one_dimensional_gaussian_mixture() {
    let _l = lock();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(9);
    let n = 4096;
    let pixels: Vec<u8> = (0..n)
        .map(|i| {
            // Box–Muller.
            let (u1, u2): (f64, f64) = (rng.random::<f64>().max(1e-12), rng.random());
            let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
            let x = if i % 2 == 0 { -0.5 } else { 0.5 } + 0.1 * z;
            ((x.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8
        })
        .collect();
    let data = Arc::new(ImageSet {
        pixels,
        labels: None,
        len: n,
        channels: 1,
        size: 1,
        floats: None,
    });
    let mut cfg = RunConfig::<VanillaConfig>::default();
    cfg.model.latent_dim = 4;
    cfg.model.g_hidden = vec![32, 32];
    cfg.model.d_hidden = vec![32, 32];
    cfg.model.dropout = 0.0;
    cfg.data.image_size = 1;
    cfg.train.steps = 1500;
    cfg.train.batch_size = 128;
    cfg.train.log_every = 100;
    cfg.train.sample_every = 10_000;
    cfg.train.checkpoint_every = 10_000;
    cfg.optim.g.lr = 1e-3;
    cfg.optim.d.lr = 1e-3;
    let out = tempfile::tempdir().expect("tmp");
    let run = RunDir::create(out.path(), "vanilla").expect("run");
    train(&cfg, data, &run, false);

    let (g, _) = load(&cfg, &run);
    let m = Vanilla::new(&cfg).expect("valid");
    let dev = Device::flex();
    dev.seed(123);
    let x: Vec<f32> = m
        .generate(&g.valid(), m.noise(4000, &dev))
        .into_data()
        .try_to_vec()
        .expect("f32");
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / x.len() as f64;
    let std = (x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / x.len() as f64).sqrt();
    let left = x.iter().filter(|&&v| (-0.8..-0.2).contains(&v)).count() as f64 / x.len() as f64;
    let right = x.iter().filter(|&&v| (0.2..0.8).contains(&v)).count() as f64 / x.len() as f64;
    // Data: mean 0, std √(0.25 + 0.01) = 0.51, half the mass in each window.
    assert!(mean.abs() < 0.12, "mean {mean}");
    assert!((std - 0.51).abs() < 0.12, "std {std}");
    assert!(left > 0.25 && right > 0.25, "both modes: {left} {right}");
    assert!(
        left + right > 0.75,
        "little mass between the modes: {}",
        left + right
    );
}

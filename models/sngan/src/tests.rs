use burn::prelude::*;
use zoo_core::augment::DiffAugment;
use zoo_core::data::Batches;
use zoo_core::gan::{GanModel, trainable_params};
use zoo_core::nn::{Weighted, top_singular_value};
use zoo_train::testing::{
    assert_checkpoint_round_trip, assert_one_step_moves_both, assert_resume_is_exact, rng_lock,
    toy_images,
};

use super::*;

fn config(size: usize, channels: usize, filters: usize) -> RunConfig<SnganConfig> {
    let mut cfg = Sngan::defaults();
    cfg.data.image_size = size;
    cfg.data.channels = channels;
    cfg.model.g_filters = filters;
    cfg.model.d_filters = filters;
    cfg.model.latent_dim = 8;
    cfg.train.batch_size = 4;
    cfg
}

#[test]
fn defaults_follow_the_paper() {
    let cfg = Sngan::defaults();
    assert_eq!(cfg.model.loss, Adversarial::Hinge);
    assert_eq!(cfg.model.latent_dim, 128);
    assert_eq!(cfg.model.leaky_slope, 0.1);
    assert_eq!(cfg.train.d_steps, 5);
    for adam in [cfg.optim.g, cfg.optim.d] {
        assert_eq!((adam.lr, adam.beta1, adam.beta2), (2e-4, 0.0, 0.9));
    }
    assert!(cfg.validate().is_ok());
}

#[test]
fn the_32px_networks_are_the_papers_standard_cnn() {
    let _l = rng_lock();
    // Table 3 of the paper at 32×32 RGB, z = 128: counted by hand from its layer list.
    let mut cfg = config(32, 3, 64);
    cfg.model.latent_dim = 128;
    let m = Sngan::new(&cfg).expect("valid");
    let dev = Device::flex().autodiff();
    let (g, d) = (m.init_g(&dev), m.init_d(&dev));
    let z = 128;
    let dense = z * 4 * 4 * 512 + 4 * 4 * 512;
    let bn = |c: usize| 2 * c;
    let up = |i: usize, o: usize| i * o * 16 + o;
    let g_want = dense
        + bn(512)
        + up(512, 256)
        + bn(256)
        + up(256, 128)
        + bn(128)
        + up(128, 64)
        + bn(64)
        + 64 * 3 * 9
        + 3;
    assert_eq!(trainable_params(&g), g_want);
    let conv = |i: usize, o: usize, k: usize| i * o * k * k + o;
    let d_want = conv(3, 64, 3)
        + conv(64, 64, 4)
        + conv(64, 128, 3)
        + conv(128, 128, 4)
        + conv(128, 256, 3)
        + conv(256, 256, 4)
        + conv(256, 512, 3)
        + 512 * 4 * 4
        + 1;
    assert_eq!(trainable_params(&d), d_want);
    // 7 convolutions and the dense head, every one spectrally normalised.
    assert_eq!(d.convs.len(), 7);
}

#[test]
fn output_shapes_at_28_32_and_64_px() {
    let _l = rng_lock();
    let dev = Device::flex();
    for (size, channels) in [(28, 1), (32, 3), (64, 3), (8, 1)] {
        let m = Sngan::new(&config(size, channels, 4)).expect("valid");
        let (g, d) = (m.init_g(&dev), m.init_d(&dev));
        let x = m.generate(&g, m.noise(3, &dev));
        assert_eq!(x.dims(), [3, channels, size, size]);
        let v = x.clone().into_data().try_to_vec::<f32>().expect("f32");
        assert!(v.iter().all(|p| (-1.0..=1.0).contains(p)));
        assert_eq!(d.forward(x).dims(), [3, 1]);
    }
    let e = Sngan::new(&config(30, 1, 4))
        .expect_err("30 px")
        .to_string();
    assert!(e.contains("data.image_size"), "{e}");
}

#[test]
fn every_layer_of_d_has_spectral_norm_one_after_training_forwards() {
    let _l = rng_lock();
    let dev = Device::flex().autodiff();
    let m = Sngan::new(&config(16, 3, 8)).expect("valid");
    let d = m.init_d(&dev);
    let x = Tensor::<4>::random(
        [2, 3, 16, 16],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &dev,
    );
    // Each training forward advances every layer's power iteration once.
    for _ in 0..200 {
        let _ = d.forward(x.clone());
    }
    let mut sigmas: Vec<f64> = d
        .convs
        .iter()
        .map(|c| {
            let w = c.inner.weight_matrix();
            let s = c.sigma(w.clone()).into_scalar::<f32>() as f64;
            top_singular_value(w.div_scalar(s))
        })
        .collect();
    let w = d.head.inner.weight_matrix();
    let s = d.head.sigma(w.clone()).into_scalar::<f32>() as f64;
    sigmas.push(top_singular_value(w.div_scalar(s)));
    // 16 px = 4·2²: two stages of two convolutions, the last convolution, the dense head.
    assert_eq!(sigmas.len(), 6);
    for (i, s) in sigmas.iter().enumerate() {
        // uᵀWv never exceeds σ₁, so the normalised weight's norm is at least 1.
        assert!((0.999..1.03).contains(s), "layer {i}: σ(W/σ̂) = {s}");
    }
    // The raw weights are not normalised themselves: the layer does it.
    let raw = top_singular_value(d.convs[1].inner.weight_matrix());
    assert!(!(0.97..1.03).contains(&raw), "raw σ {raw}");
}

#[test]
fn one_step_moves_both_players() {
    let _l = rng_lock();
    // With the hinge loss the head's bias has a zero gradient while every score is inside the
    // margin (|D| < 1: −1 from the reals, +1 from the fakes), as at the first steps; the
    // non-saturating loss moves every tensor at once.
    for (size, channels) in [(8, 1), (28, 3)] {
        let mut cfg = config(size, channels, 4);
        cfg.train.d_steps = 2;
        cfg.model.loss = Adversarial::NonSaturating;
        assert_one_step_moves_both::<Sngan>(&cfg, toy_images(16, channels, size));
    }
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let _l = rng_lock();
    assert_checkpoint_round_trip::<Sngan>(&config(16, 3, 4));
}

#[test]
fn resume_is_exact_with_ema_and_diffaugment() {
    // The power iterations' u, the EMA generator and DiffAugment's draws all come back.
    let _l = rng_lock();
    let mut cfg = config(8, 3, 4);
    cfg.train.steps = 4;
    cfg.train.d_steps = 2;
    cfg.train.ema.decay = 0.9;
    cfg.train.diffaug = DiffAugment::all();
    let data = || Batches::new(toy_images(16, 3, 8), 4, cfg.train.seed).expect("batches");
    assert_resume_is_exact::<Sngan>(&cfg, data);
}

use burn::tensor::Distribution;
use zoo_core::gan::{GanModel, trainable_params};
use zoo_train::testing::{
    assert_checkpoint_round_trip, assert_one_step_moves_both, rng_lock, toy_images,
};

use super::*;

fn config(size: usize, channels: usize, filters: usize) -> RunConfig<DcganConfig> {
    let mut cfg = Dcgan::defaults();
    cfg.data.image_size = size;
    cfg.data.channels = channels;
    cfg.model.g_filters = Some(filters);
    cfg.model.d_filters = filters;
    cfg.model.latent_dim = 8;
    cfg.train.batch_size = 4;
    cfg
}

#[test]
fn parameter_counts_match_the_pytorch_reference() {
    // 64×64 RGB, z = 100, 64 base filters: the widely used PyTorch DCGAN's printed totals.
    let mut cfg = Dcgan::defaults();
    cfg.data.image_size = 64;
    cfg.data.channels = 3;
    let m = Dcgan::new(&cfg).expect("valid");
    let dev = Device::flex().autodiff();
    assert_eq!(trainable_params(&m.init_g(&dev)), 3_576_704);
    assert_eq!(trainable_params(&m.init_d(&dev)), 2_765_568);
}

#[test]
fn generator_width_defaults_to_128_filters_at_28_px_and_64_above() {
    let _l = rng_lock();
    let dev = Device::flex().autodiff();
    let g_params = |size: usize, filters: Option<usize>| {
        let mut cfg = Dcgan::defaults();
        cfg.data.image_size = size;
        cfg.model.g_filters = filters;
        trainable_params(&Dcgan::new(&cfg).expect("valid").init_g(&dev))
    };
    // 28 px, unset = 128: z 100 -> 256 (7x7), BN, 256 -> 128 (4x4), BN, 128 -> 1 (4x4).
    let wide = 100 * 256 * 49 + 2 * 256 + 256 * 128 * 16 + 2 * 128 + 128 * 16;
    assert_eq!(g_params(28, None), wide);
    assert_eq!(g_params(28, Some(128)), wide);
    // The paper's 64 filters when asked: 100 -> 128 -> 64 -> 1.
    let paper = 100 * 128 * 49 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 16;
    assert_eq!(g_params(28, Some(64)), paper);
    // Above 28 px the default is the paper's 64 (32 px: 100 -> 256 -> 128 -> 64 -> 1 from 4x4).
    let at32 =
        100 * 256 * 16 + 2 * 256 + 256 * 128 * 16 + 2 * 128 + 128 * 64 * 16 + 2 * 64 + 64 * 16;
    assert_eq!(g_params(32, None), at32);
    assert_eq!(Dcgan::defaults().model.g_filters_at(28), 128);
    assert_eq!(Dcgan::defaults().model.g_filters_at(64), 64);
}

#[test]
fn layouts_follow_the_image_size() {
    assert_eq!(Layout::new(64, 3).expect("ok").base, 4);
    assert_eq!(Layout::new(64, 3).expect("ok").stages, 4);
    assert_eq!(Layout::new(28, 1).expect("ok").base, 7);
    assert_eq!(Layout::new(28, 1).expect("ok").stages, 2);
    assert_eq!(Layout::new(32, 1).expect("ok").stages, 3);
    for bad in [3, 7, 30, 100] {
        let e = Layout::new(bad, 1).expect_err("unsuitable").to_string();
        assert!(e.contains("data.image_size"), "{e}");
    }
}

#[test]
fn output_shapes_at_small_sizes() {
    let _l = rng_lock();
    let dev = Device::flex();
    for (size, channels) in [(8, 1), (28, 1), (32, 3), (14, 3)] {
        let m = Dcgan::new(&config(size, channels, 4)).expect("valid");
        let g = m.init_g(&dev);
        let d = m.init_d(&dev);
        let x = m.generate(&g, m.noise(3, &dev));
        assert_eq!(x.dims(), [3, channels, size, size]);
        let v = x.clone().into_data().try_to_vec::<f32>().expect("f32");
        assert!(v.iter().all(|p| (-1.0..=1.0).contains(p)));
        assert_eq!(d.forward(x).dims(), [3, 1]);
    }
}

#[test]
fn init_follows_the_paper() {
    let _l = rng_lock();
    let dev = Device::flex();
    let m = Dcgan::new(&config(32, 3, 32)).expect("valid");
    let g = m.init_g(&dev);
    let params = zoo_core::gan::param_values(&g);
    // The first tensor is the first transposed conv's weight: N(0, 0.02).
    let w = &params[0];
    let mean = w.iter().map(|&x| x as f64).sum::<f64>() / w.len() as f64;
    let std = (w.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
    assert!(mean.abs() < 0.002, "mean {mean}");
    assert!((std - 0.02).abs() < 0.002, "std {std}");
}

#[test]
fn defaults_train_g_at_twice_ds_rate() {
    let cfg = Dcgan::defaults();
    assert_eq!(cfg.model.loss, Adversarial::NonSaturating);
    assert_eq!((cfg.optim.g.lr, cfg.optim.d.lr), (4e-4, 2e-4));
    assert_eq!((cfg.optim.g.beta1, cfg.optim.d.beta1), (0.5, 0.5));
}

#[test]
fn one_step_moves_both_players() {
    let _l = rng_lock();
    assert_one_step_moves_both::<Dcgan>(&config(8, 1, 4), toy_images(16, 1, 8));
    assert_one_step_moves_both::<Dcgan>(&config(28, 3, 4), toy_images(8, 3, 28));
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let _l = rng_lock();
    assert_checkpoint_round_trip::<Dcgan>(&config(16, 3, 4));
}

#[test]
fn joint_batch_normalises_real_and_fake_together() {
    // D's batch norm in training mode: with `d_joint_batch` a fake's logit depends on the real
    // images beside it (one set of batch statistics over both halves); with a batch of each it
    // does not. A step with the option trains both players.
    let _l = rng_lock();
    let dev = Device::flex().autodiff();
    let logit_of_fakes = |joint: bool, real_scale: f32| {
        let mut cfg = config(16, 1, 4);
        cfg.model.d_joint_batch = joint;
        let m = Dcgan::new(&cfg).expect("valid");
        dev.seed(3);
        let (g, d) = (m.init_g(&dev), m.init_d(&dev));
        let fake = m.generate(&g, m.noise(4, &dev));
        let real = Tensor::<4>::random([4, 1, 16, 16], Distribution::Uniform(-1.0, 1.0), &dev)
            * real_scale;
        let (r, f) = m.inner().d_logits(&d, real, fake);
        assert_eq!((r.dims(), f.dims()), ([4, 1], [4, 1]));
        f.into_data().try_to_vec::<f32>().expect("f32")
    };
    let max_diff = |a: Vec<f32>, b: Vec<f32>| {
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    };
    assert!(max_diff(logit_of_fakes(false, 1.0), logit_of_fakes(false, 0.2)) < 1e-6);
    assert!(max_diff(logit_of_fakes(true, 1.0), logit_of_fakes(true, 0.2)) > 1e-3);
    let mut cfg = config(8, 1, 4);
    cfg.model.d_joint_batch = true;
    assert_one_step_moves_both::<Dcgan>(&cfg, toy_images(16, 1, 8));
}

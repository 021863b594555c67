use burn::tensor::Distribution;
use zoo_core::gan::{label_tensor as labels, trainable_params};
use zoo_train::testing::{
    assert_class_sampling, assert_game_round_trip, assert_one_step_moves_all, batches,
    labelled_toy_images, rng_lock,
};

use super::*;

fn config(size: usize, channels: usize, filters: usize) -> RunConfig<AcganConfig> {
    let mut cfg = Acgan::defaults();
    cfg.data.image_size = size;
    cfg.data.channels = channels;
    cfg.model.g_filters = filters;
    cfg.model.d_filters = filters;
    cfg.model.latent_dim = 8;
    cfg.train.batch_size = 4;
    cfg
}

#[test]
fn shapes_heads_and_the_one_hot_input() {
    let _l = rng_lock();
    let dev = Device::flex();
    for (size, channels) in [(8, 1), (28, 1), (32, 3)] {
        let m = Acgan::new(&config(size, channels, 4)).expect("valid");
        let (g, d) = (m.init_g(&dev), m.init_d(&dev));
        let y = labels(vec![0, 3, 9], &dev);
        let x = m.generate(&g, m.noise(3, &dev), y);
        assert_eq!(x.dims(), [3, channels, size, size]);
        let (adv, classes) = d.forward(x);
        assert_eq!(adv.dims(), [3, 1]);
        assert_eq!(classes.dims(), [3, 10]);
    }
    // 28×28: DCGAN's G with 10 more input channels, DCGAN's D plus a 7×7 class head.
    let m = Acgan::new(&Acgan::defaults()).expect("valid");
    let ad = Device::flex().autodiff();
    let dcgan_g = 100 * 128 * 49 + 128 * 64 * 16 + 64 * 16 + 2 * (128 + 64);
    assert_eq!(trainable_params(&m.init_g(&ad)), dcgan_g + 10 * 128 * 49);
    let dcgan_d = 16 * 64 + 64 * 128 * 16 + 2 * 128 + 128 * 49;
    assert_eq!(
        trainable_params(&m.init_d(&ad)),
        dcgan_d + 10 * (128 * 49 + 1)
    );
    // The class is G's input: the same z with another label gives another image.
    let g = m.init_g(&dev);
    let z = m.noise(2, &dev);
    let a = m.generate(&g, z.clone(), labels(vec![1, 1], &dev));
    let b = m.generate(&g, z, labels(vec![7, 7], &dev));
    assert!((a - b).abs().max().into_scalar::<f32>() > 1e-5);
}

#[test]
fn both_players_add_the_class_cross_entropy() {
    let _l = rng_lock();
    let dev = Device::flex();
    let mut m = Acgan::new(&config(8, 1, 4)).expect("valid");
    let d = m.init_d(&dev);
    let real = Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 0.5), &dev);
    let fake = Tensor::<4>::random([4, 1, 8, 8], Distribution::Normal(0.0, 0.5), &dev);
    let y = labels(vec![0, 1, 2, 3], &dev);
    let value = |l: &Losses, name: &str| -> f32 {
        l.parts
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone().into_scalar::<f32>())
            .unwrap_or_else(|| panic!("{name} logged"))
    };
    let total = |l: &Losses| l.total.clone().into_scalar::<f32>();
    m.cfg.fake_class_loss = true;
    m.cfg.class_weight = 1.0;
    let dl = m.d_loss(&d, real.clone(), fake.clone(), y.clone());
    let adv =
        Adversarial::NonSaturating.d_loss(d.forward(real.clone()).0, d.forward(fake.clone()).0);
    let (cr, cf) = (value(&dl, "class_real"), value(&dl, "class_fake"));
    // An untrained class head is near chance: cross-entropy ≈ ln 10.
    assert!(
        (cr - 10f32.ln()).abs() < 0.2 && (cf - 10f32.ln()).abs() < 0.2,
        "{cr} {cf}"
    );
    assert!((total(&dl) - (adv.into_scalar::<f32>() + cr + cf)).abs() < 1e-5);
    let gl = m.g_loss(&d, fake.clone(), y.clone());
    let gadv = Adversarial::NonSaturating.g_loss(d.forward(fake.clone()).0);
    assert!((total(&gl) - (gadv.into_scalar::<f32>() + value(&gl, "g_class"))).abs() < 1e-5);
    // Real-only classification drops the fake term; the weight scales both players' terms.
    m.cfg.fake_class_loss = false;
    m.cfg.class_weight = 2.0;
    let dl = m.d_loss(&d, real, fake.clone(), y.clone());
    assert!(dl.parts.iter().all(|(n, _)| *n != "class_fake"));
    assert!((value(&dl, "class_real") - 2.0 * cr).abs() < 1e-5);
    let g2 = m.g_loss(&d, fake, y);
    assert!((value(&g2, "g_class") - 2.0 * value(&gl, "g_class")).abs() < 1e-5);
}

#[test]
fn one_step_moves_every_trained_tensor() {
    let _l = rng_lock();
    let c = config(8, 1, 4);
    assert_one_step_moves_all::<AcganGame>(&c, batches(&c, labelled_toy_images(16, 1, 8, 10)));
    let c = config(28, 3, 4);
    assert_one_step_moves_all::<AcganGame>(&c, batches(&c, labelled_toy_images(8, 3, 28, 10)));
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let _l = rng_lock();
    let c = config(16, 3, 4);
    assert_game_round_trip::<AcganGame>(&c, batches(&c, labelled_toy_images(8, 3, 16, 10)));
}

#[test]
fn sample_class_draws_that_class_from_a_tiny_trained_model() {
    let _l = rng_lock();
    assert_class_sampling::<AcganGame>(
        &[
            "model.g_filters=16",
            "model.d_filters=16",
            "model.latent_dim=8",
        ],
        300,
    );
}

use burn::tensor::Distribution;
use zoo_core::gan::{label_tensor as labels, trainable_params};
use zoo_core::nn::Weighted;

use crate::nets::{DNorm, Projection};
use zoo_train::testing::{
    assert_class_sampling, assert_game_round_trip, assert_one_step_moves_all, batches,
    labelled_toy_images, rng_lock,
};

use super::*;

fn config(size: usize, channels: usize, filters: usize) -> RunConfig<CganConfig> {
    let mut cfg = Cgan::defaults();
    cfg.data.image_size = size;
    cfg.data.channels = channels;
    cfg.model.g_filters = filters;
    cfg.model.d_filters = filters;
    cfg.model.latent_dim = 8;
    cfg.train.batch_size = 4;
    cfg
}

#[test]
fn mnist_classes_shapes_and_sizes() {
    let _l = rng_lock();
    let dev = Device::flex();
    let m = Cgan::new(&Cgan::defaults()).expect("valid");
    assert_eq!(
        m.class_names(),
        ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]
    );
    for (size, channels) in [(8, 1), (28, 1), (32, 3)] {
        let m = Cgan::new(&config(size, channels, 4)).expect("valid");
        let (g, d) = (m.init_g(&dev), m.init_d(&dev));
        let y = labels(vec![0, 3, 9], &dev);
        let x = m.generate(&g, m.noise(3, &dev), y.clone());
        assert_eq!(x.dims(), [3, channels, size, size]);
        assert_eq!(d.forward(x, y).dims(), [3, 1]);
    }
    // 28×28: DCGAN's G fed z and a 32-wide class embedding, its batch norms' γ and β
    // replaced by tables of 10 classes × (128 + 64) channels each.
    let m = Cgan::new(&Cgan::defaults()).expect("valid");
    let ad = Device::flex().autodiff();
    let convs = (100 + 32) * 128 * 49 + 128 * 64 * 16 + 64 * 16;
    assert_eq!(
        trainable_params(&m.init_g(&ad)),
        convs + 10 * 32 + 2 * 10 * (128 + 64)
    );
}

#[test]
fn the_projection_term_is_the_inner_product_of_the_class_embedding_and_the_features() {
    let _l = rng_lock();
    let dev = Device::flex();
    let cases = [
        (DNorm::Batch, Projection::Flat),
        (DNorm::Spectral, Projection::Flat),
        (DNorm::Batch, Projection::Pooled),
    ];
    for (norm, projection) in cases {
        let mut c = config(16, 1, 4);
        c.model.d_norm = norm;
        c.model.projection = projection;
        let m = Cgan::new(&c).expect("valid");
        let d = m.init_d(&dev).valid();
        let x = Tensor::<4>::random([4, 1, 16, 16], Distribution::Normal(0.0, 1.0), &dev);
        let y = labels(vec![0, 1, 2, 9], &dev);
        let (psi, proj) = d.terms(x.clone(), y.clone());
        // ψ does not see the label; the projection does, and D is their sum.
        let (psi2, proj2) = d.terms(x.clone(), labels(vec![5, 5, 5, 5], &dev));
        psi.clone().into_data().assert_eq(&psi2.into_data(), true);
        let moved = (proj.clone() - proj2).abs().max().into_scalar::<f32>();
        assert!(moved > 1e-6, "the label changes the projection ({moved})");
        let logits = d.forward(x.clone(), y.clone());
        logits.into_data().assert_approx_eq::<f32>(
            &(psi + proj.clone()).into_data(),
            burn::tensor::Tolerance::absolute(1e-6),
        );
        // By hand: the (normalised) embedding row of each label dotted with φ(x).
        let rows = match &d.embed {
            nets::DLinear::Spectral(e) => {
                let sigma = e.sigma(e.inner.weight_matrix());
                e.inner.weight.val().select(0, y) / sigma.unsqueeze_dim(0)
            }
            nets::DLinear::Plain(e) => e.weight.val().select(0, y),
        };
        let phi = d.features(x);
        let phi = match projection {
            Projection::Flat => phi,
            // [N, C·4·4] in channel-major order: each channel's 16 values summed.
            Projection::Pooled => phi.reshape([4, 8, 16]).sum_dim(2).reshape([4, 8]),
        };
        let by_hand = (rows * phi).sum_dim(1);
        proj.into_data().assert_approx_eq::<f32>(
            &by_hand.into_data(),
            burn::tensor::Tolerance::absolute(1e-5),
        );
    }
}

#[test]
fn one_step_moves_every_trained_tensor() {
    let _l = rng_lock();
    // Non-saturating: under the hinge loss, while every margin is active (the first step),
    // the gradient of ψ's bias is exactly -1 + 1 = 0, so that one tensor would rightly stay.
    let config = |size, channels, filters| {
        let mut c = config(size, channels, filters);
        c.model.loss = Adversarial::NonSaturating;
        c
    };
    let c = config(8, 1, 4);
    assert_one_step_moves_all::<CganGame>(&c, batches(&c, labelled_toy_images(16, 1, 8, 10)));
    let c = config(28, 3, 4);
    assert_one_step_moves_all::<CganGame>(&c, batches(&c, labelled_toy_images(8, 3, 28, 10)));
}

#[test]
fn checkpoint_round_trip_is_bit_exact() {
    let _l = rng_lock();
    let c = config(16, 3, 4);
    assert_game_round_trip::<CganGame>(&c, batches(&c, labelled_toy_images(8, 3, 16, 10)));
}

#[test]
fn sample_class_draws_that_class_from_a_tiny_trained_model() {
    let _l = rng_lock();
    assert_class_sampling::<CganGame>(
        &[
            "model.g_filters=16",
            "model.d_filters=16",
            "model.latent_dim=8",
        ],
        400,
    );
}

//! LSGAN (Mao et al. 2017, "Least Squares Generative Adversarial Networks").
//!
//! The discriminator's output is linear (no sigmoid) and both players minimise squared errors:
//! `D: ½E[(D(x) − b)²] + ½E[(D(G(z)) − a)²]`, `G: ½E[(D(G(z)) − c)²]` (the core's
//! [`Adversarial::LeastSquares`]). The paper gives two codings: a = −1, b = 1, c = 0 (b − c = 1,
//! b − a = 2, which minimises the Pearson χ² divergence; the default here) and a = 0, b = c = 1
//! (`--set model.loss.a=0 --set model.loss.c=1`). The networks are DCGAN's, reused from
//! `zoo-dcgan`, with DCGAN's optimiser defaults: Adam β1 = 0.5, D at 2e-4 (the paper's LSUN
//! settings) and G at 4e-4 (measured in the README; the paper used lr 1e-3 on some datasets:
//! `--set optim.g.lr=1e-3 --set optim.d.lr=1e-3`).

use zoo_core::loss::Adversarial;
use zoo_dcgan::{ConvModel, Flavor};

/// LSGAN's flavour of the convolutional GAN.
#[derive(Debug, Clone, Copy)]
pub struct LsganFlavor;

impl Flavor for LsganFlavor {
    const NAME: &'static str = "lsgan";
    const ABOUT: &'static str =
        "Mao et al. 2017: DCGAN networks, least-squares loss (a=-1, b=1, c=0), linear D output";
    const LOSS: Adversarial = Adversarial::LEAST_SQUARES;
}

/// LSGAN.
pub type Lsgan = ConvModel<LsganFlavor>;

#[cfg(test)]
mod tests {
    use burn::prelude::*;
    use zoo_core::gan::GanModel;
    use zoo_train::testing::{assert_one_step_moves_both, rng_lock, toy_images};

    use super::*;

    #[test]
    fn defaults_to_least_squares_on_dcgan_networks() {
        let cfg = Lsgan::defaults();
        assert_eq!(cfg.model.loss, Adversarial::LEAST_SQUARES);
        // DCGAN's optimiser defaults: G at twice D's rate.
        assert_eq!((cfg.optim.g.lr, cfg.optim.d.lr), (4e-4, 2e-4));
        assert_eq!(Lsgan::NAME, "lsgan");
        // The same networks as DCGAN (one type, no copy).
        let m = Lsgan::new(&cfg).expect("valid");
        let g: zoo_dcgan::Generator = m.init_g(&Device::flex());
        assert!(g.num_params() > 0);
    }

    #[test]
    fn one_step_moves_both_players_with_either_coding() {
        let _l = rng_lock();
        let mut cfg = Lsgan::defaults();
        cfg.data.image_size = 8;
        cfg.model.g_filters = Some(4);
        cfg.model.d_filters = 4;
        cfg.train.batch_size = 4;
        assert_one_step_moves_both::<Lsgan>(&cfg, toy_images(8, 1, 8));
        cfg.model.loss = Adversarial::LeastSquares {
            a: 0.0,
            b: 1.0,
            c: 1.0,
        };
        assert_one_step_moves_both::<Lsgan>(&cfg, toy_images(8, 1, 8));
    }
}

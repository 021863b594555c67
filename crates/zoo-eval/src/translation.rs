//! `zoo eval` of an image-to-image run, for any model with the [`Translate`] capability: cycle
//! consistency on held-out images, and, for a domain pair with a known true mapping
//! (`zoo data pair`), the error against it and whether zoo's MNIST classifier gives a digit
//! and its translation the same label.

use anyhow::Result;
use burn::prelude::*;
use zoo_core::config::{DatasetKind, RunConfig};
use zoo_core::data::ImageSet;
use zoo_core::data::pair::{Mapping, TranslationError, read_pair_info, translation_error};
use zoo_core::game::{Direction, Game, Translator};

use crate::classifier::{self, Classifier};
use crate::eval::TranslationEval;

/// Images per forward pass.
const CHUNK: usize = 64;

/// Running sums of one direction.
#[derive(Default)]
struct Sums {
    n: f64,
    cycle: f64,
    l1: f64,
    mse: f64,
    identity: f64,
    agree: f64,
}

impl Sums {
    fn error(&self) -> TranslationError {
        TranslationError {
            l1: self.l1 / self.n,
            psnr: -10.0 * (self.mse / self.n).max(1e-12).log10(),
            identity_l1: self.identity / self.n,
        }
    }
}

fn scalar(t: Tensor<1>) -> f64 {
    t.into_scalar::<f32>().to_f64()
}

fn labels(net: &Classifier, x: Tensor<4>) -> Vec<i64> {
    net.forward(x)
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .expect("converted to i64")
}

/// What one direction is scored with.
struct Scoring<'a> {
    mapping: Option<Mapping>,
    net: Option<&'a Classifier>,
}

/// One direction: translate `set`, reconstruct, and score. `source_is_mapped`: the source
/// domain is the mapped (e.g. inverted) one, so the classifier sees it mapped back.
fn direction<M: Game>(
    t: &dyn Translator<M>,
    g: &M::G,
    dir: Direction,
    set: &ImageSet,
    s: &Scoring,
    source_is_mapped: bool,
    device: &Device,
) -> Sums {
    let mut sums = Sums::default();
    let idx: Vec<usize> = (0..set.len).collect();
    for chunk in idx.chunks(CHUNK) {
        let x = set.tensor(chunk, device);
        let (y, rec) = t.translate(g, dir, x.clone());
        let k = chunk.len() as f64;
        sums.n += k;
        sums.cycle += scalar((rec - x.clone()).abs().mean()) / 2.0 * k;
        let Some(m) = s.mapping else { continue };
        let e = translation_error(m, x.clone(), y.clone());
        sums.l1 += e.l1 * k;
        sums.mse += 10f64.powf(-e.psnr / 10.0) * k;
        sums.identity += e.identity_l1 * k;
        if let Some(net) = s.net {
            // Show the classifier digits in its own (A) style.
            let (src, out) = if source_is_mapped {
                (m.apply(x), y)
            } else {
                (x, m.apply(y))
            };
            let a = labels(net, src);
            let b = labels(net, out);
            sums.agree += a.iter().zip(&b).filter(|(p, q)| p == q).count() as f64;
        }
    }
    sums
}

/// Scores the generators `g` of a translating model on up to `n` held-out images per domain.
pub fn evaluate<M: Game>(
    t: &dyn Translator<M>,
    g: &M::G,
    cfg: &RunConfig<M::Config>,
    n: usize,
    device: &Device,
) -> Result<TranslationEval> {
    let held = t.held_out(cfg, n)?;
    let pair = match &held.root {
        Some(r) => read_pair_info(r)?,
        None => None,
    };
    let mapping = pair.as_ref().map(|p| p.mapping);
    let digits = mapping.is_some() && cfg.data.image_size == 28 && held.a.channels == 1;
    let net = if digits {
        Some(classifier::load_or_train(DatasetKind::Mnist, None, device)?.0)
    } else {
        None
    };
    let s = Scoring {
        mapping,
        net: net.as_ref(),
    };
    let fwd = direction(t, g, Direction::AToB, &held.a, &s, false, device);
    let bwd = direction(t, g, Direction::BToA, &held.b, &s, true, device);
    Ok(TranslationEval {
        model: M::NAME.to_string(),
        run: std::path::PathBuf::new(),
        step: 0,
        images: (held.a.len, held.b.len),
        cycle_l1_a: fwd.cycle / fwd.n,
        cycle_l1_b: bwd.cycle / bwd.n,
        mapping: mapping.map(|m| format!("{m:?}").to_lowercase()),
        a2b: mapping.map(|_| fwd.error()),
        b2a: mapping.map(|_| bwd.error()),
        label_agreement_a2b: net.as_ref().map(|_| fwd.agree / fwd.n),
        label_agreement_b2a: net.as_ref().map(|_| bwd.agree / bwd.n),
    })
}

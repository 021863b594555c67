//! Every random stream of zoo, in one place.
//!
//! Randomness is reproducible because each use draws from its own stream: a seed is derived as
//! [`mix`]`(run seed, stream id)` (or `mix(seed, step)` for the per-step device RNG), so a new
//! use never shifts the numbers of an old one. A new stream takes a new id here; changing an id
//! changes every run that uses it.

/// Weight initialisation of both networks (`mix(seed, INIT)`).
pub const INIT: u64 = 0x1417;
/// The fixed noise behind the sample grids of a run.
pub const FIXED_NOISE: u64 = 0xF1CED;
/// `zoo sample`'s noise.
pub const SAMPLE: u64 = 0x5A4_91E;
/// `zoo eval`'s noise (and the real points of the 2-D mixtures' floor).
pub const EVAL: u64 = 0xE7A1;
/// The samples scored during training (`train.eval_every`).
pub const WATCH: u64 = 0x3A7C4;
/// The training images the image metrics embed (`mix(seed, REFERENCE_TRAIN)`).
pub const REFERENCE_TRAIN: u64 = 1;
/// The test images of the real-data floor.
pub const REFERENCE_TEST: u64 = 2;
/// Image-to-image data: B's draws and the augmentations (random crops and flips), xor-ed
/// into the seed.
pub const AUGMENT: u64 = 0xC1C1E;
/// The classifier's weight initialisation.
pub const CLASSIFIER_INIT: u64 = 0xC1A55;
/// The points of a 2-D mixture training set (`mix(TOY_POINTS, points)`).
pub const TOY_POINTS: u64 = 0x0707;

/// SplitMix64-style mixing of a seed with a stream id or a counter: distinct inputs give
/// uncorrelated seeds.
pub fn mix(seed: u64, n: u64) -> u64 {
    let mut z = seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

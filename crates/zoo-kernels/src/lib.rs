//! zoo-kernels: zoo's own CPU kernels, the only `unsafe` code of the workspace. It may depend on
//! burn, gemm, rayon and rand, and on nothing of zoo's: every other crate builds on it.
//!
//! Faster training steps on the `flex` CPU backend: ops whose burn default (or whose autodiff
//! composition) is slow there, each with its own forward and backward on flex and a fallback to
//! burn's op on every other device or layout, so models stay backend-agnostic.
//!
//! - [`FastConv`]: convolutions and transposed convolutions as one GEMM per block of whole
//!   images, 3×3 stride-1 ones by Winograd's F(2×2, 3×3) (burn's layers and checkpoints, zoo's
//!   kernels);
//! - [`leaky_relu`]: one branch-free pass forward and backward (under autodiff burn composes it
//!   from a comparison, a product and a `mask_where`, whose flex loop branches per element);
//! - [`Adam`]: burn's Adam as one fused pass per parameter tensor, same state records;
//! - [`FastNorm`]: batch norm (training) and instance norm in two passes each way;
//! - [`reflect_pad`]: reflection padding as one copy forward and one fold backward;
//! - [`FastDropout`]: dropout masks from a fast seeded generator instead of one ChaCha draw per
//!   element;
//! - [`FastLinear`]: linear layers as one GEMM each way;
//! - [`cpu`]: the vector units chosen at run time, the GEMM work counted, the machine's GEMM
//!   peak (`zoo bench`'s GFLOP/s columns).
//!
//! Every op is tested against burn's for values and gradients (Adam bit for bit, dropout by its
//! statistics, the rest on random shapes and the models' layers); `ops_profile`
//! (an example of this crate) times them against burn's, and `benches/NOTES.md` logs the effect
//! of each on `zoo bench`.

mod act;
mod adam;
mod conv;
pub mod cpu;
mod dropout;
mod linear;
mod norm;
mod pad;
mod sums;

pub use act::leaky_relu;
pub use adam::Adam;
pub use conv::{FastConv, try_conv2d};
pub use dropout::FastDropout;
pub use linear::{FastLinear, linear};
pub use norm::FastNorm;
pub use pad::reflect_pad;

use std::mem::MaybeUninit;
use std::sync::{Mutex, MutexGuard};

use burn::backend::flex::FlexTensor;
#[cfg(test)]
use burn::tensor::Tensor;
use burn::tensor::TensorData;
use rayon::prelude::*;

/// burn's CPU RNG is process-global: tests that draw random numbers serialise on this lock
/// (one lock for every crate of the workspace; `zoo_train::testing` re-exports it).
static RNG_LOCK: Mutex<()> = Mutex::new(());

/// Takes the RNG lock (a poisoned lock is still a lock).
pub fn rng_lock() -> MutexGuard<'static, ()> {
    RNG_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Work below this many elements stays on the calling thread.
const PAR_MIN: usize = 1 << 15;

/// Fills `out` in rows of `len` with `f(row index, row)`, in parallel when it is large.
fn rows<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync + Send) {
    if len == 0 {
        return;
    }
    if out.len() < PAR_MIN {
        out.chunks_mut(len).enumerate().for_each(|(i, r)| f(i, r));
    } else {
        let min = (PAR_MIN / len).max(1);
        out.par_chunks_mut(len)
            .with_min_len(min)
            .enumerate()
            .for_each(|(i, r)| f(i, r));
    }
}

/// A new buffer of `len` floats that `fill` writes in full, without first zeroing it as
/// `vec![0.0; len]` would: for a buffer that is written in full anyway, that fill is one more
/// pass over memory, on the calling thread alone (memset was 4-6% of the DCGAN 28² step in
/// perf; without it the first writes pay part of that, so the gain is at 2 threads,
/// `benches/NOTES.md` #21).
///
/// In this crate's tests the buffer holds NaN before `fill` runs, so that a kernel that leaves
/// an element unwritten fails the comparisons with burn's ops instead of passing on whatever
/// the allocator's memory held.
///
/// # Safety
/// `fill` must write every element of the slice it is given.
#[allow(unsafe_code)]
unsafe fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out = unwritten(len);
    fill(&mut out.spare_capacity_mut()[..len]);
    // SAFETY: the caller's `fill` wrote every element of `0..len`.
    unsafe { out.set_len(len) };
    out
}

/// [`filled`] in rows of `len` by `f(row index, row)`, in parallel when it is large.
///
/// # Safety
/// `f` must write every element of each row it is given.
#[allow(unsafe_code)]
unsafe fn rows_new(
    total: usize,
    len: usize,
    f: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    assert!(len > 0 || total == 0, "rows_new: rows of no length");
    // SAFETY: the rows cover `0..total` (`rows` splits the whole slice), and the caller's `f`
    // writes every element of each.
    unsafe { filled(total, |out| rows(out, len, f)) }
}

/// An empty buffer with room for `len` floats, to be written in full through
/// `spare_capacity_mut` before `set_len` (NaN there in this crate's tests: see [`filled`]).
fn unwritten(len: usize) -> Vec<f32> {
    #[allow(unused_mut)]
    let mut out = Vec::with_capacity(len);
    #[cfg(test)]
    out.spare_capacity_mut()[..len].fill(MaybeUninit::new(f32::NAN));
    out
}

fn contiguous(t: &FlexTensor) -> FlexTensor {
    t.to_contiguous()
}

fn slice(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>()
        .expect("a contiguous f32 flex tensor (checked by the caller)")
}

fn tensor(data: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(data, shape))
}

/// `a` equals `b` to 1e-4 of `b`'s largest magnitude (at least 1): the tolerance of the tests
/// that compare zoo's ops with burn's.
#[cfg(test)]
fn close<const D: usize>(a: Tensor<D>, b: Tensor<D>, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
    let err = (a - b).abs().max().into_scalar::<f32>();
    assert!(
        err <= 1e-4 * scale,
        "{what}: max error {err} (scale {scale})"
    );
}

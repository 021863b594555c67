//! Leaky ReLU as one pass forward and one backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, activation};

use std::mem::MaybeUninit;

use super::{contiguous, rows_new, slice, tensor};

/// `x` where `x ≥ 0`, `slope · x` elsewhere: burn's `leaky_relu`, as one branch-free pass
/// (forward and backward) for f32 tensors on flex, burn's op elsewhere.
pub fn leaky_relu<const D: usize>(x: Tensor<D>, slope: f64) -> Tensor<D> {
    try_fast(x.clone(), slope as f32).unwrap_or_else(|| activation::leaky_relu(x, slope))
}

fn try_fast<const D: usize>(x: Tensor<D>, slope: f32) -> Option<Tensor<D>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    if x.device().is_autodiff() {
        let (xt, node) = x.try_into_primitive::<Autodiff<Flex>>().ok()?.into_parts();
        let xt = contiguous(&xt);
        let y = forward(&xt, slope);
        let out = match LeakyRelu
            .prepare::<NoCheckpointing>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((xt, slope), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
    } else {
        let xt = contiguous(&x.try_into_primitive::<Flex>().ok()?);
        Some(Tensor::from_primitive::<Flex>(forward(&xt, slope)))
    }
}

/// The forward on a contiguous f32 tensor.
fn forward(x: &FlexTensor, slope: f32) -> FlexTensor {
    let src = slice(x);
    // SAFETY: `scale_by_sign` writes every element of its row.
    #[allow(unsafe_code)]
    let out = unsafe {
        rows_new(src.len(), CHUNK, |i, row| {
            scale_by_sign(
                row,
                &src[i * CHUNK..][..row.len()],
                &src[i * CHUNK..][..row.len()],
                slope,
            );
        })
    };
    tensor(out, x.layout().shape().to_vec())
}

/// `out = v · (1 where x ≥ 0, else slope)`: the forward with `v = x`, the backward with
/// `v = dy`. Written as a product by a selected constant so that it compiles to vector blends
/// (a NaN `x` gives NaN in the forward, as burn's op does).
fn scale_by_sign(out: &mut [MaybeUninit<f32>], x: &[f32], v: &[f32], slope: f32) {
    let n = out.len();
    let (x, v) = (&x[..n], &v[..n]);
    for k in 0..n {
        out[k].write(v[k] * if x[k] >= 0.0 { 1.0 } else { slope });
    }
}

/// Elements per task.
const CHUNK: usize = 1 << 14;

#[derive(Debug)]
struct LeakyRelu;

impl Backward<Flex, 1> for LeakyRelu {
    type State = (FlexTensor, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let (x, slope) = ops.state;
        let xs = slice(&x);
        let dys = slice(&dy);
        // SAFETY: `scale_by_sign` writes every element of its row.
        #[allow(unsafe_code)]
        let dx = unsafe {
            rows_new(xs.len(), CHUNK, |i, row| {
                let n = row.len();
                scale_by_sign(row, &xs[i * CHUNK..][..n], &dys[i * CHUNK..][..n], slope);
            })
        };
        grads.register::<Flex>(node.id, tensor(dx, x.layout().shape().to_vec()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng_lock;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn leaky_relu_matches_burn() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(11);
        for (shape, slope) in [
            ([3, 5, 7, 9], 0.2),
            ([64, 64, 14, 14], 0.01),
            ([1, 1, 1, 1], 0.5),
        ] {
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            // Exact zeros take the `x ≥ 0` side in both.
            let x = x
                .mask_fill(
                    Tensor::<4>::random(shape, Distribution::Uniform(0.0, 1.0), &device)
                        .lower_elem(0.1),
                    0.0,
                )
                .require_grad();
            let y = try_fast(x.clone(), slope as f32).expect("the fast path applies");
            let y_ref = activation::leaky_relu(x.clone(), slope);
            assert_eq!(
                y.clone().into_data(),
                y_ref.clone().into_data(),
                "{shape:?}"
            );
            let probe = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let g = (y * probe.clone()).sum().backward();
            let g_ref = (y_ref * probe).sum().backward();
            let (dx, dx_ref) = (
                x.grad(&g).expect("a gradient"),
                x.grad(&g_ref).expect("a gradient"),
            );
            assert_eq!(dx.into_data(), dx_ref.into_data(), "{shape:?}");
            let plain = x.inner();
            let y = try_fast(plain.clone(), slope as f32).expect("the fast path applies");
            assert_eq!(
                y.into_data(),
                activation::leaky_relu(plain, slope).into_data()
            );
        }
    }
}

//! Linear layers as one GEMM each way on flex: burn's `Linear`, zoo's kernel (the gemm crate
//! with explicit strides, so neither gradient copies a transposed operand), counted in
//! [`crate::cpu::gemm_flops`].
//!
//! | pass | |
//! |---|---|
//! | forward | `y = x · W + b` |
//! | input gradient | `dx = dy · Wᵀ` |
//! | weight gradient | `dW = xᵀ · dy` |
//!
//! The bias is added (and its gradient summed) by burn's ops. Elsewhere than flex, or for
//! other dtypes, the layer's own `forward` runs.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::Linear;
use burn::tensor::{DType, Tensor};

use super::conv::gemm;
use super::{contiguous, slice, tensor};

/// A linear layer with a one-GEMM forward and backward on flex.
pub trait FastLinear {
    /// The layer's forward on `[.., d_input]`: zoo's GEMMs on flex, the layer's own `forward`
    /// elsewhere.
    fn fast_forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D>;
}

impl FastLinear for Linear {
    fn fast_forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// `x [.., d_input] · weight [d_input, d_output] + bias` (burn's `linear`, for layers that
/// transform their weight first, such as spectral norm): zoo's GEMMs on flex, burn's op
/// elsewhere.
pub fn linear<const D: usize>(
    x: Tensor<D>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
) -> Tensor<D> {
    let dims = x.dims();
    let [d_in, d_out] = weight.dims();
    if dims[D - 1] != d_in {
        // burn's own shape error.
        return burn::tensor::module::linear(x, weight, bias);
    }
    let rows: usize = dims[..D - 1].iter().product();
    let Some(y) = matmul(x.clone().reshape([rows, d_in]), weight.clone()) else {
        return burn::tensor::module::linear(x, weight, bias);
    };
    let y = match bias {
        Some(b) => y + b.unsqueeze_dim::<2>(0),
        None => y,
    };
    let mut out = dims;
    out[D - 1] = d_out;
    y.reshape(out)
}

#[derive(Debug)]
struct MatMul;

/// `x [m, k] · w [k, n]` on flex (plain or autodiff, f32), or `None` elsewhere.
fn matmul(x: Tensor<2>, w: Tensor<2>) -> Option<Tensor<2>> {
    if x.dtype() != DType::F32 || w.dtype() != DType::F32 {
        return None;
    }
    if x.device().is_autodiff() {
        let xp = x.try_into_primitive::<Autodiff<Flex>>().ok()?;
        let wp = w.try_into_primitive::<Autodiff<Flex>>().ok()?;
        let (xt, x_node) = xp.into_parts();
        let (wt, w_node) = wp.into_parts();
        let (xt, wt) = (contiguous(&xt), contiguous(&wt));
        let out = match MatMul
            .prepare::<NoCheckpointing>([x_node, w_node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = forward(&xt, &wt);
                prep.finish((xt, wt), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(forward(&xt, &wt)),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
    } else {
        let xt = contiguous(&x.try_into_primitive::<Flex>().ok()?);
        let wt = contiguous(&w.try_into_primitive::<Flex>().ok()?);
        Some(Tensor::from_primitive::<Flex>(forward(&xt, &wt)))
    }
}

/// `[m, k]` and `[k, n]` of contiguous operands.
fn dims(x: &FlexTensor, w: &FlexTensor) -> (usize, usize, usize) {
    let (xs, ws) = (x.layout().shape(), w.layout().shape());
    (xs[0], ws[1], xs[1])
}

fn forward(x: &FlexTensor, w: &FlexTensor) -> FlexTensor {
    let (m, n, k) = dims(x, w);
    tensor(
        gemm(m, n, k, slice(x), (k, 1), slice(w), (n, 1)),
        vec![m, n],
    )
}

impl Backward<Flex, 2> for MatMul {
    type State = (FlexTensor, FlexTensor);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, w) = ops.state;
        let (m, n, k) = dims(&x, &w);
        if let Some(node) = node_x {
            // dx [m, k] = dy [m, n] · wᵀ: wᵀ's (row, column) strides are (1, n).
            let dx = gemm(m, k, n, slice(&dy), (n, 1), slice(&w), (1, n));
            grads.register::<Flex>(node.id, tensor(dx, vec![m, k]));
        }
        if let Some(node) = node_w {
            // dw [k, n] = xᵀ · dy [m, n]: xᵀ's strides are (1, k).
            let dw = gemm(k, n, m, slice(&x), (1, k), slice(&dy), (n, 1));
            grads.register::<Flex>(node.id, tensor(dw, vec![k, n]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::close;
    use super::*;
    use crate::cpu::gemm_flops_this_thread;
    use crate::rng_lock;
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, Distribution};

    /// Values and the gradients of x, weight and bias against burn's `Linear::forward` under a
    /// random linear loss, with and without a bias, on 2-D and 3-D inputs; the plain path; and
    /// the counted work: three GEMMs of 2·m·n·k each for a tracked forward and backward.
    #[test]
    fn linear_matches_burn_and_counts_its_work() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(7);
        for (rows, d_in, d_out, bias) in
            [(64, 100, 256, true), (5, 3, 1, false), (1, 784, 512, true)]
        {
            let layer = LinearConfig::new(d_in, d_out).with_bias(bias).init(&device);
            let x = Tensor::<3>::random([rows, 2, d_in], Distribution::Normal(0.0, 1.0), &device)
                .require_grad();
            let before = gemm_flops_this_thread();
            let y = layer.fast_forward(x.clone());
            let y_ref = layer.forward(x.clone());
            close(y.clone(), y_ref.clone(), "forward");
            let probe = Tensor::<3>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
            let g = (y * probe.clone()).sum().backward();
            let counted = gemm_flops_this_thread() - before;
            let g_ref = (y_ref * probe).sum().backward();
            let m = (rows * 2) as u64;
            assert_eq!(
                counted,
                3 * 2 * m * d_in as u64 * d_out as u64,
                "{rows}×{d_in}→{d_out}"
            );
            let grad = |t: Tensor<3>, g| t.grad(g).expect("x has a gradient");
            close(
                grad(x.clone(), &g),
                grad(x.clone(), &g_ref),
                "input gradient",
            );
            let w = |g| layer.weight.grad(g).expect("the weight has a gradient");
            close(w(&g), w(&g_ref), "weight gradient");
            if let Some(b) = &layer.bias {
                close(
                    b.grad(&g).expect("a bias gradient"),
                    b.grad(&g_ref).expect("a bias gradient"),
                    "bias gradient",
                );
            }
            let plain = layer.valid();
            let xp = x.inner();
            close(
                plain.fast_forward(xp.clone()),
                plain.forward(xp),
                "inference",
            );
        }
    }

    /// A frozen layer (no weight gradient) on an input that needs one runs two GEMMs, and an
    /// untracked forward one.
    #[test]
    fn linear_counts_only_the_gradients_it_computes() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(8);
        let layer = LinearConfig::new(32, 16).init(&device).no_grad();
        let one = 2 * 8 * 32 * 16;
        let x = Tensor::<2>::random([8, 32], Distribution::Normal(0.0, 1.0), &device);
        let before = gemm_flops_this_thread();
        let _ = layer.fast_forward(x.clone()).sum().into_scalar::<f32>();
        assert_eq!(gemm_flops_this_thread() - before, one, "untracked");
        let x = x.require_grad();
        let before = gemm_flops_this_thread();
        let g = layer.fast_forward(x.clone()).sum().backward();
        assert_eq!(gemm_flops_this_thread() - before, 2 * one, "frozen weight");
        assert!(x.grad(&g).is_some() && layer.weight.grad(&g).is_none());
    }
}

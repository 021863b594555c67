//! Instance normalisation as one pass forward and one backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::nn::{BatchNorm, InstanceNorm};
use burn::tensor::{DType, Tensor, TensorData};
use std::sync::Arc;

use rayon::prelude::*;

use super::sums::{Sums, sums, sums2};
use super::{PAR_MIN, contiguous, rows_new, slice, tensor};

/// A normalisation layer with a fast forward on flex.
pub trait FastNorm {
    /// The layer's forward: one pass each way on flex, the layer's own `forward` elsewhere.
    fn fast_forward(&self, x: Tensor<4>) -> Tensor<4>;
    /// The one-pass forward, or `None` where it does not apply.
    fn try_fast(&self, x: Tensor<4>) -> Option<Tensor<4>>;
}

impl FastNorm for InstanceNorm {
    fn fast_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.try_fast(x.clone()).unwrap_or_else(|| self.forward(x))
    }

    /// burn's instance norm composes it from means, a square, a division and their backward
    /// ops (a dozen passes over the image each way); here each `[h, w]` plane is normalised
    /// with its biased variance in one pass, and the affine part (if any) stays burn's.
    fn try_fast(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        let [_, c, h, w] = x.dims();
        if c != self.num_channels || h * w == 0 {
            return None;
        }
        let y = plane_norm(x, self.epsilon as f32)?;
        match (self.affine, &self.gamma, &self.beta) {
            (false, _, _) => Some(y),
            (true, Some(g), Some(b)) => {
                Some(y * g.val().reshape([1, c, 1, 1]) + b.val().reshape([1, c, 1, 1]))
            }
            _ => None,
        }
    }
}

/// Each `[h, w]` plane of `x` minus its mean, over √(biased variance + eps).
fn plane_norm(x: Tensor<4>, eps: f32) -> Option<Tensor<4>> {
    if x.dtype() != DType::F32 {
        return None;
    }
    let [_, _, h, w] = x.dims();
    let plane = h * w;
    if x.device().is_autodiff() {
        let (xt, node) = x.try_into_primitive::<Autodiff<Flex>>().ok()?.into_parts();
        let (y, inv_std) = forward(&contiguous(&xt), plane, eps);
        let out = match PlaneNorm
            .prepare::<NoCheckpointing>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((y.clone(), Arc::new(inv_std), plane), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
    } else {
        let xt = contiguous(&x.try_into_primitive::<Flex>().ok()?);
        Some(Tensor::from_primitive::<Flex>(forward(&xt, plane, eps).0))
    }
}

/// The normalised tensor and each plane's 1/σ.
fn forward(x: &FlexTensor, plane: usize, eps: f32) -> (FlexTensor, Vec<f32>) {
    let xs = slice(x);
    let stats = |src: &[f32]| {
        let n = plane as f64;
        let mean = (sums(src, |v| [v])[0] / n) as f32;
        let var = sums(src, |v| [(v - mean) * (v - mean)])[0] / n;
        (mean, 1.0 / (var as f32 + eps).sqrt())
    };
    let stats: Vec<(f32, f32)> = if xs.len() < PAR_MIN {
        xs.chunks(plane).map(stats).collect()
    } else {
        xs.par_chunks(plane).map(stats).collect()
    };
    // SAFETY: every element of each row is written.
    #[allow(unsafe_code)]
    let y = unsafe {
        rows_new(xs.len(), plane, |p, out| {
            let (mean, inv) = stats[p];
            for (o, &v) in out.iter_mut().zip(&xs[p * plane..][..plane]) {
                o.write((v - mean) * inv);
            }
        })
    };
    let inv_std = stats.into_iter().map(|(_, inv)| inv).collect();
    (tensor(y, x.layout().shape().to_vec()), inv_std)
}

/// Backward of [`plane_norm`]: `dx = (dy − mean(dy) − y · mean(dy · y)) / σ` per plane.
#[derive(Debug)]
struct PlaneNorm;

impl Backward<Flex, 1> for PlaneNorm {
    type State = (FlexTensor, Arc<Vec<f32>>, usize);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let (y, inv_std, plane) = ops.state;
        let (ys, dys) = (slice(&y), slice(&dy));
        // SAFETY: every element of each row is written.
        #[allow(unsafe_code)]
        let dx = unsafe {
            rows_new(ys.len(), plane, |p, out| {
                let (y, dy) = (&ys[p * plane..][..plane], &dys[p * plane..][..plane]);
                let n = plane as f64;
                let [s, sy] = sums2(dy, y, |g, v| [g, g * v]);
                let (mean_dy, mean_dyy) = ((s / n) as f32, (sy / n) as f32);
                let inv = inv_std[p];
                for ((o, &g), &v) in out.iter_mut().zip(dy).zip(y) {
                    o.write((g - mean_dy - v * mean_dyy) * inv);
                }
            })
        };
        grads.register::<Flex>(node.id, tensor(dx, y.layout().shape().to_vec()));
    }
}

impl FastNorm for BatchNorm {
    fn fast_forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.try_fast(x.clone()).unwrap_or_else(|| self.forward(x))
    }

    /// The training forward (batch statistics, running statistics updated exactly as burn's
    /// `BatchNorm::forward` does) as one statistics pass and one normalising pass, and a
    /// backward of two passes; burn's runs a dozen, with transposed copies. Inference (and
    /// frozen layers) take burn's path, which is a single pass already.
    fn try_fast(&self, x: Tensor<4>) -> Option<Tensor<4>> {
        let device = x.device();
        let [_, c, h, w] = x.dims();
        if !(device.is_autodiff() && self.training.is_enabled())
            || c != self.gamma.dims()[0]
            || h * w == 0
        {
            return None;
        }
        let (y, mean, var) =
            channel_norm(x, self.gamma.val(), self.beta.val(), self.epsilon as f32)?;
        let running = |state: &burn::module::RunningState<Tensor<1>>, batch: Vec<f32>| {
            let batch = Tensor::<1>::from_data(TensorData::new(batch, [c]), &device);
            let updated = state
                .value_sync()
                .to_device(&device)
                .mul_scalar(1.0 - self.momentum)
                .add(batch.mul_scalar(self.momentum));
            state.update(updated.detach());
        };
        running(&self.running_mean, mean);
        running(&self.running_var, var);
        Some(y)
    }
}

/// Batch norm with the batch's statistics: the output, and each channel's mean and biased
/// variance.
fn channel_norm(
    x: Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    eps: f32,
) -> Option<(Tensor<4>, Vec<f32>, Vec<f32>)> {
    if x.dtype() != DType::F32 || gamma.dtype() != DType::F32 || beta.dtype() != DType::F32 {
        return None;
    }
    let [b, c, h, w] = x.dims();
    let g = ChannelGeom { b, c, plane: h * w };
    let (xt, x_node) = x.try_into_primitive::<Autodiff<Flex>>().ok()?.into_parts();
    let (gt, g_node) = gamma
        .try_into_primitive::<Autodiff<Flex>>()
        .ok()?
        .into_parts();
    let (bt, b_node) = beta
        .try_into_primitive::<Autodiff<Flex>>()
        .ok()?
        .into_parts();
    let (xt, gt, bt) = (contiguous(&xt), contiguous(&gt), contiguous(&bt));
    let xs = slice(&xt);
    let moments = channel_moments(xs, g);
    let stats: Vec<(f32, f32)> = moments
        .iter()
        .map(|&(m, v)| (m, 1.0 / (v + eps).sqrt()))
        .collect();
    let (gs, bs) = (slice(&gt), slice(&bt));
    // SAFETY: every element of each row is written.
    #[allow(unsafe_code)]
    let y = unsafe {
        rows_new(xs.len(), g.plane, |p, out| {
            let ci = p % g.c;
            let (mean, inv) = stats[ci];
            let (scale, shift) = (inv * gs[ci], bs[ci]);
            for (o, &v) in out.iter_mut().zip(&xs[p * g.plane..][..g.plane]) {
                o.write((v - mean) * scale + shift);
            }
        })
    };
    let y = tensor(y, vec![b, c, h, w]);
    let out = match ChannelNorm
        .prepare::<NoCheckpointing>([x_node, g_node, b_node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish((xt, gt, Arc::new(stats.clone()), g), y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    let (mean, var) = moments.into_iter().unzip();
    Some((Tensor::from_primitive::<Autodiff<Flex>>(out), mean, var))
}

/// `[b, c, plane]` in NCHW order.
#[derive(Debug, Clone, Copy)]
struct ChannelGeom {
    b: usize,
    c: usize,
    plane: usize,
}

/// Each channel's mean and biased variance, over the batch and the plane.
fn channel_moments(xs: &[f32], g: ChannelGeom) -> Vec<(f32, f32)> {
    let stat = |ci: usize| {
        let planes = || (0..g.b).map(move |bi| &xs[(bi * g.c + ci) * g.plane..][..g.plane]);
        let n = (g.b * g.plane) as f64;
        let mut sum = Sums::new();
        planes().for_each(|p| sum.add(p, |v| [v]));
        let mean = (sum.total()[0] / n) as f32;
        let mut sq = Sums::new();
        planes().for_each(|p| sq.add(p, |v| [(v - mean) * (v - mean)]));
        (mean, (sq.total()[0] / n) as f32)
    };
    if xs.len() < PAR_MIN {
        (0..g.c).map(stat).collect()
    } else {
        (0..g.c).into_par_iter().map(stat).collect()
    }
}

/// Backward of [`channel_norm`]: with x̂ = (x − mean)/σ,
/// `dx = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂))`, `dγ = Σ dy · x̂`, `dβ = Σ dy` per channel.
#[derive(Debug)]
struct ChannelNorm;

impl Backward<Flex, 3> for ChannelNorm {
    type State = (FlexTensor, FlexTensor, Arc<Vec<(f32, f32)>>, ChannelGeom);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_g, node_b] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let (x, gamma, stats, g) = ops.state;
        let (xs, dys, gs) = (slice(&x), slice(&dy), slice(&gamma));
        // Per channel: Σ dy and Σ dy · x̂.
        let channel_sums = |ci: usize| {
            let (mean, inv) = stats[ci];
            let mut acc = Sums::new();
            for bi in 0..g.b {
                let at = (bi * g.c + ci) * g.plane;
                acc.add2(&dys[at..][..g.plane], &xs[at..][..g.plane], |d, v| {
                    [d, d * (v - mean)]
                });
            }
            let [s, sx] = acc.total();
            (s, sx * inv as f64)
        };
        let sums: Vec<(f64, f64)> = if xs.len() < PAR_MIN {
            (0..g.c).map(channel_sums).collect()
        } else {
            (0..g.c).into_par_iter().map(channel_sums).collect()
        };
        if let Some(node) = node_x {
            let n = (g.b * g.plane) as f64;
            // SAFETY: every element of each row is written.
            #[allow(unsafe_code)]
            let dx = unsafe {
                rows_new(xs.len(), g.plane, |p, out| {
                    let ci = p % g.c;
                    let (mean, inv) = stats[ci];
                    let (mean_dy, mean_dyx) = ((sums[ci].0 / n) as f32, (sums[ci].1 / n) as f32);
                    let scale = gs[ci] * inv;
                    let at = p * g.plane;
                    let rows = out
                        .iter_mut()
                        .zip(&dys[at..][..g.plane])
                        .zip(&xs[at..][..g.plane]);
                    for ((o, &d), &v) in rows {
                        o.write(scale * (d - mean_dy - (v - mean) * inv * mean_dyx));
                    }
                })
            };
            grads.register::<Flex>(node.id, tensor(dx, x.layout().shape().to_vec()));
        }
        if let Some(node) = node_g {
            let dg = sums.iter().map(|&(_, sx)| sx as f32).collect();
            grads.register::<Flex>(node.id, tensor(dg, vec![g.c]));
        }
        if let Some(node) = node_b {
            let db = sums.iter().map(|&(s, _)| s as f32).collect();
            grads.register::<Flex>(node.id, tensor(db, vec![g.c]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::close;
    use super::*;
    use crate::rng_lock;
    use burn::module::Module;
    use burn::nn::InstanceNormConfig;
    use burn::tensor::{Device, Distribution};

    /// Batch norm in training: values, the gradients of x, γ and β, and the running statistics
    /// after several steps against burn's; inference and frozen layers take burn's path.
    #[test]
    fn batch_norm_matches_burn() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(15);
        for shape in [[4, 3, 5, 7], [64, 64, 14, 14], [2, 8, 1, 1]] {
            let c = shape[1];
            // Two layers with the same γ and β and their own running statistics (a clone
            // would share them).
            let gamma = Tensor::<1>::random([c], Distribution::Normal(1.0, 0.5), &device);
            let beta = Tensor::<1>::random([c], Distribution::Normal(0.0, 0.5), &device);
            let layer = || {
                let mut l = burn::nn::BatchNormConfig::new(c)
                    .with_momentum(0.3)
                    .init(&device);
                l.gamma = burn::module::Param::from_tensor(gamma.clone());
                l.beta = burn::module::Param::from_tensor(beta.clone());
                l
            };
            let (a, b) = (layer(), layer());
            for step in 0..3 {
                let x = Tensor::<4>::random(shape, Distribution::Normal(3.0, 2.0), &device)
                    .require_grad();
                let y = a.try_fast(x.clone()).expect("the fast path applies");
                let y_ref = b.forward(x.clone());
                let what = format!("{shape:?} step {step}");
                close(y.clone(), y_ref.clone(), &format!("{what}: forward"));
                let probe = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
                let g = (y * probe.clone()).sum().backward();
                let g_ref = (y_ref * probe).sum().backward();
                close(
                    x.grad(&g).expect("grad"),
                    x.grad(&g_ref).expect("grad"),
                    &format!("{what}: input gradient"),
                );
                for (p, q, name) in [
                    (a.gamma.val(), b.gamma.val(), "gamma"),
                    (a.beta.val(), b.beta.val(), "beta"),
                ] {
                    let (ga, gb) = (p.grad(&g).expect("grad"), q.grad(&g_ref).expect("grad"));
                    close(
                        ga.reshape([1, 1, 1, c]),
                        gb.reshape([1, 1, 1, c]),
                        &format!("{what}: {name}"),
                    );
                }
            }
            let (va, vb) = (a.valid(), b.valid());
            for (p, q, name) in [
                (
                    va.running_mean.value(),
                    vb.running_mean.value(),
                    "running mean",
                ),
                (
                    va.running_var.value(),
                    vb.running_var.value(),
                    "running variance",
                ),
            ] {
                close(
                    p.reshape([1, 1, 1, c]),
                    q.reshape([1, 1, 1, c]),
                    &format!("{shape:?}: {name}"),
                );
            }
            let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            assert!(
                va.try_fast(x.clone().inner()).is_none(),
                "inference takes burn's path"
            );
            assert!(
                a.clone().freeze().try_fast(x).is_none(),
                "a frozen layer takes burn's path"
            );
        }
    }

    /// Values, input gradients and (affine) parameter gradients against burn's instance norm.
    #[test]
    fn instance_norm_matches_burn() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(13);
        for (shape, affine) in [
            ([2, 3, 5, 7], false),
            ([1, 256, 16, 16], false),
            ([3, 4, 1, 9], true),
            ([2, 64, 33, 31], true),
        ] {
            let norm = InstanceNormConfig::new(shape[1])
                .with_affine(affine)
                .init(&device);
            let norm = if affine {
                let c = shape[1];
                let mut n = norm;
                n.gamma = Some(burn::module::Param::from_tensor(Tensor::random(
                    [c],
                    Distribution::Normal(1.0, 0.5),
                    &device,
                )));
                n.beta = Some(burn::module::Param::from_tensor(Tensor::random(
                    [c],
                    Distribution::Normal(0.0, 0.5),
                    &device,
                )));
                n
            } else {
                norm
            };
            // Offset and scaled inputs, as a convolution's output would be.
            let x =
                Tensor::<4>::random(shape, Distribution::Normal(3.0, 2.0), &device).require_grad();
            let y = norm.try_fast(x.clone()).expect("the fast path applies");
            let y_ref = norm.forward(x.clone());
            let what = format!("{shape:?} affine {affine}");
            close(y.clone(), y_ref.clone(), &format!("{what}: forward"));
            let probe = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let g = (y * probe.clone()).sum().backward();
            let g_ref = (y_ref * probe).sum().backward();
            close(
                x.grad(&g).expect("grad"),
                x.grad(&g_ref).expect("grad"),
                &format!("{what}: input gradient"),
            );
            if let (Some(gamma), Some(beta)) = (&norm.gamma, &norm.beta) {
                for (p, name) in [(gamma.val(), "gamma"), (beta.val(), "beta")] {
                    let (a, b) = (p.grad(&g).expect("grad"), p.grad(&g_ref).expect("grad"));
                    close(
                        a.reshape([1, 1, 1, shape[1]]),
                        b.reshape([1, 1, 1, shape[1]]),
                        name,
                    );
                }
            }
            let plain = norm.valid();
            let x = x.inner();
            close(
                plain.try_fast(x.clone()).expect("fast"),
                plain.forward(x),
                &format!("{what}: inference"),
            );
        }
    }
}

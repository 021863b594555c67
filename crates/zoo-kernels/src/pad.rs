//! Reflection padding as one copy forward and one fold backward.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::ops::PadMode;
use burn::tensor::{DType, Tensor};

use super::{contiguous, rows, rows_new, slice, tensor};

/// `x` padded by `p` on each side of both spatial axes by reflection (the edge itself not
/// repeated): burn's `pad(.., PadMode::Reflect)`, as one copy (and one fold backward) for f32
/// tensors on flex, burn's op elsewhere.
pub fn reflect_pad(x: Tensor<4>, p: usize) -> Tensor<4> {
    try_fast(x.clone(), p).unwrap_or_else(|| x.pad((p, p, p, p), PadMode::Reflect))
}

fn try_fast(x: Tensor<4>, p: usize) -> Option<Tensor<4>> {
    let [b, c, h, w] = x.dims();
    // Reflection needs p < h and p < w (burn panics otherwise: let it say so).
    if x.dtype() != DType::F32 || p >= h || p >= w {
        return None;
    }
    let g = PadGeom { n: b * c, h, w, p };
    if x.device().is_autodiff() {
        let (xt, node) = x.try_into_primitive::<Autodiff<Flex>>().ok()?.into_parts();
        let y = forward(&contiguous(&xt), g);
        let out = match ReflectPad
            .prepare::<NoCheckpointing>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(g, y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some(Tensor::from_primitive::<Autodiff<Flex>>(out))
    } else {
        let xt = contiguous(&x.try_into_primitive::<Flex>().ok()?);
        Some(Tensor::from_primitive::<Flex>(forward(&xt, g)))
    }
}

/// `n` planes of `h × w`, padded by `p`.
#[derive(Debug, Clone, Copy)]
struct PadGeom {
    n: usize,
    h: usize,
    w: usize,
    p: usize,
}

impl PadGeom {
    /// The source index along an axis of length `len` of padded position `i`.
    fn source(i: usize, len: usize, p: usize) -> usize {
        let i = i as isize - p as isize;
        let len = len as isize;
        let r = if i < 0 {
            -i
        } else if i >= len {
            2 * (len - 1) - i
        } else {
            i
        };
        r as usize
    }
}

fn forward(x: &FlexTensor, g: PadGeom) -> FlexTensor {
    let (hp, wp) = (g.h + 2 * g.p, g.w + 2 * g.p);
    let xs = slice(x);
    // SAFETY: every padded row is written in full: its middle from the source row, its `p`
    // elements either side from their reflections.
    #[allow(unsafe_code)]
    let y = unsafe {
        rows_new(g.n * hp * wp, hp * wp, |k, out| {
            let src = &xs[k * g.h * g.w..][..g.h * g.w];
            for (yy, row) in out.chunks_mut(wp).enumerate() {
                let s = &src[PadGeom::source(yy, g.h, g.p) * g.w..][..g.w];
                row[g.p..g.p + g.w].write_copy_of_slice(s);
                for j in 0..g.p {
                    row[j].write(s[g.p - j]);
                    row[g.p + g.w + j].write(s[g.w - 2 - j]);
                }
            }
        })
    };
    tensor(
        y,
        vec![x.layout().shape()[0], x.layout().shape()[1], hp, wp],
    )
}

/// Backward of [`reflect_pad`]: each padded position's gradient added to its source.
#[derive(Debug)]
struct ReflectPad;

impl Backward<Flex, 1> for ReflectPad {
    type State = PadGeom;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let dy = contiguous(&grads.consume::<Flex>(&ops.node));
        let Some(node) = node else { return };
        let g = ops.state;
        let (hp, wp) = (g.h + 2 * g.p, g.w + 2 * g.p);
        let dys = slice(&dy);
        let mut dx = vec![0.0; g.n * g.h * g.w];
        rows(&mut dx, g.h * g.w, |k, out| {
            let src = &dys[k * hp * wp..][..hp * wp];
            for (yy, row) in src.chunks(wp).enumerate() {
                let d = &mut out[PadGeom::source(yy, g.h, g.p) * g.w..][..g.w];
                for (o, &v) in d.iter_mut().zip(&row[g.p..g.p + g.w]) {
                    *o += v;
                }
                for j in 0..g.p {
                    d[g.p - j] += row[j];
                    d[g.w - 2 - j] += row[g.p + g.w + j];
                }
            }
        });
        let shape = dy.layout().shape();
        grads.register::<Flex>(node.id, tensor(dx, vec![shape[0], shape[1], g.h, g.w]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng_lock;
    use burn::tensor::{Device, Distribution};

    /// Values and gradients equal burn's reflection padding exactly (copies and sums of the
    /// same numbers), on shapes from 2×2 planes up and every padding up to size − 1.
    #[test]
    fn reflect_pad_matches_burn() {
        let _lock = rng_lock();
        let device = Device::flex().autodiff();
        device.seed(14);
        for shape in [[1, 1, 2, 2], [2, 3, 5, 7], [1, 4, 9, 4], [1, 64, 16, 16]] {
            for p in 0..shape[2].min(shape[3]) {
                let x = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device)
                    .require_grad();
                let y = try_fast(x.clone(), p).expect("the fast path applies");
                let y_ref = x.clone().pad((p, p, p, p), PadMode::Reflect);
                assert_eq!(
                    y.clone().into_data(),
                    y_ref.clone().into_data(),
                    "{shape:?} p {p}"
                );
                let probe = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
                let g = (y * probe.clone()).sum().backward();
                let g_ref = (y_ref * probe).sum().backward();
                let (a, b) = (x.grad(&g).expect("grad"), x.grad(&g_ref).expect("grad"));
                let err = (a - b).abs().max().into_scalar::<f32>();
                assert!(err < 1e-5, "{shape:?} p {p}: gradient error {err}");
                let plain = x.inner();
                let y = try_fast(plain.clone(), p).expect("fast");
                assert_eq!(
                    y.into_data(),
                    plain.pad((p, p, p, p), PadMode::Reflect).into_data()
                );
            }
        }
        assert!(try_fast(Tensor::<4>::zeros([1, 1, 3, 3], &device), 3).is_none());
    }
}

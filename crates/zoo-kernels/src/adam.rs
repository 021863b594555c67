//! Adam as one fused pass per parameter tensor.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::optim::{AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, Optimizer};
use burn::tensor::{DType, Device, Tensor, TensorData};
use rayon::prelude::*;

use super::PAR_MIN;

/// burn's Adam (no weight decay, no AMSGrad) with the same state records, so checkpoints and
/// `ModuleOptimizer` work unchanged. On flex f32 tensors one pass per parameter tensor updates
/// both moments and the parameter, in place when it owns them, with burn's arithmetic in
/// burn's order (the tests check bitwise equality); elsewhere burn's own Adam runs. burn's
/// version is a dozen tensor ops each with its own pass and temporary, a fifth of the MLP GAN's
/// step.
#[derive(Clone)]
pub struct Adam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    reference: burn::optim::Adam,
}

impl Adam {
    /// Adam with these moment decays and denominator epsilon.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32) -> Self {
        let reference = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .build();
        Self {
            beta_1,
            beta_2,
            epsilon,
            reference,
        }
    }

    /// Whether the fused pass applies to these tensors: f32 on flex, outside autodiff.
    fn fusable<const D: usize>(t: &Tensor<D>, g: &Tensor<D>, s: &Option<AdamState<D>>) -> bool {
        let on_flex = |t: &Tensor<D>| {
            t.dtype() == DType::F32
                && !t.device().is_autodiff()
                && matches!(
                    t.device().as_dispatch(),
                    burn::backend::DispatchDevice::Flex(_)
                )
        };
        on_flex(t)
            && on_flex(g)
            && s.as_ref().is_none_or(|s| {
                let m = &s.momentum;
                m.max_moment_2.is_none() && on_flex(&m.moment_1) && on_flex(&m.moment_2)
            })
    }
}

/// The values of a flex tensor as an owned vector (no copy when it is the only owner of
/// contiguous data).
fn owned<const D: usize>(t: Tensor<D>) -> Option<Vec<f32>> {
    let t: FlexTensor = t.try_into_primitive::<Flex>().ok()?;
    t.into_data().try_into_vec::<f32>().ok()
}

fn flex<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(FlexTensor::from_data(TensorData::new(values, shape)))
}

impl Optimizer for Adam {
    type State<const D: usize> = AdamState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        if !Self::fusable(&tensor, &grad, &state) {
            return self.reference.step(lr, tensor, grad, state);
        }
        let shape = tensor.dims();
        let n = tensor.shape().num_elements();
        let (time, m1, m2) = match state {
            Some(s) => (
                s.momentum.time + 1,
                owned(s.momentum.moment_1),
                owned(s.momentum.moment_2),
            ),
            None => (1, Some(vec![0.0; n]), Some(vec![0.0; n])),
        };
        let (Some(mut p), Some(g), Some(mut m1), Some(mut m2)) =
            (owned(tensor), owned(grad), m1, m2)
        else {
            unreachable!("fusable() checked that all four are f32 flex tensors")
        };
        let first = time == 1;
        let (b1, b2) = (self.beta_1, self.beta_2);
        let (f1, f2) = (1.0 - b1, 1.0 - b2);
        let t = time as i32;
        let bc2 = (1.0 - b2.powi(t)).sqrt();
        let cf = bc2 / (1.0 - b1.powi(t));
        let eps = self.epsilon * bc2;
        let lr = lr as f32;
        let update = |p: &mut [f32], m1: &mut [f32], m2: &mut [f32], g: &[f32]| {
            for (((p, m1), m2), &g) in p.iter_mut().zip(m1).zip(m2).zip(g) {
                // burn: m1·β1 + g·(1−β1); m2·β2 + g²·(1−β2) (the first step without the decay).
                (*m1, *m2) = if first {
                    (g * f1, (g * g) * f2)
                } else {
                    (*m1 * b1 + g * f1, *m2 * b2 + (g * g) * f2)
                };
                let step = (*m1 * cf) / (m2.sqrt() + eps);
                *p -= step * lr;
            }
        };
        if n < PAR_MIN {
            update(&mut p, &mut m1, &mut m2, &g);
        } else {
            const CHUNK: usize = 1 << 14;
            p.par_chunks_mut(CHUNK)
                .zip(m1.par_chunks_mut(CHUNK))
                .zip(m2.par_chunks_mut(CHUNK))
                .zip(g.par_chunks(CHUNK))
                .for_each(|(((p, m1), m2), g)| update(p, m1, m2, g));
        }
        let momentum = AdaptiveMomentumState::new(time, flex(m1, shape), flex(m2, shape));
        (flex(p, shape), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        burn::optim::Adam::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng_lock;
    use burn::tensor::Distribution;

    /// Eight steps on a few shapes (one large enough to run in parallel), with gradients of all
    /// magnitudes: the parameters and both moments equal burn's Adam bit for bit.
    #[test]
    fn fused_adam_equals_burns_adam() {
        let _lock = rng_lock();
        let device = Device::flex();
        device.seed(12);
        let fused = Adam::new(0.5, 0.999, 1e-8);
        let reference = AdamConfig::new()
            .with_beta_1(0.5)
            .with_beta_2(0.999)
            .with_epsilon(1e-8)
            .build();
        for shape in [[1, 1], [7, 13], [300, 400]] {
            let mut p = Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let (mut q, mut s_fused, mut s_ref) = (p.clone(), None, None);
            for step in 0..8 {
                let scale = 10f64.powi(step - 4);
                let g = Tensor::<2>::random(shape, Distribution::Normal(0.0, scale), &device);
                let lr = 2e-4 * (1.0 + step as f64);
                (p, s_fused) = fused.step(lr, p, g.clone(), s_fused);
                (q, s_ref) = reference.step(lr, q, g, s_ref);
                let (a, b) = (
                    s_fused.clone().expect("state"),
                    s_ref.clone().expect("state"),
                );
                assert_eq!(a.momentum.time, b.momentum.time);
                for (x, y, what) in [
                    (p.clone(), q.clone(), "parameter"),
                    (a.momentum.moment_1, b.momentum.moment_1, "first moment"),
                    (a.momentum.moment_2, b.momentum.moment_2, "second moment"),
                ] {
                    assert_eq!(
                        x.into_data(),
                        y.into_data(),
                        "{what} of {shape:?} at step {step}"
                    );
                }
            }
        }
    }

    /// Autodiff tensors are not fused (they go to burn's Adam, which handles them).
    #[test]
    fn autodiff_tensors_are_not_fused() {
        let device = Device::flex().autodiff();
        let t = Tensor::<1>::zeros([3], &device);
        assert!(!Adam::fusable(&t, &t.clone(), &None));
        let plain = Tensor::<1>::zeros([3], &Device::flex());
        assert!(Adam::fusable(&plain, &plain.clone(), &None));
    }
}

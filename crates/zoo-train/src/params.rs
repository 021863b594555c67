//! Parameters of a model's networks: seeded initialisation with stable ids, and loading a
//! module's record.

use std::path::Path;

use anyhow::Result;
use burn::prelude::*;
use zoo_core::game::Game;
use zoo_core::streams::{INIT, mix};

/// Initialises the networks from the run's seed. burn draws a parameter's initial value
/// lazily, at its first use; both networks are materialised here (G, then D, in visiting
/// order), so that nothing drawn later from the device RNG changes them.
pub fn init_networks<M: Game>(model: &M, seed: u64, device: &Device) -> (M::G, M::D) {
    device.seed(mix(seed, INIT));
    let g = number_params(model.init_g(device), 1 << 32);
    let d = number_params(model.init_d(device), 2 << 32);
    materialize(&g);
    materialize(&d);
    (g, d)
}

/// Draws every lazily initialised float parameter of a module, in visiting order.
fn materialize<T: Module>(module: &T) {
    struct Touch;
    impl burn::module::ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    module.visit(&mut Touch);
}

/// Gives a module's parameters the ids `base`, `base + 1`, … in visiting order. burn draws
/// parameter ids at random and writes them into checkpoints (and keys optimizer state by
/// them), so without this two identical runs would write files that differ in those bytes.
pub fn number_params<T: Module>(module: T, base: u64) -> T {
    use burn::module::{Param, ParamId};
    struct Number(u64);
    impl Number {
        fn next(&mut self) -> ParamId {
            self.0 += 1;
            ParamId::from(self.0 - 1)
        }
    }
    impl burn::module::ModuleMapper for Number {
        fn map_float<const D: usize>(&mut self, mut p: Param<Tensor<D>>) -> Param<Tensor<D>> {
            p.id = self.next();
            p
        }
        fn map_int<const D: usize>(
            &mut self,
            mut p: Param<Tensor<D, Int>>,
        ) -> Param<Tensor<D, Int>> {
            p.id = self.next();
            p
        }
        fn map_bool<const D: usize>(
            &mut self,
            mut p: Param<Tensor<D, Bool>>,
        ) -> Param<Tensor<D, Bool>> {
            p.id = self.next();
            p
        }
    }
    module.map(&mut Number(base))
}

/// Loads a module's record into `m`.
pub fn load_module<T: Module>(m: T, path: &Path) -> Result<T> {
    m.try_load_file(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load {}: {e}; the checkpoint is damaged: delete its folder and zoo \
             uses the one before",
            path.display()
        )
    })
}

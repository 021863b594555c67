//! Parameters of a model's networks: seeded initialisation with stable ids, and loading a
//! module's record.

use std::path::Path;

use anyhow::{Result, ensure};
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

/// The parameter count of a module whose parameters may not be drawn yet (burn draws a
/// parameter at its first use): read from their shapes only, so nothing is allocated.
pub fn lazy_param_count<T: Module>(m: &T) -> u128 {
    struct Count(u128);
    impl burn::module::ModuleVisitor for Count {
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            self.0 += param.lazy_shape().num_elements() as u128;
        }
    }
    let mut c = Count(0);
    m.visit(&mut c);
    c.0
}

/// Loads a module's record into `m`, and checks that every parameter is finite. A file that
/// does not load is told apart by the checkpoint's manifest: damaged (it no longer matches its
/// sha256) or intact, and then written for another config (config.toml edited after training,
/// or a checkpoint copied from another run). The advice never destroys a checkpoint.
pub fn load_module<T: Module>(m: T, path: &Path) -> Result<T> {
    let m = m.try_load_file(path).map_err(|e| {
        let folder = path.parent().unwrap_or(Path::new("."));
        let ck = crate::run::Checkpoint {
            path: folder.to_path_buf(),
        };
        let has_manifest = folder.join(crate::run::MANIFEST).is_file();
        let why = match ck.verify() {
            Err(damage) => format!(
                "{damage:#}. Training and sampling use the newest intact checkpoint \
                 (--checkpoint picks one for zoo eval)"
            ),
            Ok(()) if has_manifest => "the file is intact (it matches its checkpoint's \
                 manifest), so this checkpoint does not match the run's config.toml: was the \
                 config edited after training, or the checkpoint copied from another run? Restore \
                 the config it was trained with"
                .to_string(),
            Ok(()) => "the file is damaged, or written for another config (config.toml edited \
                 after training, or a checkpoint from another run)"
                .to_string(),
        };
        anyhow::anyhow!("cannot load {}: {e}; {why}", path.display())
    })?;
    ensure!(
        crate::checkpoint::params_finite(&m),
        "{} holds non-finite parameters (NaN or infinity): the run diverged before this \
         checkpoint, or the file was altered; use an earlier checkpoint",
        path.display()
    );
    Ok(m)
}

#!/usr/bin/env bash
# Behaviour check for refactors: trains every model 20 steps from its full default config
# (`zoo config M > M.toml; zoo train M --config M.toml --steps 20`) and prints the sha256 of each
# checkpoint file. Run it with the binary before and after a change and diff the outputs: equal
# hashes mean byte-identical checkpoints. CycleGAN's default is 256 px (about 5 minutes here).
# usage: benches/identity.sh ZOO_BINARY OUTDIR      (data from $ZOO_DATA, default ../shared/data)
set -euo pipefail
Z=$(realpath "$1"); OUT=$2
export ZOO_DATA=${ZOO_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}
rm -rf "$OUT"; mkdir -p "$OUT"; cd "$OUT"
"$Z" data pair mnist-invert --out pair --train 200 --test 20 --data-dir "$ZOO_DATA/mnist" >/dev/null
for m in $("$Z" list | awk '{print $1}'); do
  "$Z" config "$m" > "$m.toml"
  extra=(); [ "$m" = cyclegan ] && extra=(--domains pair)
  "$Z" train "$m" --config "$m.toml" --steps 20 --out "runs-$m" "${extra[@]}" > "$m.log" 2>&1
  (cd runs-"$m"/*/checkpoints/step_000020 && sha256sum -- * | sed "s|^|$m |")
done

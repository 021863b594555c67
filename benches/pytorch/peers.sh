#!/usr/bin/env bash
# The peer half of the README's quality table: eriklindernoren/PyTorch-GAN's MNIST scripts
# (gan.py 3 epochs, dcgan.py and lsgan.py 2 epochs: 2,814 and 1,876 steps at batch 64) on
# several seeds, each through peer.py (unchanged, seeded, one thread), its 10,000 samples scored
# by `zoo eval --images`, then one markdown table: FD per seed and mean, precision / recall /
# classes, training seconds.
#
#   benches/pytorch/peers.sh PYTORCH_GAN_CHECKOUT OUT [SEED ...]     (seeds default: 1 2 3)
#   benches/pytorch/peers.sh --summary OUT                           (the table of finished jobs)
#
# Environment: PYTHON (a Python with torch, torchvision, numpy, pillow; default
# /opt/torchenv/bin/python), ZOO (default: target/release/zoo of this repository), ZOO_DATA
# (holds mnist/ with the four IDX .gz files; they are unpacked once into OUT/data, where the
# scripts' own relative path finds them), LANES (jobs side by side, default 2: one per core),
# MODELS (default "gan:3 dcgan:2 lsgan:2", script:epochs).
# Each job lives in OUT/<script>-s<seed>/: log, samples/, samples.json (peer.py's times), eval.json.
# The checkout is only read; nothing is written into this repository. Not part of zoo's build or
# tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-/opt/torchenv/bin/python}
ZOO=${ZOO:-$repo/target/release/zoo}
LANES=${LANES:-2}
MODELS=${MODELS:-gan:3 dcgan:2 lsgan:2}

summary() {
  python3 - "$1" <<'EOF'
import json, os, statistics, sys
out = sys.argv[1]
rows = {}
for name in sorted(os.listdir(out)):
    ev, tm = os.path.join(out, name, "eval.json"), os.path.join(out, name, "samples.json")
    if "-s" not in name or not (os.path.isfile(ev) and os.path.isfile(tm)):
        continue
    script, seed = name.rsplit("-s", 1)
    e, t = json.load(open(ev)), json.load(open(tm))
    e = e["samples"]  # zoo eval's report: the samples' metrics (beside "floor")
    rows.setdefault(script, []).append((int(seed), e, t))
if not rows:
    sys.exit(f"no finished jobs (eval.json and samples.json) under {out}")
print("| script, steps | FD (per seed) | mean | precision / recall / classes (per seed) | train s (per seed) |")
print("|---|---|---|---|---|")
for script, rs in sorted(rows.items()):
    rs.sort(key=lambda r: r[0])
    fd = [r[1]["fd"] for r in rs]
    prc = "; ".join(f"{r[1]['precision']:.3f} / {r[1]['recall']:.3f} / {r[1]['coverage']['classes_hit']}" for r in rs)
    steps = ", ".join(sorted({str(r[2]["g_steps"]) for r in rs}))
    secs = ", ".join(f"{r[2]['train_s']:.0f}" for r in rs)
    seeds = ", ".join(str(r[0]) for r in rs)
    print(f"| {script}.py, {steps} (seeds {seeds}) | {', '.join(f'{x:.2f}' for x in fd)} | "
          f"**{statistics.mean(fd):.2f}** | {prc} | {secs} |")
EOF
}

job() { # job OUT CHECKOUT SCRIPT SEED EPOCHS
  local out=$1 pg=$2 script=$3 seed=$4 epochs=$5
  local d=$out/$script-s$seed
  mkdir -p "$d/x"
  cd "$d/x" # the script reads ../../data/mnist and writes images/ here
  OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$here/peer.py" "$pg/implementations/$script/$script.py" \
    --seed "$seed" --threads 1 --out ../samples --n_epochs "$epochs" > ../log 2>&1 \
    || { echo "error: $script.py seed $seed failed; see $d/log" >&2; return 1; }
  "$ZOO" --threads 1 eval --images ../samples --dataset mnist --json ../eval.json > ../eval.txt 2>> ../log \
    || { echo "error: zoo eval of $script.py seed $seed failed; see $d/log" >&2; return 1; }
  echo "$(date +%T) done $script seed $seed: $(grep -m1 -i 'FD' ../eval.txt || true)"
}

case "${1:-}" in
  --summary) summary "${2:?usage: peers.sh --summary OUT}"; exit ;;
  --job) shift; job "$@"; exit ;;
  ""|-h|--help) sed -n '2,18p' "$0"; exit 2 ;;
esac
pg=$(cd "${1:?}" && pwd); mkdir -p "${2:?usage: peers.sh PYTORCH_GAN_CHECKOUT OUT [SEED ...]}"
out=$(cd "$2" && pwd); shift 2
seeds=("$@"); [ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
for m in $MODELS; do
  [ -f "$pg/implementations/${m%%:*}/${m%%:*}.py" ] || { echo "error: no implementations/${m%%:*}/${m%%:*}.py in $pg; give the PyTorch-GAN checkout" >&2; exit 1; }
done
[ -x "$ZOO" ] || { echo "error: no zoo binary at $ZOO; build it (cargo test --release --workspace --no-run) or set ZOO" >&2; exit 1; }
"$PYTHON" -c 'import torch, torchvision, numpy, PIL' || { echo "error: $PYTHON lacks torch/torchvision/numpy/pillow; set PYTHON" >&2; exit 1; }
raw=$out/data/mnist/MNIST/raw
if [ ! -f "$raw/t10k-labels-idx1-ubyte" ]; then
  src=${ZOO_DATA:-$repo/data}/mnist
  mkdir -p "$raw"
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
    gunzip -c "$src/$f.gz" > "$raw/$f.part" || { echo "error: cannot read $src/$f.gz; set ZOO_DATA to the folder holding mnist/" >&2; exit 1; }
    mv "$raw/$f.part" "$raw/$f"
  done
fi
for seed in "${seeds[@]}"; do for m in $MODELS; do echo "$out $pg ${m%%:*} $seed ${m##*:}"; done; done \
  | xargs -P "$LANES" -L 1 "$0" --job
summary "$out"

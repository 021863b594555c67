#!/usr/bin/env bash
# The peer half of the README's quality tables: eriklindernoren/PyTorch-GAN's MNIST scripts
# (gan.py 3 epochs, dcgan.py and lsgan.py 2 epochs: 2,814 and 1,876 steps at batch 64) on
# several seeds, each through peer.py (unchanged, seeded, one thread), its 10,000 samples scored
# by `zoo eval --images`, then one markdown table: FD per seed and mean, precision / recall /
# classes, training seconds and steps. With ZOO_MODELS, zoo's models run in the same queue (one
# thread each, `zoo eval RUN`), so both sides train under the same load; with MAX_SECONDS, every
# job stops after that much training (peer.py --max-seconds, zoo train --time-limit): the
# equal-wall-time table.
#
#   benches/pytorch/peers.sh PYTORCH_GAN_CHECKOUT OUT [SEED ...]     (seeds default: 1 2 3)
#   benches/pytorch/peers.sh --summary OUT                           (the table of finished jobs)
#   MAX_SECONDS=300 MODELS="dcgan:2" ZOO_MODELS="dcgan=dcgan" benches/pytorch/peers.sh PG OUT 1 2 3
#
# Environment: PYTHON (a Python with torch, torchvision, numpy, pillow; default
# /opt/torchenv/bin/python), ZOO (default: target/release/zoo of this repository), ZOO_DATA
# (holds mnist/ with the four IDX .gz files; they are unpacked once into OUT/data, where the
# scripts' own relative path finds them), LANES (jobs side by side, default 2: one per core),
# MODELS (default "gan:3 dcgan:2 lsgan:2", script:epochs[:max G steps]; "" for none),
# ZOO_MODELS (default none: NAME=MODEL[,KEY=VALUE...], e.g. "sngan-cpu=sngan,train.d_steps=1"),
# ZOO_STEPS (zoo's --steps; default 1876, or 1000000 under MAX_SECONDS), MAX_SECONDS.
# Each job lives in OUT/<script>-s<seed>/ or OUT/zoo-<name>-s<seed>/: log, samples/ or runs/,
# samples.json (training seconds and steps), eval.json.
# The checkout is only read; nothing is written into this repository. Not part of zoo's build or
# tests.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
PYTHON=${PYTHON:-/opt/torchenv/bin/python}
ZOO=${ZOO:-$repo/target/release/zoo}
LANES=${LANES:-2}
MODELS=${MODELS-gan:3 dcgan:2 lsgan:2}
ZOO_MODELS=${ZOO_MODELS:-}
MAX_SECONDS=${MAX_SECONDS:-}
if [ -n "$MAX_SECONDS" ]; then ZOO_STEPS=${ZOO_STEPS:-1000000}; else ZOO_STEPS=${ZOO_STEPS:-1876}; fi

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
print("| job | FD (per seed) | mean | precision / recall / classes (per seed) | train s (per seed) | steps (per seed) |")
print("|---|---|---|---|---|---|")
for script, rs in sorted(rows.items()):
    rs.sort(key=lambda r: r[0])
    fd = [r[1]["fd"] for r in rs]
    prc = "; ".join(f"{r[1]['precision']:.3f} / {r[1]['recall']:.3f} / {r[1]['coverage']['classes_hit']}" for r in rs)
    steps = ", ".join(str(r[2]["g_steps"]) for r in rs)
    secs = ", ".join(f"{r[2]['train_s']:.0f}" for r in rs)
    seeds = ", ".join(str(r[0]) for r in rs)
    base, _, k = script.partition("-k")  # "dcgan-k530": dcgan.py stopped at 530 G steps
    name = script if script.startswith("zoo-") else f"{base}.py" + (f" to {k} steps" if k else "")
    print(f"| {name} (seeds {seeds}) | {', '.join(f'{x:.2f}' for x in fd)} | "
          f"**{statistics.mean(fd):.2f}** | {prc} | {secs} | {steps} |")
EOF
}

job() { # job OUT CHECKOUT SCRIPT SEED EPOCHS [MAX_STEPS]
  local out=$1 pg=$2 script=$3 seed=$4 epochs=$5 steps=${6:-}
  local d=$out/$script${steps:+-k$steps}-s$seed
  mkdir -p "$d/x"
  cd "$d/x" # the script reads ../../data/mnist and writes images/ here
  OMP_WAIT_POLICY=PASSIVE "$PYTHON" "$here/peer.py" "$pg/implementations/$script/$script.py" \
    --seed "$seed" --threads 1 --out ../samples --n_epochs "$epochs" \
    ${MAX_SECONDS:+--max-seconds "$MAX_SECONDS"} ${steps:+--max-steps "$steps"} > ../log 2>&1 \
    || { echo "error: $script.py seed $seed failed; see $d/log" >&2; return 1; }
  "$ZOO" --threads 1 eval --images ../samples --dataset mnist --json ../eval.json > ../eval.txt 2>> ../log \
    || { echo "error: zoo eval of $script.py seed $seed failed; see $d/log" >&2; return 1; }
  echo "$(date +%T) done $script seed $seed: $(grep -m1 -i 'FD' ../eval.txt || true)"
}

zoo_job() { # zoo_job OUT NAME=MODEL[,KEY=VALUE...] SEED
  local out=$1 spec=$2 seed=$3
  local name=${spec%%=*} rest=${spec#*=}
  local model=${rest%%,*} d=$out/zoo-$name-s$seed sets=()
  local kv; IFS=, read -ra kv <<< "$rest"
  for x in "${kv[@]:1}"; do sets+=(--set "$x"); done
  rm -rf "$d"; mkdir -p "$d"
  "$ZOO" --threads 1 train "$model" --seed "$seed" --steps "$ZOO_STEPS" "${sets[@]}" \
    ${MAX_SECONDS:+--time-limit "$MAX_SECONDS"} --out "$d/runs" > "$d/train.txt" 2> "$d/log" \
    || { echo "error: zoo train $name seed $seed failed; see $d/log" >&2; return 1; }
  local run; run=$(sed -n 's/^run: //p' "$d/train.txt")
  "$ZOO" --threads 1 eval "$run" > "$d/eval.txt" 2>> "$d/log" && cp "$run/eval.json" "$d/eval.json" \
    || { echo "error: zoo eval of $name seed $seed failed; see $d/log" >&2; return 1; }
  # "steps: 1876/1876  time: 301.2s  ..." -> the peers' samples.json fields
  sed -n 's|^steps: \([0-9]*\)/[0-9]*  time: \([0-9.]*\)s.*|{"g_steps": \1, "train_s": \2}|p' \
    "$d/train.txt" > "$d/samples.json"
  echo "$(date +%T) done zoo $name seed $seed: $(grep -m1 -i 'FD' "$d/eval.txt" || true)"
}

case "${1:-}" in
  --summary) summary "${2:?usage: peers.sh --summary OUT}"; exit ;;
  --job) shift; job "$@"; exit ;;
  --zoo-job) shift; zoo_job "$@"; exit ;;
  ""|-h|--help) sed -n '2,25p' "$0"; exit 2 ;;
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
# One queue, a peer job then a zoo job per seed, so the two sides share the machine alike.
for seed in "${seeds[@]}"; do
  # No trailing blank on a line: xargs -L would join the next line to it.
  for m in $MODELS; do IFS=: read -r sc ep st <<< "$m"; echo "--job $out $pg $sc $seed $ep${st:+ $st}"; done
  for z in $ZOO_MODELS; do echo "--zoo-job $out $z $seed"; done
done | xargs -P "$LANES" -L 1 "$0"
summary "$out"

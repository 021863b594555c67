"""Runs one of eriklindernoren/PyTorch-GAN's MNIST scripts (gan.py, dcgan.py, lsgan.py) unchanged,
for the side-by-side quality tables of the README: seeded, on N threads, stopped after
--max-steps generator updates or --max-seconds of training if given (equal steps, equal wall
time), then N samples of its generator written as PNGs at the script's own size (gan.py 28x28,
dcgan.py and lsgan.py 32x32; `zoo eval --images DIR` resizes them to 28x28), in train mode as the
script draws its own samples, its trained G's state_dict as DIR.pt, and DIR.json with the
training seconds (from the first G update; with the setup: total_s) and the steps.

The script is read from a checkout outside this repository; it is exec'd as __main__ in the
current folder, so run it where `../../data/mnist/MNIST/raw/` holds the four unpacked IDX files
(the script's own relative path; torchvision finds them there and downloads nothing):

    git clone https://github.com/eriklindernoren/PyTorch-GAN /tmp/peer/pg
    mkdir -p /tmp/peer/jobs/dcgan-s1/x && cd /tmp/peer/jobs/dcgan-s1/x   # ../../data = /tmp/peer/jobs/data
    OMP_WAIT_POLICY=PASSIVE /opt/torchenv/bin/python /path/to/zoo/benches/pytorch/peer.py \
        /tmp/peer/pg/implementations/dcgan/dcgan.py --seed 1 --threads 1 --out ../samples \
        --n_epochs 2            # the script's own options follow
    zoo eval --images ../samples --dataset mnist

Not part of zoo's build or tests.
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np
import torch
from PIL import Image

p = argparse.ArgumentParser()
p.add_argument("script", help="the PyTorch-GAN script, e.g. .../implementations/dcgan/dcgan.py")
p.add_argument("--seed", type=int, required=True)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--out", required=True, help="folder for the samples (and OUT.json)")
p.add_argument("-n", type=int, default=10000, help="samples to write")
p.add_argument("--max-steps", type=int, help="stop after this many G updates")
p.add_argument("--max-seconds", type=float, help="stop after this much training")
a, rest = p.parse_known_args()
torch.set_num_threads(a.threads)
random.seed(a.seed)
np.random.seed(a.seed)
torch.manual_seed(a.seed)

class Stop(Exception):
    pass

state = {"steps": 0, "t0": None, "t1": None}
adam_step = torch.optim.Adam.step
def counted_step(self, *args, **kw):
    if self is g.get("optimizer_G") and state["t1"] is None:
        state["t1"] = time.time()  # the first G update: the training loop has begun
    r = adam_step(self, *args, **kw)
    if self is g.get("optimizer_G"):
        state["steps"] += 1
        el = time.time() - state["t1"]
        if (a.max_steps and state["steps"] >= a.max_steps) or (a.max_seconds and el >= a.max_seconds):
            raise Stop()
    return r
torch.optim.Adam.step = counted_step

sys.argv = [a.script] + rest
g = {"__name__": "__main__", "__file__": a.script}
src = compile(open(a.script).read(), a.script, "exec")
state["t0"] = time.time()
try:
    exec(src, g)
except Stop:
    pass
t_end = time.time()
total_s, train_s = t_end - state["t0"], t_end - (state["t1"] or t_end)
torch.optim.Adam.step = adam_step
gen, latent = g["generator"], g["opt"].latent_dim
os.makedirs(a.out, exist_ok=True)
torch.save(gen.state_dict(), a.out.rstrip("/") + ".pt")  # the trained G, kept whatever follows
k = 0
with torch.no_grad():
    while k < a.n:
        b = min(500, a.n - k)
        z = torch.from_numpy(np.random.normal(0, 1, (b, latent)).astype(np.float32))
        x = gen(z)  # (b, 1, side, side): 28 for gan.py, the script's --img_size (32) for dcgan.py, lsgan.py
        x = x.reshape(b, -1, x.shape[-2], x.shape[-1])[:, 0]
        x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
        for i in range(b):
            Image.fromarray(x[i], mode="L").save(os.path.join(a.out, f"{k + i:05d}.png"))
        k += b
json.dump({"script": a.script, "seed": a.seed, "threads": a.threads, "args": rest,
           "train_s": train_s, "total_s": total_s, "g_steps": state["steps"], "torch": torch.__version__},
          open(a.out.rstrip("/") + ".json", "w"))
print(f"trained {train_s:.1f} s ({total_s:.1f} s with setup), {state['steps']} G steps, wrote {a.n} samples to {a.out}")

"""PyTorch reference for `zoo bench`: the same networks, batch sizes and step (one D update,
then one G update, Adam) as zoo's standard table, timed the same way (warm-up steps, then the
median and range of windows), with peak RSS.

    python -m venv /opt/torchenv && /opt/torchenv/bin/pip install torch
    OMP_WAIT_POLICY=PASSIVE /opt/torchenv/bin/python benches/pytorch/bench.py --threads 2

Prints a Markdown table like `zoo bench`'s and writes bench-pytorch.json. Not part of zoo's
build or tests; results are logged in benches/NOTES.md.
"""

import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp_nets():
    """zoo's vanilla GAN at the bench's settings: G 100-256-512-1024-784 with batch norm and
    LeakyReLU 0.2, tanh; D 784-512-256-1 with LeakyReLU 0.2 and dropout 0.3."""
    g_layers, widths = [], [100, 256, 512, 1024]
    for a, b in zip(widths, widths[1:]):
        g_layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.LeakyReLU(0.2)]
    g = nn.Sequential(*g_layers, nn.Linear(1024, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))
    d = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 512), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(0.3),
        nn.Linear(256, 1),
    )
    return g, d, lambda n: torch.randn(n, 100), (1, 28, 28)


def dcgan_nets(size, channels):
    """zoo's DCGAN: size = base * 2^stages (28 = 7 * 2^2, 64 = 4 * 2^4), 64 filters, no biases,
    batch norm, ReLU in G, LeakyReLU 0.2 in D, the last D layer a base x base convolution."""
    base, stages = {28: (7, 2), 64: (4, 4)}[size]
    widths = [64 << i for i in reversed(range(stages))]
    g = [nn.Unflatten(1, (100, 1, 1)), nn.ConvTranspose2d(100, widths[0], base, bias=False),
         nn.BatchNorm2d(widths[0]), nn.ReLU()]
    for i in range(stages):
        out = widths[i + 1] if i + 1 < stages else channels
        g.append(nn.ConvTranspose2d(widths[i], out, 4, 2, 1, bias=False))
        if i + 1 < stages:
            g += [nn.BatchNorm2d(out), nn.ReLU()]
    g.append(nn.Tanh())
    d, inp = [], channels
    for i in range(stages):
        w = 64 << i
        d.append(nn.Conv2d(inp, w, 4, 2, 1, bias=False))
        if i > 0:
            d.append(nn.BatchNorm2d(w))
        d.append(nn.LeakyReLU(0.2))
        inp = w
    d += [nn.Conv2d(inp, 1, base, bias=False), nn.Flatten()]
    return nn.Sequential(*g), nn.Sequential(*d), lambda n: torch.randn(n, 100), (channels, size, size)


def gan_step(g, d, noise, shape, batch, loss):
    opt_g = torch.optim.Adam(g.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), 2e-4, betas=(0.5, 0.999))
    real = torch.rand(batch, *shape) * 2 - 1

    def objective(logits, target):
        if loss == "bce":
            return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
        return 0.5 * F.mse_loss(logits, torch.full_like(logits, target))

    def step():
        fake = g(noise(batch))
        opt_d.zero_grad(set_to_none=True)
        loss_d = objective(d(real), 1.0) + objective(d(fake.detach()), 0.0)
        loss_d.backward()
        opt_d.step()
        opt_g.zero_grad(set_to_none=True)
        for p in d.parameters():
            p.requires_grad_(False)
        loss_g = objective(d(fake), 1.0)
        loss_g.backward()
        for p in d.parameters():
            p.requires_grad_(True)
        opt_g.step()
        return loss_d.item() + loss_g.item()

    return step


class ResBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x):
        return x + self.body(x)


def resnet_generator(blocks=6, ngf=64, channels=3):
    layers = [nn.ReflectionPad2d(3), nn.Conv2d(channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
    for i in range(2):
        a, b = ngf << i, ngf << (i + 1)
        layers += [nn.Conv2d(a, b, 3, 2, 1), nn.InstanceNorm2d(b), nn.ReLU(True)]
    layers += [ResBlock(ngf << 2) for _ in range(blocks)]
    for i in reversed(range(2)):
        a, b = ngf << (i + 1), ngf << i
        layers += [nn.ConvTranspose2d(a, b, 3, 2, 1, output_padding=1), nn.InstanceNorm2d(b), nn.ReLU(True)]
    layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, channels, 7), nn.Tanh()]
    return nn.Sequential(*layers)


def patch_discriminator(ndf=64, channels=3, n_layers=3):
    layers = [nn.Conv2d(channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
    width = lambda i: ndf * (1 << min(i, 3))
    for i in range(1, n_layers + 1):
        stride = 2 if i < n_layers else 1
        layers += [nn.Conv2d(width(i - 1), width(i), 4, stride, 1), nn.InstanceNorm2d(width(i)),
                   nn.LeakyReLU(0.2, True)]
    layers.append(nn.Conv2d(width(n_layers), 1, 4, 1, 1))
    return nn.Sequential(*layers)


def cyclegan_step(size):
    """The reference CycleGAN step (Zhu et al.'s optimize_parameters): both generators through
    both cycles and the identity maps, D frozen, then both discriminators on real and fake
    (zoo draws the fakes from its image pool; the pool changes no compute)."""
    g_ab, g_ba = resnet_generator(), resnet_generator()
    d_a, d_b = patch_discriminator(), patch_discriminator()
    opt_g = torch.optim.Adam(list(g_ab.parameters()) + list(g_ba.parameters()), 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(list(d_a.parameters()) + list(d_b.parameters()), 2e-4, betas=(0.5, 0.999))
    a = torch.rand(1, 3, size, size) * 2 - 1
    b = torch.rand(1, 3, size, size) * 2 - 1
    ls = lambda p, t: F.mse_loss(p, torch.full_like(p, t))

    def step():
        fake_b, fake_a = g_ab(a), g_ba(b)
        rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
        for p in list(d_a.parameters()) + list(d_b.parameters()):
            p.requires_grad_(False)
        opt_g.zero_grad(set_to_none=True)
        idt_a, idt_b = g_ab(b), g_ba(a)
        loss_g = (ls(d_a(fake_b), 1.0) + ls(d_b(fake_a), 1.0)
                  + 10 * F.l1_loss(rec_a, a) + 10 * F.l1_loss(rec_b, b)
                  + 5 * F.l1_loss(idt_a, b) + 5 * F.l1_loss(idt_b, a))
        loss_g.backward()
        opt_g.step()
        for p in list(d_a.parameters()) + list(d_b.parameters()):
            p.requires_grad_(True)
        opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (ls(d_a(b), 1.0) + ls(d_a(fake_b.detach()), 0.0)) \
            + 0.5 * (ls(d_b(a), 1.0) + ls(d_b(fake_a.detach()), 0.0))
        loss_d.backward()
        opt_d.step()
        return loss_g.item() + loss_d.item()

    return step


ROWS = [
    # label, images per step, warm-up, steps, builder
    ("vanilla MLP 28² b64", 64, 10, 100, lambda: gan_step(*mlp_nets(), 64, "bce")),
    ("DCGAN 28² b64", 64, 3, 25, lambda: gan_step(*dcgan_nets(28, 1), 64, "bce")),
    ("DCGAN 64² RGB b64", 64, 1, 5, lambda: gan_step(*dcgan_nets(64, 3), 64, "bce")),
    ("LSGAN 28² b64", 64, 3, 25, lambda: gan_step(*dcgan_nets(28, 1), 64, "ls")),
    ("CycleGAN 64² RGB b1", 1, 2, 10, lambda: cyclegan_step(64)),
    ("CycleGAN 128² RGB b1", 1, 1, 5, lambda: cyclegan_step(128)),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--windows", type=int, default=5)
    ap.add_argument("--only", help="substring of a row label")
    ap.add_argument("--json", default="bench-pytorch.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rows = []
    print(f"| model | step ms (median) | min–max | images/s | peak MiB |  (PyTorch {torch.__version__}, {args.threads} threads)")
    print("|---|---|---|---|---|")
    for label, images, warmup, steps, build in ROWS:
        if args.only and args.only not in label:
            continue
        step = build()
        for _ in range(warmup):
            step()
        per_window = max(1, steps // args.windows)
        times = []
        for _ in range(args.windows):
            t = time.perf_counter()
            for _ in range(per_window):
                step()
            times.append((time.perf_counter() - t) / per_window * 1e3)
        med = statistics.median(times)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rows.append(dict(model=label, ms=med, min=min(times), max=max(times),
                         images_per_s=images / med * 1e3, peak_rss_mib=peak))
        print(f"| {label} | {med:.1f} | {min(times):.1f}–{max(times):.1f} | {images / med * 1e3:.1f} | {peak:.0f} |", flush=True)
    with open(args.json, "w") as f:
        json.dump(dict(torch=torch.__version__, threads=args.threads, rows=rows), f, indent=2)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch counterpart of the `train-step` bench (bench/trainStep.ts): the same frame encoder, head, batch and optimizer.

    /usr/bin/python3 bench/pytorch_train_step.py [--batch 32] [--steps 20] [--warmup 3] [--threads 1] [--device cpu]

Prints one JSON line with the keys the tfjs bench prints (backend, batch, inputShape, samplesPerSecond, threads,
msPerStep, cpuSamplesPerSecond: per CPU second, which a loaded machine skews less); everything else goes to stderr. PyTorch is not a dependency of tempo-ssl: install it for the comparison
only (Debian: `apt-get install python3-torch`).

The model: 3 x (3x3 conv stride 2, no bias, batch norm, ReLU) with 16/32/64 channels on a 64x64x3 input, flatten,
dense 64 features, dense 10-way head; softmax cross-entropy against fixed labels; Adam lr 1e-3. PyTorch pads the
stride-2 convs by 1 on each side where tfjs 'same' pads 0 before and 1 after: output shapes and FLOPs are identical.
"""

import argparse
import json
import statistics
import sys
import time

import torch
from torch import nn


def build_model(height: int, width: int, channels: int, base: int, blocks: int, features: int, classes: int):
    layers = []
    cin, h, w = channels, height, width
    for b in range(blocks):
        cout = base * 2**b
        layers += [nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]
        cin, h, w = cout, (h + 1) // 2, (w + 1) // 2
    layers += [nn.Flatten(), nn.Linear(cin * h * w, features), nn.Linear(features, classes)]
    return nn.Sequential(*layers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda to compare with the webgpu rung on a GPU")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    shape = (64, 64, 3)
    classes = 10
    model = build_model(*shape, base=16, blocks=3, features=64, classes=classes)
    device = torch.device(args.device)
    model.to(device).train()
    x = torch.rand(args.batch, shape[2], shape[0], shape[1]).to(device)
    labels = (torch.arange(args.batch) % classes).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), labels)
        loss.backward()
        optimizer.step()
        loss.item()

    for _ in range(args.warmup):
        step()
    times, cpu_times = [], []
    for _ in range(args.steps):
        start, cpu_start = time.perf_counter(), time.process_time()
        step()
        times.append((time.perf_counter() - start) * 1000)
        cpu_times.append((time.process_time() - cpu_start) * 1000)
    ms, cpu_ms = statistics.median(times), statistics.median(cpu_times)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)", file=sys.stderr)
    row = {
        "backend": f"pytorch-{device.type} {torch.__version__}",
        "batch": args.batch,
        "inputShape": list(shape),
        "samplesPerSecond": round(args.batch * 1000 / ms, 2),
        "threads": torch.get_num_threads(),
        "msPerStep": round(ms, 2),
        "cpuSamplesPerSecond": round(args.batch * 1000 / cpu_ms, 2),
    }
    print(json.dumps(row))


if __name__ == "__main__":
    main()

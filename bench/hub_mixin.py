"""Loading a weights folder: dstl's strict path vs huggingface_hub's PyTorchModelHubMixin path.

    python bench/hub_mixin.py [--rounds 5] [--threads 1] [--base-width 32]

Saves a randomly initialised UNet (default: the original width, 31,105,706 parameters, 124 MB of
float32) in Hub layout to a temporary folder, then times, interleaved, median of --rounds:

    load_model          dstl.models.load_model(folder): config.json validated, module built on the
                        meta device, strict key/shape check, SHA-256 of the tensors against the
                        header, NaN/inf check, eval()
    UNet.from_pretrained  the same through dstl.models.mixin.HubMixin (+ the change fingerprint)
    mixin path          what PyTorchModelHubMixin._from_pretrained does for a local folder:
                        cls(**config) with random initialisation, then huggingface_hub's own
                        `_load_as_safetensor` (safetensors.torch.load_model, strict=False), eval()
    digest only         dstl.models.hub.tensor_digest of the state dict (the checksum's share)

The file is read from the page cache in every round (one warm-up load first).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from huggingface_hub import PyTorchModelHubMixin

from dstl.models import UNet, config_for, load_model, save_pretrained
from dstl.models.hub import tensor_digest


def mixin_path(folder: Path, model_args: dict) -> torch.nn.Module:
    model = UNet(**model_args)
    return PyTorchModelHubMixin._load_as_safetensor(model, str(folder / "model.safetensors"), "cpu", False)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--base-width", type=int, default=32)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    m = UNet(base_width=args.base_width)
    n = sum(t.numel() for t in m.parameters())
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_pretrained(m, config_for(m), Path(tmp) / "w")
        cases = {
            "load_model": lambda: load_model(folder),
            "UNet.from_pretrained": lambda: UNet.from_pretrained(folder),
            "mixin path": lambda: mixin_path(folder, m.model_args),
            "digest only": lambda: tensor_digest(m.state_dict()),
        }
        for f in cases.values():
            f()  # warm-up: page cache, allocator, lazy imports
        times = {k: [] for k in cases}
        for _ in range(args.rounds):
            for k, f in cases.items():
                t0 = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t0)
    base = statistics.median(times["mixin path"])
    print(f"UNet(base_width={args.base_width}): {n:,} parameters; {args.threads} thread(s); "
          f"{args.rounds} rounds; load average at end {os.getloadavg()[0]:.2f}")
    print("| path | median s | min s | vs mixin path |")
    print("|---|---:|---:|---:|")
    for k, ts in times.items():
        med = statistics.median(ts)
        print(f"| {k} | {med:.3f} | {min(ts):.3f} | {med / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

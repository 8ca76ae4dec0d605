"""Running a benchmark as on an AVX2-only CPU (no AVX-512, VNNI or AMX) on a newer one.

`AVX2_ENV` caps the three kernel libraries PyTorch's CPU inference uses: ATen's own kernels
(ATEN_CPU_CAPABILITY), oneDNN (ONEDNN_MAX_CPU_ISA; convolutions, bf16, the "onednn" int8
engine) and FBGEMM (FBGEMM_ENABLE_INSTRUCTIONS; the "fbgemm" int8 engine). `check` runs a
convolution in a fresh process under an environment and reports what each library really used,
so a benchmark can show that the caps took effect. It is an imitation: the caches, clock and
memory bandwidth of a real AVX2 machine are not imitated, and /proc/cpuinfo still shows the real
CPU's flags (which is why `dstl.autotune` measures instead of reading flags).
"""

import os
import subprocess
import sys

AVX2_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2"}

_PROBE = """
import torch
print("ATEN", torch.backends.cpu.get_cpu_capability(), flush=True)
x = torch.randn(1, 16, 64, 64).contiguous(memory_format=torch.channels_last)
with torch.no_grad():
    torch.nn.Conv2d(16, 16, 3, padding=1)(x)
"""


def emulating_avx2(env=None) -> bool:
    env = os.environ if env is None else env
    return all(env.get(k, "").lower() == v.lower() for k, v in AVX2_ENV.items())


def check(env=None) -> dict:
    """What ATen, oneDNN and FBGEMM use under `env` (default: this process's environment):
    {"aten_capability", "onednn_isa", "onednn_conv_kernels", "fbgemm_cap"}."""
    env = dict(os.environ if env is None else env)
    res = subprocess.run([sys.executable, "-c", _PROBE], env={**env, "ONEDNN_VERBOSE": "1"},
                         capture_output=True, text=True, timeout=300)
    lines = (res.stdout + res.stderr).splitlines()
    aten = next((ln.split()[1] for ln in lines if ln.startswith("ATEN ")), "?")
    isa = next((ln.split("isa:", 1)[1].strip() for ln in lines if "isa:" in ln), "?")
    kernels = sorted({part for ln in lines if ",convolution," in ln
                      for part in ln.split(",") if part.startswith(("jit:", "brg", "gemm:", "ref:"))})
    return {"aten_capability": aten, "onednn_isa": isa, "onednn_conv_kernels": kernels,
            "fbgemm_cap": env.get("FBGEMM_ENABLE_INSTRUCTIONS", "")}


def describe(report: dict) -> str:
    """One line for a report, e.g. "ATen AVX2, oneDNN Intel AVX2 (brg_conv_fwd:avx2), FBGEMM AVX2"."""
    kernels = ", ".join(report["onednn_conv_kernels"])
    return (f"ATen {report['aten_capability']}, oneDNN {report['onednn_isa']}"
            + (f" ({kernels})" if kernels else "")
            + (f", FBGEMM capped to {report['fbgemm_cap']}" if report["fbgemm_cap"] else ""))

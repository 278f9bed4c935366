"""Times vitb.ViTB in PyTorch (Debian's python3-torch) and prints one JSON line like `cast bench --json`.

Usage: python3 docs/ort/bench_torch.py [--precision fp32|int8] [--threads 2] [--batch 1] [--tokens 1568] [--runs 3]

int8 is torch.ao.quantization.quantize_dynamic over the nn.Linear layers (qint8 weights, per-tensor, activations
quantized at run time), the eager counterpart of export.py's int8 graph. GFLOP/s count as vitb.vitb_macs does.
docs/speed-ort.sh runs it with OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (they slow a current OpenBLAS).
"""

import argparse
import ctypes
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vitb  # noqa: E402


def blas() -> str:
    """The BLAS library the process mapped (torch's fp32 GEMMs run there), from /proc/self/maps, and for
    OpenBLAS the kernel it picked for this CPU (openblas_get_corename)."""
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({line.split()[-1] for line in f if "blas" in line.lower() and "/" in line})
    except OSError:
        return "unknown BLAS"
    names = [os.path.realpath(p).rsplit("/", 1)[-1] for p in libs]
    for p in libs:
        try:
            lib = ctypes.CDLL(p)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return f"OpenBLAS {lib.openblas_get_corename().decode()} kernels, {lib.openblas_get_num_threads()} threads"
        except (OSError, AttributeError):
            continue
    return ", ".join(names) or "no BLAS mapped"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--precision", choices=["fp32", "int8"], default="fp32")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--tokens", type=int, default=1568)
    p.add_argument("--runs", type=int, default=3)
    a = p.parse_args()
    if min(a.threads, a.batch, a.tokens, a.runs) < 1:
        sys.exit("bench_torch.py: --threads, --batch, --tokens and --runs must be positive")
    torch.set_num_threads(a.threads)
    model = vitb.ViTB().eval()
    if a.precision == "int8":
        for engine in ("fbgemm", "x86", "onednn"):  # the x86 engines, best first (Debian's torch has onednn)
            if engine in torch.backends.quantized.supported_engines:
                torch.backends.quantized.engine = engine
                break
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    x = vitb.tokens_input(a.batch, a.tokens)
    times = []
    with torch.inference_mode():
        t0 = time.perf_counter()
        model(x)
        warmup = time.perf_counter() - t0
        for _ in range(a.runs):
            t0 = time.perf_counter()
            y = model(x)
            times.append(time.perf_counter() - t0)
    if not torch.isfinite(y).all():
        sys.exit("bench_torch.py: output is not finite")
    secs, macs = sum(times) / len(times), vitb.vitb_macs(a.batch, a.tokens)
    engine = torch.backends.quantized.engine if a.precision == "int8" else blas()
    print(json.dumps({
        "engine": "pytorch", "version": torch.__version__,
        "backend": f"PyTorch {torch.__version__} ({a.threads} threads, {engine})",
        "config": f"vitb-{a.batch}x{a.tokens}", "quantization": "int8" if a.precision == "int8" else "none",
        "threads": a.threads, "batch": a.batch, "tokens": a.tokens, "runs": a.runs,
        "warmup_seconds": warmup, "seconds_per_view": secs, "seconds_all": times,
        "gmac_per_view": macs / 1e9, "gflops": 2 * macs / secs / 1e9,
    }))


if __name__ == "__main__":
    main()

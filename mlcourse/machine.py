"""What this machine is: the CPU, its cores, the instruction sets that decide a speed verdict, and the GPU.

Machines differ, and a speed verdict is only true of the machine it was measured on: int8 pays where the CPU
has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI, AMX), bfloat16 where it has AVX-512 BF16 or AMX,
and OpenVINO even runs a "float32" model in bfloat16 by default on such CPUs. So every lesson that times
something prints :func:`describe` beside its verdict, and the report's environment block reads :func:`probe`.

    >>> machine.describe()   # on one of the course's machines
    'AMD EPYC, 2 cores; avx2 fma f16c avx512f avx512_vnni avx_vnni avx512_bf16 (int8 dot products: yes; \
native bf16: yes)'

The one place the course reads ``/proc/cpuinfo`` (Linux; elsewhere the flags are unknown, and said so).
Used by the compression (05), distributed training (06), deployment (08) and runtimes (09) lessons.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

__all__ = ["FLAGS", "INT8_DOT", "NATIVE_BF16", "cpu", "has", "describe", "gpu", "probe"]

#: The instruction-set flags the course's speed lessons care about, in the order they are printed.
FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16",
         "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16", "amx_fp16")
#: Flags that give int8 dot products in hardware (what makes an int8 model faster than float32 on a CPU).
INT8_DOT = ("avx512_vnni", "avx_vnni", "amx_int8")
#: Flags that give native bfloat16 arithmetic (what makes mixed_bfloat16 or OpenVINO's bf16 fast).
NATIVE_BF16 = ("avx512_bf16", "amx_bf16")


def _parse(text: str) -> dict:
    flags, model = set(), ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "flags" and not flags:
            flags = set(value.split())
        elif key == "model name" and not model:
            model = value.strip()
    return {"model": model or "unknown CPU", "cores": os.cpu_count() or 1, "flags": frozenset(flags),
            "known": bool(flags)}


@functools.lru_cache(maxsize=1)
def _this_cpu() -> dict:
    try:
        return _parse(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:  # macOS, Windows: no /proc
        return _parse("")


def cpu(cpuinfo: str | None = None) -> dict:
    """``{"model", "cores", "flags" (a frozenset of every flag), "known" (False where no flags could be read)}``
    of this machine, or of the text of a ``/proc/cpuinfo`` passed as ``cpuinfo`` (for tests).

    Lesson: 09_runtimes § 1 · This CPU.
    """
    return dict(_this_cpu() if cpuinfo is None else _parse(cpuinfo))


def has(*flags: str, cpuinfo: str | None = None) -> bool:
    """True when this CPU has at least one of ``flags`` (e.g. ``has(*machine.INT8_DOT)``).

    Lesson: 05_compression § 3 · Every variant side by side; also used in 06_distributed_training,
    07_distillation_ensembles, 08_deployment, 09_runtimes.
    """
    return bool(set(flags) & cpu(cpuinfo)["flags"])


def describe(cpuinfo: str | None = None) -> str:
    """One line to print beside a speed verdict: the CPU, its cores, the flags of :data:`FLAGS` it has, and
    whether it has int8 dot products and native bf16.

    Lesson: 02_tuning § 7 · The winner against the baseline, on the test set, over seeds; also used in 03_nas,
    05_compression, 06_distributed_training, 07_distillation_ensembles, 08_deployment, 09_runtimes.
    """
    c = cpu(cpuinfo)
    if not c["known"]:
        return f"{c['model']}, {c['cores']} cores; instruction-set flags unknown (no /proc/cpuinfo here)"
    present = " ".join(f for f in FLAGS if f in c["flags"] and f not in ("sse4_1", "sse4_2", "avx")) or "no AVX2"
    yes = {True: "yes", False: "no"}
    return (f"{c['model']}, {c['cores']} cores; {present} (int8 dot products: "
            f"{yes[has(*INT8_DOT, cpuinfo=cpuinfo)]}; native bf16: {yes[has(*NATIVE_BF16, cpuinfo=cpuinfo)]})")


def gpu() -> str:
    """The NVIDIA GPUs the driver lists, or ``"none (CPU only)"``."""
    folder = Path("/proc/driver/nvidia/gpus")
    found = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    return ", ".join(found) if found else "none (CPU only)"


def probe() -> dict:
    """The machine for the report's environment block: ``cpu``, ``cpu cores``, ``cpu features``, ``gpu``.

    Lesson: 09_runtimes § 13 · Recorded for the course report.
    """
    c = cpu()
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
    features = ", ".join(f for f in wanted if f in c["flags"]) or "none of " + ", ".join(wanted)
    return {"cpu cores": c["cores"], "cpu": c["model"], "cpu features": features, "gpu": gpu()}

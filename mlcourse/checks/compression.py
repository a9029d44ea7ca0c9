"""Checkers of the exercises of notebook 04 compression."""
from __future__ import annotations

import numpy as np

from mlcourse.checks._common import _passed

__all__ = ["check_magnitude_prune", "check_int8_quantize", "check_low_rank"]


def check_magnitude_prune(fn) -> None:
    """Exercise 4.1: ``fn(weights, sparsity) -> pruned copy`` zeroing the smallest-magnitude weights."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 32)).astype(np.float32)
    original = w.copy()
    for s in (0.0, 0.5, 0.9):
        out = np.asarray(fn(w, s))
        assert np.array_equal(w, original), "Do not change the input array in place: return a pruned copy."
        assert out.shape == w.shape, f"The result has shape {out.shape}, the weights {w.shape}."
        zeros = (out == 0).mean()
        assert abs(zeros - s) <= 1 / w.size + 1e-9, (
            f"sparsity={s}: {zeros:.1%} of the weights are zero; expected {s:.0%}.")
        kept = out != 0
        assert np.array_equal(out[kept], w[kept]), "Weights you keep must keep their values (no rescaling)."
        if 0 < s:
            assert np.abs(w[~kept]).max() <= np.abs(w[kept]).min() + 1e-12, (
                "You zeroed a weight larger in magnitude than one you kept: sort by |w|, not by w.")
    _passed("4.1", "the smallest-magnitude weights are zeroed at sparsities 0, 50 % and 90 %.")


def check_int8_quantize(fn) -> None:
    """Exercise 4.2: ``fn(w) -> (q, scale)``: symmetric per-tensor int8, ``w ≈ q * scale``."""
    rng = np.random.default_rng(1)
    for w in (rng.normal(size=1000).astype(np.float32), np.array([-0.5, 0.0, 0.25, 2.0], np.float32)):
        q, scale = fn(w)
        q = np.asarray(q)
        assert q.dtype == np.int8, f"q must be int8, got {q.dtype}."
        assert q.min() >= -127 and q.max() <= 127, "Symmetric int8 uses -127..127 (keep -128 unused)."
        assert np.isclose(scale, np.abs(w).max() / 127, rtol=1e-5), (
            f"scale is {scale}; the symmetric scale maps the largest |w| ({np.abs(w).max():.4f}) to 127.")
        err = np.abs(q.astype(np.float32) * scale - w).max()
        assert err <= scale / 2 + 1e-6, f"Rounding error {err:.4g} exceeds half a step ({scale / 2:.4g}): round, do not truncate."
    _passed("4.2", "int8 values in [-127, 127], the right scale, error within half a quantization step.")


def check_low_rank(fn) -> None:
    """Exercise 4.3: ``fn(W, r) -> (A, B)`` with ``A @ B`` the best rank-``r`` approximation of ``W``."""
    rng = np.random.default_rng(2)
    W = rng.normal(size=(60, 40))
    s = np.linalg.svd(W, compute_uv=False)
    for r in (1, 5, 20):
        A, B = fn(W, r)
        A, B = np.asarray(A), np.asarray(B)
        assert A.shape == (60, r) and B.shape == (r, 40), (
            f"rank {r}: A must be (60, {r}) and B ({r}, 40); got {A.shape} and {B.shape}.")
        err, best = np.linalg.norm(W - A @ B), np.sqrt((s[r:] ** 2).sum())
        assert err <= best * (1 + 1e-6), (
            f"rank {r}: ||W - AB|| = {err:.3f}, the optimum (Eckart-Young) is {best:.3f}. Keep the {r} largest "
            "singular values: A = U[:, :r] * S[:r], B = Vt[:r].")
    _passed("4.3", "A @ B reaches the Eckart-Young optimum at ranks 1, 5 and 20.")

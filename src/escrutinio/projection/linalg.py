"""Small vectorised helpers: centred log-ratios, Jacobians, grouped sums of outer
products (chunked so that K = 36 candidates stays within memory)."""

from __future__ import annotations

import numpy as np

_CHUNK_FLOATS = 4_000_000


def logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def expit(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def clr(votes: np.ndarray, pseudo: float = 0.5) -> np.ndarray:
    """Centred log-ratio of smoothed shares, row-wise (N × K)."""
    lv = np.log(votes + pseudo)
    return lv - lv.mean(axis=1, keepdims=True)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def dense_ids(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted unique codes, inverse) like ``np.unique(..., return_inverse=True)``, in
    O(N) for non-negative integer codes of moderate size (falls back to sorting)."""
    codes = np.asarray(codes)
    if codes.size and codes.dtype.kind in "iu" and codes.min() >= 0 \
            and int(codes.max()) < max(10_000_000, 4 * codes.size):
        present = np.zeros(int(codes.max()) + 1, dtype=bool)
        present[codes] = True
        mapping = np.cumsum(present) - 1
        return np.flatnonzero(present), mapping[codes]
    uniq, inv = np.unique(codes, return_inverse=True)
    return uniq, inv.ravel()


def group_sum(x: np.ndarray, inv: np.ndarray, n_groups: int) -> np.ndarray:
    """Σ_{i ∈ g} x_i for x of shape (N, ...) (one bincount per trailing element)."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        return np.bincount(inv, weights=x, minlength=n_groups)
    flat = x.reshape(x.shape[0], -1)
    out = np.empty((n_groups, flat.shape[1]))
    for j in range(flat.shape[1]):
        out[:, j] = np.bincount(inv, weights=flat[:, j], minlength=n_groups)
    return out.reshape((n_groups, *x.shape[1:]))


def group_jacobian(v: np.ndarray, p: np.ndarray, inv: np.ndarray, n_groups: int
                   ) -> np.ndarray:
    """Σ_{i ∈ g} v_i (diag p_i − p_i p_iᵀ): (G, K, K)."""
    k = p.shape[1]
    out = np.zeros((n_groups, k, k))
    vp = group_sum(v[:, None] * p, inv, n_groups)
    idx = np.arange(k)
    out[:, idx, idx] = vp
    step = max(1, _CHUNK_FLOATS // max(1, k * k))
    for s in range(0, p.shape[0], step):
        pc = p[s:s + step]
        outer = np.einsum("n,nk,nl->nkl", v[s:s + step], pc, pc)
        out -= group_sum(outer, inv[s:s + step], n_groups)
    return out


def group_sandwich_jacobian(v: np.ndarray, p: np.ndarray, sigma: np.ndarray,
                            inv: np.ndarray, n_groups: int) -> np.ndarray:
    """Σ_{i ∈ g} J_i Σ J_iᵀ with J_i = v_i (diag p_i − p_i p_iᵀ): (G, K, K)."""
    k = p.shape[1]
    out = np.zeros((n_groups, k, k))
    step = max(1, _CHUNK_FLOATS // max(1, 3 * k * k))
    eye = np.eye(k)
    for s in range(0, p.shape[0], step):
        pc = p[s:s + step]
        j = v[s:s + step, None, None] * (pc[:, :, None] * eye[None] - pc[:, :, None]
                                          * pc[:, None, :])
        out += group_sum(j @ sigma @ np.swapaxes(j, 1, 2), inv[s:s + step], n_groups)
    return out


def group_outer(x: np.ndarray, w: np.ndarray, inv: np.ndarray, n_groups: int
                ) -> np.ndarray:
    """Σ_{i ∈ g} w_i x_i x_iᵀ: (G, K, K)."""
    k = x.shape[1]
    out = np.zeros((n_groups, k, k))
    step = max(1, _CHUNK_FLOATS // max(1, k * k))
    for s in range(0, x.shape[0], step):
        xc = x[s:s + step]
        out += group_sum(np.einsum("n,nk,nl->nkl", w[s:s + step], xc, xc),
                         inv[s:s + step], n_groups)
    return out


def sandwich(g: np.ndarray, sigma: np.ndarray, factor: np.ndarray | float = 1.0
             ) -> np.ndarray:
    """factor · G Σ Gᵀ for a batch of G (B, K, K)."""
    f = np.asarray(factor, dtype=float)
    return (g @ sigma @ np.swapaxes(g, 1, 2)) * (f[:, None, None] if f.ndim else f)


def isotropic_clr_cov(k: int, logit_sd: float) -> np.ndarray:
    """A K × K covariance of centred log-ratios with the same spread for every candidate:
    the log-ratio of any two candidates has SD ``logit_sd`` (for two candidates: exactly
    ``logit_sd`` on the log-odds of the first). Each clr coordinate before centring has
    variance ``logit_sd² / 2``: a difference of two has twice that."""
    cov = np.eye(k) * (logit_sd ** 2 / 2)
    cov -= cov.mean(axis=0, keepdims=True)
    cov -= cov.mean(axis=1, keepdims=True)
    return cov


def psd_clip(m: np.ndarray) -> np.ndarray:
    """The nearest symmetric positive semi-definite matrix to ``m`` in the eigenbasis of its
    symmetric part: negative eigenvalues set to 0 (an estimate of a covariance that came
    out indefinite, e.g. a difference of two estimates)."""
    m = (m + m.T) / 2
    vals, vecs = np.linalg.eigh(m)
    return (vecs * np.clip(vals, 0.0, None)) @ vecs.T

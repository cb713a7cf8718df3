"""Low-poly robot visuals: read binary STL and simplify by vertex clustering.

Rendering on a CPU rasteriser (llvmpipe) costs per triangle; the arm's stock
meshes have ~10k triangles. Clustering vertices on a few-millimetre grid keeps
the silhouette the camera sees at <= 224 px while cutting most triangles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

_STL_TRIANGLE = np.dtype([("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])


def read_stl(path: str | Path, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Binary STL to (vertices (V, 3), faces (F, 3) int), with shared vertices merged."""
    raw = Path(path).read_bytes()
    n = int(np.frombuffer(raw, "<u4", count=1, offset=80)[0])
    if len(raw) != 84 + 50 * n:
        raise ValueError(f"{path}: not a binary STL (expected {84 + 50 * n} bytes, got {len(raw)})")
    tri = np.frombuffer(raw, _STL_TRIANGLE, count=n, offset=84)["v"].reshape(-1, 3).astype(np.float64) * scale
    verts, inv = np.unique(tri, axis=0, return_inverse=True)
    return verts, inv.reshape(-1, 3)


def simplify(verts: np.ndarray, faces: np.ndarray, cell: float) -> tuple[np.ndarray, np.ndarray]:
    """Vertex clustering: snap vertices to a grid of `cell`, merge, drop collapsed and repeated faces."""
    keys = np.floor(verts / cell).astype(np.int64)
    _, cluster, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    cluster = cluster.ravel()
    new_verts = np.zeros((len(counts), 3))
    np.add.at(new_verts, cluster, verts)
    new_verts /= counts[:, None]
    f = cluster[faces]  # (F, 3)
    ok = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 0] != f[:, 2])
    f = f[ok]
    _, first = np.unique(np.sort(f, axis=1), axis=0, return_index=True)
    return new_verts, f[np.sort(first)]

"""Small rotation helpers (numpy, row-major 3x3 matrices, extrinsic roll-pitch-yaw)."""

from __future__ import annotations

import numpy as np


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rpy_to_mat(rpy) -> np.ndarray:
    """Extrinsic x-y-z (roll about base x, then pitch about base y, then yaw about base z)."""
    r, p, y = rpy
    return rot_z(y) @ rot_y(p) @ rot_x(r)


def mat_to_rpy(m: np.ndarray) -> np.ndarray:
    """Inverse of rpy_to_mat (pitch in [-pi/2, pi/2])."""
    pitch = np.arcsin(np.clip(-m[2, 0], -1.0, 1.0))
    roll = np.arctan2(m[2, 1], m[2, 2])
    yaw = np.arctan2(m[1, 0], m[0, 0])
    return np.array([roll, pitch, yaw])


def mat_to_rotvec(m: np.ndarray) -> np.ndarray:
    """Axis-angle vector of a rotation matrix (robust near 0 and pi)."""
    cos = np.clip((np.trace(m) - 1) / 2, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return 0.5 * np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]])
    if np.pi - angle < 1e-4:
        # axis from the symmetric part: m = 2 n n^T - I
        n = np.sqrt(np.clip((np.diag(m) + 1) / 2, 0, None))
        i = int(np.argmax(n))
        n[(i + 1) % 3] = np.copysign(n[(i + 1) % 3], m[i, (i + 1) % 3] + m[(i + 1) % 3, i])
        n[(i + 2) % 3] = np.copysign(n[(i + 2) % 3], m[i, (i + 2) % 3] + m[(i + 2) % 3, i])
        return angle * n / np.linalg.norm(n)
    axis = np.array([m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]]) / (2 * np.sin(angle))
    return angle * axis


def rotvec_to_mat(v: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(v) / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


# Gripper approach axis (local x) pointing down, fingers closing along world y.
R_DOWN = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])


def top_down(yaw: float) -> np.ndarray:
    """Orientation of a top-down grasp whose fingers close along the direction yaw + pi/2."""
    return rot_z(yaw) @ R_DOWN


def wrap_pi(a):
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi

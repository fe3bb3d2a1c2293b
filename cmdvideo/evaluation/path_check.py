"""Whether a video's shape follows a path, measured as MotionCtrl's ObjMC and DreamVideo-2's
centroid distance do: the shape's centre tracked in every frame (no learned weights) against
the asked track, as a fraction of the frame."""

from __future__ import annotations

import numpy as np

from .motion_check import _foreground, _to_unit, centroids


def shape_centres(video, threshold: float = 0.25) -> np.ndarray:
    """(T, 2): the centroid (x, y) of the foreground (pixels unlike the border's median colour)
    in every frame of one video (3, T, H, W) in [-1, 1], fractions of the frame from the
    top-left corner (pixel centres at (i + 0.5) / size); NaN where a frame shows no shape."""
    _, mask = _foreground(_to_unit(video), threshold)  # (T, H, W)
    _, cx, cy = centroids(mask)
    return np.stack([cx, cy], axis=1)


def path_error(video, track, threshold: float = 0.25) -> float:
    """Mean distance, a fraction of the frame, between the shape's centre and ``track`` (T, 2)
    over the frames; a frame with no shape counts as the farthest point of the frame from the
    asked centre (a vanished shape is not a followed path)."""
    track = np.asarray(track, dtype=np.float64)
    seen = shape_centres(video, threshold)
    if seen.shape != track.shape:
        raise ValueError(f"a track of {len(track)} frames for a video of {len(seen)}")
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float64)
    worst = np.linalg.norm(track[:, None] - corners[None], axis=-1).max(axis=1)
    distance = np.linalg.norm(seen - track, axis=1)
    return float(np.where(np.isnan(distance), worst, distance).mean())

"""Scenes: the supporting planes of a scan, the objects standing on them, and one surface per object.

Every input point of a scene gets one label (`labels.npy`, and the ``label`` vertex property of the inlier cloud):
`NONFINITE` for a point with a NaN or infinite coordinate, `OUTLIER` for an outlier, ``k`` (0, 1, ...) for a point
of object ``k``, and ``PLANE + k`` for a point of plane ``k``.
"""

#: Label of a point with a non-finite coordinate (not used by any fit).
NONFINITE = -2
#: Label of an outlier: flagged over the whole scene, or in a cluster too small to be an object.
OUTLIER = -1
#: Label of plane k is ``PLANE + k``; objects are labelled 0, 1, ... (far fewer than `PLANE`).
PLANE = 1000


def is_plane(labels):
    """Where `labels` (an int array) name a plane point."""
    return labels >= PLANE


def is_object(labels):
    """Where `labels` (an int array) name an object point."""
    return (labels >= 0) & (labels < PLANE)

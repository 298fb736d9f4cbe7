"""dlib's mean face: where its chips put a face's points, shared by the chip cutters and the head-pose fit.

The coordinates are dlib's (``get_face_chip_details``, dlib/image_transforms/interpolation.h): fractions of
the face region, x to the image's right, y down.
"""

from __future__ import annotations

import numpy as np

# dlib's mean face shape (``get_face_chip_details`` in dlib/image_transforms/interpolation.h: the points
# 17-67 of its 68-point model in [0, 1] face coordinates, which the chip maps to (padding + p) / (2 padding
# + 1) * size) at the points YuNet marks: both eyes' six points (36-41 on the image's left, 42-47), the
# nose tip (30) and the mouth corners (48, 54).
_MEAN_FACE = {
    30: (0.490127, 0.515625),
    36: (0.121737, 0.216423),
    37: (0.187122, 0.178758),
    38: (0.265825, 0.179852),
    39: (0.334606, 0.231733),
    40: (0.260918, 0.245099),
    41: (0.182743, 0.244077),
    42: (0.645647, 0.231733),
    43: (0.714428, 0.179852),
    44: (0.793132, 0.178758),
    45: (0.858516, 0.216423),
    46: (0.79751, 0.244077),
    47: (0.719335, 0.245099),
    48: (0.254149, 0.780233),
    54: (0.726104, 0.780233),
}
# YuNet's five points (facemetric's order: TEMPLATE_112's) in dlib's face coordinates: eye centres (the
# means of each eye's six points), nose tip, mouth corners. Against dlib's own chips (HOG + 5-point
# predictor) on 399 LFW, 396 ORL and 377 CelebA faces (`python benchmarks/yunet_chip_template.py`), the
# mean transform is 3.0, 4.3 and 1.0 px off (the chip's corners and centre, in chip pixels); a template
# measured on LFW (0 there) is 6.3 and 2.6 px off on the others, so dlib's own mean face is kept. Face by
# face the chips differ more, 8.6-9.8 px on average (dlib's chip of the mirrored photo: 1.4-1.6 px): YuNet
# and dlib's predictor disagree about each face's tilt and size by a few degrees and per cent.
YUNET_CHIP_FACE = np.array(
    [
        np.mean([_MEAN_FACE[i] for i in range(36, 42)], axis=0),
        np.mean([_MEAN_FACE[i] for i in range(42, 48)], axis=0),
        _MEAN_FACE[30],
        _MEAN_FACE[48],
        _MEAN_FACE[54],
    ]
)


# where dlib's 5-point predictor's landmarks land in its own chip (dlib's get_face_chip_details, in chip
# fractions): the outer and inner corner of the eye on the image's right, of the one on its left, the base
# of the nose; to compare a chip with dlib's own (tests/data/test_yunet.py, benchmarks/yunet_chip_template.py)
DLIB_CHIP_5_POINTS = np.array(
    [
        [0.8595674595992, 0.2134981538014],
        [0.6460604764104, 0.2289674387677],
        [0.1205750620789, 0.2137274526848],
        [0.3340850613712, 0.2290642403242],
        [0.4901123135679, 0.6277975316475],
    ]
)

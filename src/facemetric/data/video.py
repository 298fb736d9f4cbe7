"""Frames of a video file (OpenCV reads it), evenly spread, for enrolment from a short clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from facemetric.core.errors import FacemetricError, require

# what `gallery enroll` treats as a video rather than a photo
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".y4m", ".mpg", ".mpeg", ".wmv"})
MAX_FRAMES = 60  # frames taken from a video by default: about 2 s of a 30 fps clip, or evenly over a longer one
MAX_DECODED = 5_000  # frames read at most from a video whose length OpenCV cannot tell


class VideoError(FacemetricError):
    """A video file that cannot be read."""


def is_video(path: str | Path) -> bool:
    """Whether ``path`` names a video by its suffix (:data:`VIDEO_SUFFIXES`)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def video_frames(path: str | Path, max_frames: int = MAX_FRAMES) -> list[tuple[int, np.ndarray]]:
    """Up to ``max_frames`` frames of the video at ``path``, evenly spread over it: (frame number, RGB
    uint8 array) in order. :class:`VideoError` names the file when OpenCV cannot read it."""
    cv2 = require("cv2", "align", "reading video files")
    if max_frames < 1:
        raise ValueError(f"max_frames must be at least 1, got {max_frames}")
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path}: no such video file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise VideoError(f"{path}: OpenCV cannot open it as a video (a format or codec it does not read?)")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        frames: list[tuple[int, np.ndarray]] = []
        wanted = (
            set(np.linspace(0, count - 1, min(max_frames, count)).round().astype(int).tolist()) if count > 0 else None
        )
        index = 0
        while index < (count if count > 0 else MAX_DECODED):
            ok, frame = capture.read()
            if not ok:
                break
            if wanted is None or index in wanted:
                frames.append((index, np.ascontiguousarray(frame[:, :, ::-1])))  # OpenCV's BGR to RGB
            index += 1
    finally:
        capture.release()
    if not frames:
        raise VideoError(f"{path}: no frame could be read")
    if count <= 0 and len(frames) > max_frames:  # length unknown: every frame read, now spread
        keep = np.linspace(0, len(frames) - 1, max_frames).round().astype(int)
        frames = [frames[k] for k in sorted(set(keep.tolist()))]
    return frames

"""The report's section on verification by head pose: TAR and FAR per band of |yaw|, and TAR against |yaw|."""

from __future__ import annotations

from facemetric.eval.pose.result import PoseBreakdown
from facemetric.report.document import Figure, Para, Section, Table, how_to_read
from facemetric.report.formatting import num
from facemetric.report.plots import tar_by_yaw_plot


def _rate(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.3f}"


def pose_section(pose: PoseBreakdown | None) -> Section | None:
    """The section, or None when the evaluation has no pose breakdown (the photos' yaws were not known)."""
    if pose is None:
        return None
    section = Section(
        "Verification by head pose",
        [
            how_to_read(
                "Each pair counts in the band of its more turned photo (the |yaw|, the head turned left or right, "
                "0 = frontal). TAR is the fraction of its genuine pairs accepted, FAR of its impostor pairs, both "
                "at one threshold for the whole evaluation. A face-unlock user enrolled from the front reads the "
                "TAR of a band as how often they unlock with the head turned that far. The plot gives the TAR per "
                "10 degrees, each point labelled with its number of genuine pairs: few pairs make a rate uncertain."
            ),
            Para(
                f"Yaw from {pose.source}: known for {num(pose.photos_with_yaw)} of {num(pose.photos)} photos. "
                f"Threshold {num(pose.threshold)}: {pose.rule}."
            ),
        ],
    )
    rows = [
        (
            band.band if band.low is None else f"{band.band} degrees",
            num(band.genuine),
            _rate(band.tar),
            num(band.impostors),
            _rate(band.far),
        )
        for band in pose.bands
    ]
    section.blocks.append(
        Table(("|yaw| of the more turned photo", "genuine pairs", "TAR", "impostor pairs", "FAR"), rows)
    )
    points = [p for p in pose.curve if p.tar is not None]
    if points:
        png = tar_by_yaw_plot(
            [p.yaw for p in points], [float(p.tar or 0.0) for p in points], [p.genuine for p in points], pose.threshold
        )
        section.blocks.append(Figure("tar_by_yaw.png", "TAR against |yaw|", png))
    return section

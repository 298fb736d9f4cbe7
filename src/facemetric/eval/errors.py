"""The errors a user's evaluation input can raise, shared by every task: each says which input is wrong and
what to do. Errors of one task alone live with it (``course.mapping.MappingError``,
``patches.pairs.PatchProtocolError`` ...)."""

from __future__ import annotations

from facemetric.core.errors import FacemetricError


class ProtocolError(FacemetricError, ValueError):
    """A protocol cannot be built from this dataset as asked (too few people, too few images)."""


class PairsFormatError(FacemetricError, ValueError):
    """A protocol file (an LFW pairs file, a pairs or open-set CSV) does not follow its format."""


class MissingImageError(FacemetricError, FileNotFoundError):
    """Images referenced by a protocol file are not on disk."""


class EvaluationError(FacemetricError, RuntimeError):
    """The protocol cannot be evaluated as asked (e.g. an image it needs is unreadable)."""

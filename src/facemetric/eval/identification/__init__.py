"""Identification: who is this photo, among the enrolled people, or nobody we know? The protocol is an
open-set split, a gallery with known and unknown probes for validation and test (:mod:`.protocol`, its CSV
and the decisions file in :mod:`.files`); probes are searched against the gallery's templates
(:mod:`.search`) and measured closed-set (CMC, :mod:`.closed_set`) and open-set (DIR at a threshold
calibrated on validation, :mod:`.open_set`), typed in :mod:`.result`."""

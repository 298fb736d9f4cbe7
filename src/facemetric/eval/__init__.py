"""Evaluation by task: one subpackage per task, each with its protocol, its metrics, its files and its
typed result.

* :mod:`.verification`: same person or not? Pairs in identity-disjoint folds; k-fold accuracy, ROC, EER,
  TAR@FAR, the threshold at a stated FAR.
* :mod:`.identification`: who is this among the enrolled, or nobody we know? A gallery with known and
  unknown probes; closed-set CMC and open-set DIR at a calibrated threshold.
* :mod:`.retrieval`: which images show the same person? P@1, R-precision, MAP@R, Recall@K.
* :mod:`.course`: the course task (classification and the known-or-nobody mapping) and its layout.
* :mod:`.patches`: HPatches' three tasks on patch descriptors, and the benchmark built from photos.

:mod:`.suite` runs the face tasks on one set of embedded images (``facemetric eval``, a run's report) and
writes the evaluation folder. What every task shares is in :mod:`.primitives` (metric primitives),
:mod:`.errors` and :mod:`.protocol_csv`. A new task is a new subpackage (``protocol.py``, ``metrics.py``,
``files.py``, ``result.py``) and a section of the report (``facemetric.report``).
"""

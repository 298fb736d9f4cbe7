"""Verification: are two photos of the same person? The protocol is genuine and impostor pairs in folds
whose people are disjoint (:mod:`.protocol`; LFW's format and a CSV in :mod:`.lfw_pairs` and :mod:`.files`);
the metrics are k-fold accuracy (each fold's threshold chosen on the other folds), ROC, AUC, EER, TAR@FAR
and the threshold for a stated false-accept rate (:mod:`.metrics`), typed in :mod:`.result`."""

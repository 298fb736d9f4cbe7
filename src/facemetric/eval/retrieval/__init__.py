"""Retrieval: which images show the same person? Every image queries all the others (or a separate
gallery); nearest neighbours come from FAISS in chunks (:mod:`.search`) and the metrics are P@1,
R-precision, MAP@R and Recall@K (:mod:`.metrics`), typed in :mod:`.result`."""

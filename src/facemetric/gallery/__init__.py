"""A persistent face gallery: enroll, verify and identify against SQLite + FAISS, with calibrated thresholds."""

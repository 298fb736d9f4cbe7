"""A persistent face gallery: enroll, verify and identify, with calibrated thresholds, in a SQLite folder
(+ FAISS index) or a PostgreSQL database (+ pgvector) shared by several servers."""

"""A persistent face gallery: enroll, verify and identify, with calibrated thresholds, in a SQLite folder
(+ FAISS index), a PostgreSQL database (+ pgvector) shared by several servers, or any store registered
for a URL scheme (:mod:`facemetric.gallery.stores`). :class:`facemetric.gallery.service.Gallery` is the
one object to use; :mod:`facemetric.gallery.interface` is what every store and search index offers."""

"""The bottom layer: what every other package of facemetric builds on.

It imports nothing of facemetric above it (a test enforces the layers): the error base
:class:`~facemetric.core.errors.FacemetricError`, the atomic writer, the registry, the image
spec, the :class:`~facemetric.core.embedder.Embedder` and miner interfaces, the checkpoint
format, and the typed config and result schemas.
"""

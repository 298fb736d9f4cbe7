"""The face evaluation suite: verification, identification and retrieval run on one set of embedded images,
and the evaluation folder the report is rendered from.

:mod:`.embeddings` runs the asked tasks on embeddings; :mod:`.files` builds them from protocol files
(``facemetric eval``), :mod:`.held_out` from a training run's held-out people (``facemetric report RUN``),
both following a stated policy for photos without a face (:mod:`.no_face`); :mod:`.folder` writes the
folder and :mod:`.document` types its ``eval.json``."""

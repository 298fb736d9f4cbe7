"""Patch descriptors on HPatches' three tasks (Balntas et al., CVPR 2017): patch verification, image matching
and patch retrieval, per jitter level, illumination and viewpoint sequences apart.

The protocol is a release's sequences: the real one (read by :mod:`facemetric.data.hpatches`, which also
makes the training cache) or one built from any photos (``facemetric protocol patches``: :mod:`.benchmark`,
one sequence per photo by :mod:`.sequences`). :mod:`.pairs` draws the verification lists, :mod:`.metrics`
holds the pure reference metrics and :mod:`.tasks` measures a release in chunks; :mod:`.baselines` and
:mod:`.run` describe the patches (``facemetric eval --patches``), :mod:`.folder` writes the evaluation
folder, and :mod:`.result` types it."""

"""Patch descriptors on HPatches' three tasks (Balntas et al., CVPR 2017): patch verification, image matching
and patch retrieval, per jitter level, illumination and viewpoint sequences apart.

The protocol is a release's sequences: the real one (read by :mod:`facemetric.data.hpatches`, which also
makes the training cache) or one built from any photos (``facemetric protocol patches``: :mod:`.benchmark`,
one sequence per photo by :mod:`.sequences`). The definitions are hpatches-benchmark's Python evaluation code's
(commit e0c993c; docs/evaluation.md lists what remains different): :mod:`.pairs` draws the task lists as its
generators do, :mod:`.task_files` reads (and writes) its ``tasks/`` list files, :mod:`.metrics` holds the pure
reference metrics (AP as a trapezoid or a step), :mod:`.tasks` and :mod:`.retrieval` measure a release in
chunks; :mod:`.baselines` and
:mod:`.run` describe the patches (``facemetric eval --patches``), :mod:`.folder` writes the evaluation
folder, and :mod:`.result` types it."""

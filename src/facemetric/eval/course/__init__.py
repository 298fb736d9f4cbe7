"""The course task (CMU 11-785 HW2P2's shape): closed-set classification of the training people, and the
"known or nobody" mapping of unknown photos to an enrolled person or to a no-match label.

``facemetric protocol course`` writes the course layout from any identity dataset (:mod:`.split` decides
who and which photo goes where, :mod:`.layout` puts it on disk); ``facemetric predict classify`` labels a
test folder (:mod:`.classifier`, its metrics in :mod:`.classification`) and ``facemetric
predict map`` maps the unknown photos (:mod:`.mapping`, its pure functions in :mod:`.mapping_scores`,
its files in :mod:`.mapping_files`); the typed results are :mod:`.result`. The no-match label is defined
here, once, so that the command line's default needs no numpy.
"""

NO_MATCH_LABEL = "n000000"  # the answer "nobody enrolled" of the course's CSVs (an identity folder's name form)

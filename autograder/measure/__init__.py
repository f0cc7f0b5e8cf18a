"""Measurement: how long the course's operations take and how many bytes they move.

* :mod:`.timing` -- CUDA-event / CPU timing (:func:`~.timing.time_fn`) and bandwidth next to a copy
  (:func:`~.timing.measure_bandwidth`); every chapter's timing cells use it.
* :mod:`.embedding_bench` -- ``python -m autograder.measure.embedding_bench`` (``make bench``): the embedding
  lookup and its gradient across vocabulary sizes, and the reading and plotting of its results (the book's
  Measurements page).
* :mod:`.embedding_bytes` -- bytes a lookup and its gradients store and move, built on the reference's
  ``tensor_bytes`` and ``lookup_bytes``.
* :mod:`.zipf` -- Zipf-distributed token ids, the workload of the benchmark and of the memory chapter.
* :mod:`.scatter` -- the sort-based scatter-add, one of the timed gradient variants.

This layer imports only :mod:`autograder.reference` (and itself); the book's helpers build on it, never the other
way round (``tests/test_layout.py``).
"""

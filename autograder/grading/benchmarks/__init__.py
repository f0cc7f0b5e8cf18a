"""Grading benchmarks and their test data; the grader never imports this package (a test checks it).

* :mod:`.synthetic` -- a synthetic class (solved notebooks and every kind of hostile one) for the grading tests and
  benchmarks
* :mod:`.throughput_bench` -- ``python -m autograder.grading.benchmarks.throughput_bench``: seconds per notebook of
  ``grade`` (sandboxed, unsandboxed, serial) against plain ``nbgrader autograde`` and the execution floor
* :mod:`.dask_bench` -- ``python -m autograder.grading.benchmarks.dask_bench``: local against Dask cluster grading
"""

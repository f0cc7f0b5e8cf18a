"""Course package: reference implementations (:mod:`autograder.reference`), the judges (:mod:`autograder.checks`),
the code that runs in a student's kernel (:mod:`autograder.student`), timing helpers, benchmarks and the instructor
grading command (``python -m autograder grade ...``).

This file imports nothing: it is one of the few files of the package copied into the grading sandbox (see
:func:`autograder.student.sandbox_tree`), where only :mod:`autograder.student`, ``autograder/data`` and the timing
helpers (:mod:`autograder.measure.timing`, which the assignments' measurement cells import) exist.
"""

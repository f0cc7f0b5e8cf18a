"""The probes and input builders of the course's checks, one module per assignment (imported on first use by
:mod:`autograder.student.registry`). The judges in :mod:`autograder.checks` import the builders from here."""

"""nbgrader configuration of the course directory (this repository's root).

traitlets runs this file with ``get_config`` already defined (ruff is told so in ``pyproject.toml``).
"""

c = get_config()

c.CourseDirectory.root = "."
# The course's name in nbgrader's exchange (release_assignment / fetch_assignment / submit / collect on JupyterHub);
# students pass it as --course tokens-to-vectors. The exchange's folder is c.Exchange.root (default
# /srv/nbgrader/exchange, which must exist and be writable by everyone).
c.CourseDirectory.course_id = "tokens-to-vectors"
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "exercises"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"

# A cell that runs longer than this is interrupted (the whole-notebook limit is the grader's --timeout).
c.Execute.timeout = 60
# A student who deletes a test cell gets it back (and its points at stake) instead of a silent 0.
c.OverwriteCells.add_missing_cells = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

"""``python -m autograder <command>``: the one instructor CLI.

Commands (each lives in its own module and exposes ``main(argv) -> int``):

* ``grade``   -- grade a class of nbgrader submissions (:mod:`autograder.grading.cli`)
* ``release`` -- regenerate ``exercises/`` from ``solutions/`` (:mod:`autograder.release`)
* ``twins``   -- write the chapters' ``.ipynb`` twins for Colab and Binder (:mod:`autograder.twins`)
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "grade": (
        "autograder.grading.cli",
        "grade a class: python -m autograder grade SUBMISSIONS --assignment ID --out DIR",
    ),
    "release": ("autograder.release", "regenerate exercises/ from solutions/ (nbgrader generate_assignment)"),
    "twins": ("autograder.twins", "write book/<chapter>.ipynb beside each MyST chapter (for Colab and Binder)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] not in COMMANDS and argv[0] not in ("-h", "--help"):
        print(
            f"error: unknown command {argv[0]!r}: use one of {', '.join(COMMANDS)} (see python -m autograder --help)",
            file=sys.stderr,
        )
        return 2
    if not argv or argv[0] in ("-h", "--help"):
        lines = [f"  {name:8s} {help_}" for name, (_, help_) in COMMANDS.items()]
        stream = sys.stdout if argv else sys.stderr
        print(
            "usage: python -m autograder <command> [options]\n"
            + "\n".join(lines)
            + "\nEach command's options: python -m autograder <command> --help",
            file=stream,
        )
        return 0 if argv else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m autograder twins [--check]``: the ``.ipynb`` twin of every chapter, for Colab, Binder and downloads.

The chapters' sources are MyST Markdown notebooks (``book/<chapter>.md``), which Jupyter Book executes and Colab
cannot open. For each of them this command

1. stamps the course setup cell (:mod:`autograder.setup_cell`) as the chapter's first code cell, in the ``.md``
   itself (replacing an older one, or inserting it before the first code cell), and
2. writes ``book/<chapter>.ipynb`` beside it, converted with jupytext: no outputs, no execution counts, only the
   ``tags`` cell metadata, fixed notebook metadata, and cell ids derived from each cell's text, so that
   regenerating unchanged chapters writes nothing.

The twins are committed; sphinx-book-theme points a page's Colab and Binder buttons at a same-named ``.ipynb``
beside its source, and ``_config.yml`` keeps the twins out of the Sphinx build (``exclude_patterns``). Never edit
a twin: edit the ``.md`` and rerun the command. ``--check`` writes nothing and exits 1, with a one-line message,
when a chapter's setup cell or its twin is out of date (a test runs it).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from . import setup_cell

__all__ = ["chapters", "twin_text", "stamped_chapters", "main"]

ROOT = Path(__file__).resolve().parents[1]


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapters that are notebooks: every ``book/*.md`` whose front matter declares a ``kernelspec``."""
    found = []
    for path in sorted((root / "book").glob("*.md")):
        text = path.read_text()
        if text.startswith("---\n") and "\nkernelspec:" in text.split("\n---", 1)[0]:
            found.append(path)
    return found


def _cell_ids(nb) -> None:
    """Give every cell an id made from its type and text (``course-setup`` for the setup cell); a repeated cell gets
    a numbered suffix. Deterministic, unlike nbformat's random ids."""
    seen: dict[str, int] = {}
    for cell in nb.cells:
        if cell.cell_type == "code" and setup_cell.is_setup_source(cell.source):
            base = setup_cell.CELL_ID
        else:
            base = hashlib.sha256(f"{cell.cell_type}\0{cell.source}".encode()).hexdigest()[:12]
        seen[base] = seen.get(base, 0) + 1
        cell["id"] = base if seen[base] == 1 else f"{base}-{seen[base]}"


def twin_text(markdown: str) -> str:
    """The ``.ipynb`` text of a MyST notebook's text (normalised as :func:`autograder.release.normalise` does)."""
    import jupytext

    from .release import normalise

    nb = jupytext.reads(markdown, fmt="md:myst")
    nb.nbformat, nb.nbformat_minor = 4, 5
    for cell in nb.cells:
        cell.pop("attachments", None)
    _cell_ids(nb)
    return normalise(nb)


def stamped_chapters(root: Path = ROOT) -> dict[Path, str]:
    """``{chapter .md: its text with the current setup cell}`` for every chapter."""
    source = setup_cell.setup_source(root)
    return {path: setup_cell.stamp_markdown(path.read_text(), source) for path in chapters(root)}


def main(argv: list[str] | None = None, root: Path = ROOT) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autograder twins",
        description="Stamp the setup cell into book/*.md and write their .ipynb twins.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if a chapter's setup cell or its .ipynb twin is out of date",
    )
    args = parser.parse_args(argv)
    try:
        stamped = stamped_chapters(root)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not stamped:
        print("error: no MyST notebook (book/*.md with a kernelspec) found", file=sys.stderr)
        return 1
    stale = []
    for md, text in stamped.items():
        for path, wanted in ((md, text), (md.with_suffix(".ipynb"), twin_text(text))):
            current = path.read_text() if path.is_file() else None
            rel = path.relative_to(root).as_posix()
            if current == wanted:
                if not args.check:
                    print(f"unchanged {rel}")
            elif args.check:
                stale.append(rel)
            else:
                path.write_text(wanted)
                print(f"wrote {rel}")
    if stale:
        print(f"error: out of date: {', '.join(stale)}: run `python -m autograder twins`", file=sys.stderr)
        return 1
    if args.check:
        print(f"the {len(stamped)} chapters' setup cells and .ipynb twins are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())

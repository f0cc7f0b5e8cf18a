"""Notebook helpers for the chapters: the glue functions and the figures' common style.

Every number the prose states is computed in a cell and glued with myst-nb.

myst-nb's ``{glue:text}`` role reads a value back from its ``text/plain`` form with ``ast.literal_eval`` before it
applies a format spec, so a NumPy scalar (``np.float64(0.5)``) would not format; :func:`glue_number` stores plain
Python numbers. :func:`glue_text` stores a string for ``{glue:text}``, :func:`glue_markdown` a Markdown fragment for
``{glue:md}`` (code spans, emphasis, or a phrase that is empty on some machines). :func:`glue_figure` stores a
matplotlib figure for ``{glue:figure}`` (caption and alt text live there) and closes it so that the cell itself
shows nothing.

Outside the book build -- a chapter opened in Colab, Binder or Jupyter, where myst-nb is usually not installed and
nothing reads glued values -- :func:`glue_number`, :func:`glue_text` and :func:`glue_markdown` store nothing (they
still check their arguments) and :func:`glue_figure` shows the figure in the notebook instead.
"""

from __future__ import annotations

import numbers

__all__ = ["glue_number", "glue_text", "glue_markdown", "glue_figure", "use_book_style"]


def _glue():
    """myst-nb's ``glue``, or ``None`` where myst-nb is not installed (a notebook run outside the book build)."""
    try:
        from myst_nb import glue
    except ModuleNotFoundError:
        return None
    return glue


#: matplotlib settings shared by every chapter's figures.
BOOK_STYLE = {"figure.dpi": 110, "axes.spines.top": False, "axes.spines.right": False}


def glue_number(name: str, value) -> None:
    """Glue ``value`` as a Python ``int`` (integral types) or ``float``, without displaying it.

    Returns nothing, so that a call ending a cell adds no output of its own.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"glue_number({name!r}) needs a real number, got {type(value).__name__}")
    plain = int(value) if isinstance(value, numbers.Integral) else float(value)
    if glue := _glue():
        glue(name, plain, display=False)


def glue_text(name: str, text: str) -> None:
    """Glue a string (shown without quotes by ``{glue:text}``), without displaying it."""
    if glue := _glue():
        glue(name, str(text), display=False)


def glue_markdown(name: str, text: str) -> None:
    """Glue a Markdown fragment for the ``{glue:md}`` role (parsed as MyST where it is used), without displaying it."""
    from IPython.display import Markdown

    if glue := _glue():
        glue(name, Markdown(str(text)), display=False)


def glue_figure(name: str, fig) -> None:
    """Glue a matplotlib figure for a ``{glue:figure}`` directive and close it (no duplicate display)."""
    import matplotlib.pyplot as plt

    if glue := _glue():
        glue(name, fig, display=False)
    else:
        from IPython.display import display

        display(fig)
    plt.close(fig)


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib (call once, in a chapter's setup cell)."""
    import matplotlib.pyplot as plt

    plt.rcParams.update(BOOK_STYLE)

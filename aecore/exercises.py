"""Self-checks for the chapters' exercises.

Every exercise in the book is followed by a self-check cell that calls :func:`check`. In the
book the solution cell runs first, so the check passes (and a wrong solution fails the build and
the tests). In a student notebook (``scripts/student_notebooks.py`` strips the solutions) the
check says "not answered yet" until the student defines the answer, then "correct" or what is
wrong.

>>> check("Exercise 0", lambda: 1 + 1 == 2)
Exercise 0: correct.
>>> check("Exercise 0", lambda: undefined_answer > 0)
Exercise 0: not answered yet. Define `undefined_answer` in the cell above, run it, then run this check again.
"""

from typing import Callable


def check(name: str, condition: Callable[[], bool], hint: str = "") -> None:
    """Run ``condition()``; print whether the exercise is answered and right.

    Prints "correct", or "not answered yet" when a name the condition needs is undefined. A
    wrong answer raises ``AssertionError`` with ``hint``, so a wrong solution in the book fails
    its build. Returns nothing, so a check on a cell's last line displays only its message.
    """
    try:
        ok = bool(condition())
    except NameError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        print(f"{name}: not answered yet. Define `{missing}` in the cell above, run it, "
              "then run this check again.")
        return
    if not ok:
        raise AssertionError(f"{name}: not right yet. {hint}".strip())
    print(f"{name}: correct.")

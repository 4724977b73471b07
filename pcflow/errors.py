"""Exceptions raised by pcflow for bad user input and failed operations."""


class PcflowError(ValueError):
    """A user-facing error: bad input, unreadable file, unusable data.

    The command line turns it into a one-line message and a non-zero exit.
    """


def __getattr__(name: str):
    """Defines `NotFittedError` on first use.

    It subclasses scikit-learn's `NotFittedError` (so that scikit-learn's checks and ``except`` clauses recognise it),
    and importing scikit-learn takes most of a second: modules that only need `PcflowError` do not pay for it.
    """
    if name != "NotFittedError":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError

    class NotFittedError(PcflowError, SklearnNotFittedError):
        """Raised when a method that needs a fitted model is called before `fit`.

        A `PcflowError` (so a `ValueError`), an `AttributeError` and scikit-learn's `NotFittedError`.
        """

    globals()["NotFittedError"] = NotFittedError
    return NotFittedError

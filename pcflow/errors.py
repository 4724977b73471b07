"""Exceptions raised by pcflow for bad user input and failed operations."""


class PcflowError(ValueError):
    """A user-facing error: bad input, unreadable file, unusable data.

    The command line turns it into a one-line message and a non-zero exit.
    """


class NotFittedError(PcflowError, AttributeError):
    """Raised when a method that needs a fitted model is called before `fit`."""

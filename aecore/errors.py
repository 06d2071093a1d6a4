"""The one exception type that ``aecore`` raises for bad input.

Every check in the package raises :class:`AecoreError` with a message that says what is
wrong and what to do about it. The command line prints it as one ``error:`` line and exits
with status 2; a notebook shows it as a short error instead of a traceback from deep inside
NumPy or torch.
"""


class AecoreError(ValueError):
    """Bad input, with a message that says what to fix.

    >>> raise AecoreError("latent_dim must be at least 1; got 0")
    Traceback (most recent call last):
    ...
    aecore.errors.AecoreError: latent_dim must be at least 1; got 0
    """

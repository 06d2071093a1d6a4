"""aecore: the shared code of the book *Autoencoders from First Principles*.

Modules (dependencies point one way, top to bottom):

- ``aecore.errors``  -- the one exception type readers and the command line see.
- ``aecore.data``    -- data sets as NumPy arrays (Digits, a user's matrix), splits.
- ``aecore.linear``  -- PCA by SVD, the Eckart-Young bound, a NumPy linear autoencoder.
- ``aecore.plots``   -- figures used by the chapters.
- ``aecore.cli``     -- the ``aecore`` command line.

Importing ``aecore`` imports neither torch nor matplotlib; Chapter 1 stays NumPy-only.
"""

__version__ = "0.1.0"

from aecore.errors import AecoreError

__all__ = ["AecoreError", "__version__"]

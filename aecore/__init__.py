"""aecore: the shared code of the book *Autoencoders from First Principles*.

Modules (dependencies point one way, top to bottom):

- ``aecore.errors``  -- the one exception type readers and the command line see.
- ``aecore.data``    -- data sets as NumPy arrays (Digits, a user's matrix), splits.
- ``aecore.linear``  -- PCA by SVD, the Eckart-Young bound, a NumPy linear autoencoder (Chapter 1).
- ``aecore.images``  -- Pokemon artwork or any folder of images, preprocessed, split by species, cached.
- ``aecore.models``, ``aecore.conv`` -- the MLP and convolutional autoencoders (PyTorch).
- ``aecore.train``   -- ``set_seed``, ``get_device``, ``fit`` and checkpoints: every chapter's training.
- ``aecore.experiments``, ``aecore.bottleneck``, ``aecore.conv_experiment`` -- the chapters'
  experiments, shared with the command line (Chapters 2, 4 and 5).
- ``aecore.latent``, ``aecore.sliders``, ``aecore.explorer`` -- latent-space tools, live sliders and
  the kernel-free latent explorer (Chapter 3).
- ``aecore.denoising``, ``aecore.vae``, ``aecore.anomaly`` -- corruptions, Wiener filter and score
  sampling (Chapter 6); the variational autoencoder, its bounds and probabilistic PCA (Chapter 7);
  anomaly scores, baselines and protocols (Chapter 8).
- ``aecore.exercises`` -- the self-checks that follow every exercise.
- ``aecore.plots``   -- figures used by the chapters.
- ``aecore.cli``     -- the ``aecore`` command line.

Importing ``aecore`` imports neither torch nor matplotlib; Chapter 1 stays NumPy-only.
"""

__version__ = "0.1.0"

from aecore.errors import AecoreError

__all__ = ["AecoreError", "__version__"]

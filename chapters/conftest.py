"""For nbval (``pytest --nbval-lax chapters/``, as ``make test`` runs it): a longer output wait.

After the kernel replies that a cell has finished, nbval reads the cell's messages and waits at
most 5 seconds for each one; that wait is hard-coded (nbval 0.11, its issues #136 and #231).
Chapter 6's seed cell (six denoisers, each with a progress bar) once failed with "Timeout of 5
seconds exceeded waiting for output" on a loaded CI machine. It had sent 1019 widget messages,
about the 1000 that a ZeroMQ socket queues by default; fit's bar now redraws less often (295),
and this file raises the wait to ``OUTPUT_WAIT`` seconds in case a loaded machine is slow to
deliver them. nbval uses the same wait for a kernel to stop after a cell times out and for its
idle message after an error, so those waits grow too. Nothing else changes: every cell runs as
the reader runs it, its errors fail the test, and ``--nbval-cell-timeout`` still limits the
execution itself. pytest loads this file whenever it collects the chapters.
"""

OUTPUT_WAIT = 120  # seconds


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's IPyNbCell
            item.output_timeout = OUTPUT_WAIT

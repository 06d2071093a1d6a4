"""A pytest plugin for ``make nbval``: nbval waits longer for a cell's outputs.

After the kernel replies that a cell has finished, nbval reads the cell's outputs and waits at
most 5 seconds for each message; that wait is hard-coded (nbval 0.11, its issues #136 and #231).
On a loaded 2-core CI machine, Chapter 6's seed cell (six denoisers, each with a progress bar)
finished and then failed with "Timeout of 5 seconds exceeded waiting for output". This plugin
raises that wait to ``OUTPUT_WAIT`` seconds. Nothing else changes: every cell still runs as the
reader runs it, its errors still fail the test, and ``--nbval-cell-timeout`` still limits the
execution itself.
"""

OUTPUT_WAIT = 120  # seconds


def pytest_collection_modifyitems(items):
    for item in items:
        if hasattr(item, "output_timeout"):  # nbval's IPyNbCell
            item.output_timeout = OUTPUT_WAIT

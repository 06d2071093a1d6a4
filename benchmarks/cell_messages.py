"""How many messages each chapter cell sends to Jupyter, and how long it runs.

    .venv/bin/python benchmarks/cell_messages.py chapters/06_denoising.ipynb [more.ipynb ...] [--over 100]

Runs each notebook in a fresh kernel, one cell at a time as nbval does: it sends the cell, waits
for the kernel's reply, then reads the cell's messages (outputs, widget updates) until the kernel
says it is idle. nbval waits at most 5 s for each of those messages (chapters/conftest.py raises
that to 120 s), and a cell that sends about a thousand of them (ZeroMQ's default queue) failed on
a loaded CI machine. Prints every cell with more than ``--over`` messages, and the largest count.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter


def cell_messages(path: str):
    """Yield ``(cell index, seconds to the reply, Counter of message types)`` per code cell."""
    import nbformat
    from jupyter_client.manager import start_new_kernel

    nb = nbformat.read(path, as_version=4)
    km, kc = start_new_kernel(kernel_name="python3", cwd=os.path.dirname(path) or ".")
    try:
        for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
            start = time.perf_counter()
            msg_id = kc.execute(cell.source)
            while kc.get_shell_msg(timeout=1200)["parent_header"].get("msg_id") != msg_id:
                pass
            seconds = time.perf_counter() - start
            kinds = Counter()
            while True:
                msg = kc.get_iopub_msg(timeout=300)
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                kinds[msg["msg_type"]] += 1
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    break
            yield i, seconds, kinds
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--over", type=int, default=100, help="print cells with more messages")
    args = parser.parse_args()
    for path in args.notebooks:
        largest = 0
        for i, seconds, kinds in cell_messages(path):
            total = sum(kinds.values())
            largest = max(largest, total)
            if total > args.over:
                widget = kinds["comm_open"] + kinds["comm_msg"]
                print(f"{os.path.basename(path)} cell {i}: {total} messages "
                      f"({widget} widget), {seconds:.1f} s", flush=True)
        print(f"{os.path.basename(path)}: at most {largest} messages in one cell", flush=True)


if __name__ == "__main__":
    main()

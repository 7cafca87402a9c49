"""Run a command and write its peak resident size to a file.

``python bench/measured_child.py REPORT CMD...`` runs CMD in a process of its
own, waits for it and writes ``ru_maxrss`` (KiB) of CMD and every descendant
it waited for to REPORT; the exit status is CMD's. Linux starts a program's
``ru_maxrss`` at the resident size of the process that ran it, so a benchmark
that holds generated mail would otherwise measure itself: this small process
stands in between. SIGTERM and SIGINT are passed on to CMD.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path


def main() -> int:
    report, command = sys.argv[1], sys.argv[2:]
    pid = os.fork()
    if pid == 0:
        os.execvp(command[0], command)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda signum, _frame: os.kill(pid, signum))
    while True:
        try:
            _pid, status, usage = os.wait4(pid, 0)
            break
        except InterruptedError:
            continue
    Path(report).write_text(str(usage.ru_maxrss))
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())

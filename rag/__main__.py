"""``python -m rag``: the command line."""

import faulthandler
import signal

from rag.cli import main

if hasattr(signal, "SIGUSR1"):  # kill -USR1 <pid>: every thread's stack to stderr (not on Windows)
    faulthandler.register(signal.SIGUSR1, all_threads=True)
raise SystemExit(main())

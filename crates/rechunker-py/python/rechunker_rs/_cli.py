"""The ``rechunk`` command of the wheel: the same Rust main as the ``rechunk`` binary."""

from __future__ import annotations

import signal
import sys

from . import _native


def main() -> None:
    """Runs ``rechunk`` with this process's arguments and exits with its status."""
    # Ctrl-C and a closed pipe end the command as they end the native binary, not as Python
    # exceptions it would never see while Rust runs.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(_native.cli_main(["rechunk", *sys.argv[1:]]))


if __name__ == "__main__":
    main()

"""The ``ganvas`` console script: no arguments open the app, arguments run the command line.

Nothing heavy is imported here, so the window can appear before torch has loaded.
"""

from __future__ import annotations

import sys


def main() -> int:
    if len(sys.argv) > 1:
        from engine.api import run_cli as cli_main

        return cli_main(sys.argv[1:])
    from desktop.app import main as app_main

    return app_main()


if __name__ == "__main__":
    sys.exit(main())

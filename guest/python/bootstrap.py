"""Nexus Python runtime entry point, run in the sandbox as
    /usr/bin/python3 -u /opt/nexus/python/bootstrap.py
It attaches to the channel, loads the function's handler and serves
invocations forever (see nexusrt/runtime.py)."""
import sys

from nexusrt import runtime

if __name__ == "__main__":
    try:
        runtime.main()
    except KeyboardInterrupt:
        sys.exit(130)

"""The Nexus guest runtime for Python: the channel binding (channel.py, over
libnexus through ctypes) and the Lambda-style invocation loop (runtime.py)."""

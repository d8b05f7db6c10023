"""Nexus boto3 shim: what `import boto3` finds inside a nexus-mode sandbox.

S3 calls become requests on the Nexus shared-memory channel; nexusd performs
them.  Only the S3 client and resource are provided; everything else raises
an error naming what is missing.  The supported surface is listed in
docs/functions.md.
"""
from boto3.session import Session

__version__ = "1.26.27+nexus"
__author__ = "Nexus"
NEXUS_SHIM = True

DEFAULT_SESSION = None


def setup_default_session(**kwargs):
    global DEFAULT_SESSION
    DEFAULT_SESSION = Session(**kwargs)


def _get_default_session():
    if DEFAULT_SESSION is None:
        setup_default_session()
    return DEFAULT_SESSION


def client(*args, **kwargs):
    return _get_default_session().client(*args, **kwargs)


def resource(*args, **kwargs):
    return _get_default_session().resource(*args, **kwargs)


def set_stream_logger(name="boto3", level=10, format_string=None):
    """Accepted for compatibility; the shim logs nothing of its own."""

"""Nexus botocore shim: only what boto3-using code imports from botocore
(exceptions, response.StreamingBody, config.Config).  The real botocore is
never loaded in nexus mode: S3 calls go over the Nexus channel."""
__version__ = "1.29.27+nexus"
NEXUS_SHIM = True

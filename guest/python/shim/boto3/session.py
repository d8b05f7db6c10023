"""boto3.session.Session for nexus mode.  Credentials, profiles, regions and
endpoints are accepted and ignored: nexusd holds the credentials and decides
where S3 is."""
import os

from boto3 import _nexus_s3


class Session:
    def __init__(self, aws_access_key_id=None, aws_secret_access_key=None, aws_session_token=None,
                 region_name=None, botocore_session=None, profile_name=None):
        self._region = region_name or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self._profile = profile_name

    @property
    def region_name(self):
        return self._region

    @property
    def profile_name(self):
        return self._profile or "default"

    @property
    def available_profiles(self):
        return []

    def get_available_services(self):
        return ["s3"]

    def get_available_resources(self):
        return ["s3"]

    def get_credentials(self):
        """The guest has no credentials in nexus mode (nexusd signs requests)."""
        return None

    def client(self, service_name, region_name=None, api_version=None, use_ssl=True, verify=None,
               endpoint_url=None, aws_access_key_id=None, aws_secret_access_key=None, aws_session_token=None,
               config=None):
        if service_name != "s3":
            raise NotImplementedError(
                f"nexus boto3 shim: boto3.client({service_name!r}) is not supported in nexus mode: only 's3' "
                "goes over the Nexus channel and the sandbox has no network. Deploy the function with "
                "--mode baseline to use other AWS services (see docs/functions.md)")
        return _nexus_s3.S3Client(region_name=region_name or self._region, endpoint_url=endpoint_url,
                                  config=config)

    def resource(self, service_name, region_name=None, api_version=None, use_ssl=True, verify=None,
                 endpoint_url=None, aws_access_key_id=None, aws_secret_access_key=None, aws_session_token=None,
                 config=None):
        if service_name != "s3":
            raise NotImplementedError(
                f"nexus boto3 shim: boto3.resource({service_name!r}) is not supported in nexus mode: only "
                "the 's3' resource is provided (see docs/functions.md)")
        from boto3 import _nexus_resource
        return _nexus_resource.S3ServiceResource(self.client("s3", region_name=region_name,
                                                             endpoint_url=endpoint_url, config=config))

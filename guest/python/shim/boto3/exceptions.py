"""boto3.exceptions (the classes user code names)."""


class Boto3Error(Exception):
    pass


class ResourceNotExistsError(Boto3Error):
    pass


class UnknownAPIVersionError(Boto3Error):
    pass


class NoVersionFound(Boto3Error):
    pass


class RetriesExceededError(Boto3Error):
    def __init__(self, last_exception, msg="Max Retries Exceeded"):
        super().__init__(msg)
        self.last_exception = last_exception


class S3TransferFailedError(Boto3Error):
    pass


class S3UploadFailedError(Boto3Error):
    pass

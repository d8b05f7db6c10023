"""The exception classes of botocore.exceptions that user code catches.
ClientError carries the same `response` dict as botocore's."""


class BotoCoreError(Exception):
    fmt = "An unspecified error occurred"

    def __init__(self, **kwargs):
        try:
            msg = self.fmt.format(**kwargs)
        except (KeyError, IndexError):
            msg = self.fmt
        Exception.__init__(self, msg)
        self.kwargs = kwargs


class DataNotFoundError(BotoCoreError):
    fmt = "Unable to load data for: {data_path}"


class UnknownServiceError(DataNotFoundError):
    fmt = "Unknown service: '{service_name}'. Valid service names are: {known_service_names}"


class NoCredentialsError(BotoCoreError):
    fmt = "Unable to locate credentials"


class PartialCredentialsError(BotoCoreError):
    fmt = "Partial credentials found in {provider}, missing: {cred_var}"


class CredentialRetrievalError(BotoCoreError):
    fmt = "Error when retrieving credentials from {provider}: {error_msg}"


class NoRegionError(BotoCoreError):
    fmt = "You must specify a region."


class ProfileNotFound(BotoCoreError):
    fmt = "The config profile ({profile}) could not be found"


class HTTPClientError(BotoCoreError):
    fmt = "An HTTP Client raised an unhandled exception: {error}"


class ConnectionError(BotoCoreError):
    fmt = "An HTTP Client failed to establish a connection: {error}"


class EndpointConnectionError(ConnectionError):
    fmt = 'Could not connect to the endpoint URL: "{endpoint_url}"'


class ConnectionClosedError(HTTPClientError):
    fmt = 'Connection was closed before we received a valid response from endpoint URL: "{endpoint_url}".'


class ReadTimeoutError(HTTPClientError):
    fmt = 'Read timeout on endpoint URL: "{endpoint_url}"'


class ConnectTimeoutError(ConnectionError):
    fmt = 'Connect timeout on endpoint URL: "{endpoint_url}"'


class ResponseStreamingError(HTTPClientError):
    fmt = "An error occurred while reading from response stream: {error}"


class IncompleteReadError(BotoCoreError):
    fmt = "{actual_bytes} read, but total bytes expected is {expected_bytes}."


class ValidationError(BotoCoreError):
    fmt = "Invalid value ('{value}') for param {param} of type {type_name} "


class ParamValidationError(BotoCoreError):
    fmt = "Parameter validation failed:\n{report}"


class PaginationError(BotoCoreError):
    fmt = "Error during pagination: {message}"


class OperationNotPageableError(BotoCoreError):
    fmt = "Operation cannot be paginated: {operation_name}"


class WaiterError(BotoCoreError):
    fmt = "Waiter {name} failed: {reason}"


class UnknownClientMethodError(BotoCoreError):
    fmt = "Client does not have method: {method_name}"


class ClientError(Exception):
    MSG_TEMPLATE = "An error occurred ({error_code}) when calling the {operation_name} operation{retry_info}: {error_message}"

    def __init__(self, error_response, operation_name):
        err = error_response.get("Error", {})
        msg = self.MSG_TEMPLATE.format(error_code=err.get("Code", "Unknown"),
                                       error_message=err.get("Message", "Unknown"),
                                       operation_name=operation_name, retry_info="")
        super().__init__(msg)
        self.response = error_response
        self.operation_name = operation_name

    def __reduce__(self):
        return self.__class__, (self.response, self.operation_name)

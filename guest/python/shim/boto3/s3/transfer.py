"""boto3.s3.transfer.TransferConfig, accepted and ignored: in nexus mode a
transfer is one request over the channel, with no multipart or threads."""


class TransferConfig:
    def __init__(self, multipart_threshold=8 * 1024 * 1024, max_concurrency=10,
                 multipart_chunksize=8 * 1024 * 1024, num_download_attempts=5, max_io_queue=100,
                 io_chunksize=256 * 1024, use_threads=True, max_bandwidth=None):
        self.multipart_threshold = multipart_threshold
        self.max_concurrency = max_concurrency
        self.multipart_chunksize = multipart_chunksize
        self.num_download_attempts = num_download_attempts
        self.max_io_queue = max_io_queue
        self.io_chunksize = io_chunksize
        self.use_threads = use_threads
        self.max_bandwidth = max_bandwidth

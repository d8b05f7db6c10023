"""botocore.config.Config, accepted and ignored in nexus mode: retries,
timeouts, signature versions and addressing styles are nexusd's business."""


class Config:
    def __init__(self, *args, **kwargs):
        self._user_provided_options = dict(kwargs)
        for k, v in kwargs.items():
            setattr(self, k, v)

    def merge(self, other_config):
        merged = dict(self._user_provided_options)
        merged.update(getattr(other_config, "_user_provided_options", {}))
        return Config(**merged)

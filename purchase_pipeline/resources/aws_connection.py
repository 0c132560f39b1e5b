"""Where and as whom a resource reaches AWS: region, endpoint and profile, in one place.

Credentials come from the default AWS chain only. The client is created on first use, so
loading the code location never touches AWS.
"""

from typing import Any

import boto3
from botocore.config import Config
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr


class AwsConnection(ConfigurableResource):
    """Mixed into every AWS resource that talks to one boto3 service."""

    region_name: str | None = Field(
        default=None, description="AWS region; default from the AWS config (AWS_REGION)."
    )
    endpoint_url: str | None = Field(
        default=None,
        description="Endpoint for MinIO, LocalStack or moto; boto3 also honours AWS_ENDPOINT_URL.",
    )
    profile_name: str | None = Field(
        default=None, description="AWS profile of the shared config; default chain if unset."
    )

    _client: Any = PrivateAttr(default=None)

    def boto_client(self, service: str, max_attempts: int = 8) -> Any:
        """One boto3 client per resource instance, with standard retries and backoff.

        `max_attempts` is botocore's: the retries after the first attempt. Standard mode retries
        throttling, 5xx and network errors with exponential backoff and full jitter, and
        never retries an error that another attempt cannot fix (access denied, bad input).
        """
        if self._client is None:
            session = boto3.session.Session(profile_name=self.profile_name)
            self._client = session.client(
                service,
                region_name=self.region_name,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
            )
        return self._client

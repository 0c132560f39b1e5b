"""Where and as whom a resource reaches AWS: region, endpoint and profile, in one place.

Credentials come from the default AWS chain only. The client is created on first use, so
loading the code location never touches AWS.

The region is resolved here, once, for every client of the project (the resources, bootstrap,
the Athena connection): the resource's `region_name`, else `AWS_REGION`, else
`AWS_DEFAULT_REGION`, else the AWS profile's `region`. boto3 alone does not do this: the pinned
botocore reads `AWS_DEFAULT_REGION` and the profile but not `AWS_REGION`, which the README (and
the AWS CLI v2, the SDKs of other languages, Lambda) use. Without a region botocore refuses to
make a Glue, Athena or Firehose client with a traceback (`NoRegionError`) and silently sends S3
calls to us-east-1; here a missing region is one error saying what to set.
"""

import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ProfileNotFound
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

NO_REGION = "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a region in the AWS profile)"


class AwsConfigError(ValueError):
    """The AWS configuration lacks what a client needs (a region, a named profile); the message
    is one line saying what to set. A ValueError, so the CLI reports it as an `error:` line."""


def resolve_region(region_name: str | None = None, profile_name: str | None = None) -> str:
    """The region for an AWS client: `region_name` if given, else `AWS_REGION`, else
    `AWS_DEFAULT_REGION`, else the region of the AWS profile (`profile_name`, else
    `AWS_PROFILE`, else `default`) in the shared config file. Raises AwsConfigError if none."""
    for value in (region_name, os.environ.get("AWS_REGION"), os.environ.get("AWS_DEFAULT_REGION")):
        if value and value.strip():
            return value.strip()
    try:
        configured = boto3.session.Session(profile_name=profile_name).region_name
    except ProfileNotFound as exc:
        profile = exc.kwargs.get("profile", profile_name)
        raise AwsConfigError(
            f"AWS profile {profile!r} not found in the AWS config: set AWS_PROFILE to a "
            "configured profile, or unset it"
        ) from None
    if configured:
        return str(configured)
    raise AwsConfigError(NO_REGION)


class AwsConnection(ConfigurableResource):
    """Mixed into every AWS resource that talks to one boto3 service."""

    region_name: str | None = Field(
        default=None,
        description="AWS region; default AWS_REGION, else AWS_DEFAULT_REGION, else the AWS "
        "profile's region.",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="Endpoint for MinIO, LocalStack or moto; boto3 also honours AWS_ENDPOINT_URL.",
    )
    profile_name: str | None = Field(
        default=None, description="AWS profile of the shared config; default chain if unset."
    )

    _client: Any = PrivateAttr(default=None)

    def resolved_region_name(self) -> str:
        """The region every client of this resource uses (see `resolve_region`); raises
        AwsConfigError, one line saying what to set, when none is configured."""
        return resolve_region(self.region_name, self.profile_name)

    def boto_client(self, service: str, max_attempts: int = 8) -> Any:
        """One boto3 client per resource instance, with standard retries and backoff.

        `max_attempts` is botocore's: the retries after the first attempt. Standard mode retries
        throttling, 5xx and network errors with exponential backoff and full jitter, and
        never retries an error that another attempt cannot fix (access denied, bad input).
        """
        if self._client is None:
            region = self.resolved_region_name()
            session = boto3.session.Session(profile_name=self.profile_name)
            self._client = session.client(
                service,
                region_name=region,
                endpoint_url=self.endpoint_url,
                config=Config(retries={"mode": "standard", "max_attempts": max_attempts}),
            )
        return self._client

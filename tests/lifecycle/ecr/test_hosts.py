"""Which registry hosts are ECR, and the ones that only pretend to be."""

from __future__ import annotations

import pytest

from lifecycle.ecr.hosts import is_ecr_host, parse_host
from lifecycle.errors import InvalidReference


@pytest.mark.parametrize(
    ("host", "account", "region", "partition"),
    [
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com", "123456789012", "eu-west-1", "aws"),
        (
            "000000000000.dkr.ecr.us-gov-east-1.amazonaws.com",
            "000000000000",
            "us-gov-east-1",
            "aws",
        ),
        (
            "210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn",
            "210987654321",
            "cn-north-1",
            "aws-cn",
        ),
        ("123456789012.dkr.ecr-fips.us-east-2.amazonaws.com", "123456789012", "us-east-2", "aws"),
    ],
)
def test_ecr_hosts_are_recognised(host: str, account: str, region: str, partition: str) -> None:
    parsed = parse_host(host)
    assert parsed is not None
    assert (parsed.account, parsed.region, parsed.partition) == (account, region, partition)


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1:5000",
        "registry-1.docker.io",
        "ecr.example.com",
        "public.ecr.aws",
        # Not AWS at all: AWS credentials must never be offered to it.
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com.evil.example",
    ],
)
def test_other_hosts_are_not_ecr(host: str) -> None:
    assert parse_host(host) is None
    assert not is_ecr_host(host)


@pytest.mark.parametrize(
    "host",
    [
        "123456789012.dkr.ecr.amazonaws.com",  # no region
        "12345.dkr.ecr.eu-west-1.amazonaws.com",  # short account
        "123456789012.dkr.ecr.EU-WEST-1.amazonaws.com",
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com:443",
        "acct.dkr.ecr.eu-west-1.amazonaws.com",
        "123456789012.dkr.ecr.eu_west_1.amazonaws.com",
        "١٢٣٤٥٦٧٨٩٠١٢.dkr.ecr.eu-west-1.amazonaws.com",  # Arabic-Indic digits
    ],
)
def test_malformed_ecr_hosts_are_named(host: str) -> None:
    with pytest.raises(InvalidReference) as caught:
        parse_host(host)
    assert caught.value.exit_code == 61
    assert host in caught.value.message

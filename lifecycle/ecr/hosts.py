"""Amazon ECR registry host names: which hosts are ECR, and their account and region."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lifecycle.errors import InvalidReference

# <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]; the account is always 12 digits and a
# region reads like eu-west-1, us-gov-east-1 or cn-north-1.
_HOST_RE = re.compile(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?P<fips>-fips)?\."
    r"(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})\.amazonaws\.com(?P<china>\.cn)?"
)
# Anything that claims to be an ECR data plane host: refused loudly when malformed rather than
# treated as an ordinary registry whose docker login would never work.
_CLAIMS_ECR_RE = re.compile(r".*\.dkr\.ecr[^.]*\..*amazonaws\.com(?:\.cn)?(?::[0-9]+)?", re.I)


@dataclass(frozen=True)
class EcrHost:
    """An ECR registry host split into the parts the control plane needs."""

    host: str
    account: str
    region: str

    @property
    def partition(self) -> str:
        """The AWS partition the host lives in (``aws`` or ``aws-cn``)."""
        return "aws-cn" if self.host.endswith(".cn") else "aws"


def parse_host(host: str) -> EcrHost | None:
    """Return the ECR parts of a registry host, ``None`` for a host that is not ECR.

    Raises ``InvalidReference`` for a host that looks like ECR but cannot be one (no region,
    a short account, upper case, a port), so the mistake is named instead of surfacing later
    as an authentication failure.
    """
    match = _HOST_RE.fullmatch(host)
    if match:
        return EcrHost(host=host, account=match["account"], region=match["region"])
    if _CLAIMS_ECR_RE.fullmatch(host):
        raise InvalidReference(
            f"failed to read ECR host {host!r}: expected "
            "<12-digit account>.dkr.ecr.<region>.amazonaws.com[.cn], lower case, no port",
            hint="copy the registry host from the repository URI the ECR console shows",
        )
    return None


def is_ecr_host(host: str) -> bool:
    """Tell whether ``host`` is an ECR registry host (raises for malformed ECR-like hosts)."""
    return parse_host(host) is not None

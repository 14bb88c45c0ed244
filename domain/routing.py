"""Which branch answers a contact from a region (seed 003, item 1).

A region is what GeoIP or the provider reports: an ISO 3166-2 code ("RU-SVE") or a name
("Sverdlovsk Oblast"). Matching is deliberately simple so an admin can predict it:

1. a rule whose `region` equals the region, ignoring case and surrounding spaces;
2. for an ISO 3166-2 code, a rule for its country ("RU" catches every "RU-..." without a
   rule of its own); names are never split, "Ханты-Мансийский АО" is not a code;
3. otherwise, or when the region is unknown, the default branch from the settings.

When several rules match at the same step, the first in the list wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

_ISO_3166_2 = re.compile(r"([a-z]{2})-[a-z0-9]{1,3}")


def _normalize(region: str) -> str:
    return region.strip().casefold()


class RegionRule(BaseModel):
    """Contacts from `region` (a code, a name, or a two-letter country) go to `branch_id`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = Field(pattern=r"\S")  # at least one non-space character
    branch_id: int


def matching_rule(rules: Sequence[RegionRule], region: str | None) -> RegionRule | None:
    """The rule that decides for `region` (steps 1 and 2 above), None when none does."""
    if region is None or not region.strip():
        return None
    wanted = _normalize(region)
    lookups = [wanted]
    if code := _ISO_3166_2.fullmatch(wanted):
        lookups.append(code.group(1))
    for lookup in lookups:
        for rule in rules:
            if _normalize(rule.region) == lookup:
                return rule
    return None


def branch_for_region(rules: Sequence[RegionRule], region: str | None, default_branch_id: int) -> int:
    """The branch for a contact's region; `default_branch_id` when no rule applies."""
    rule = matching_rule(rules, region)
    return default_branch_id if rule is None else rule.branch_id


class RegionResolver(Protocol):
    """Where an IP address is (GeoIP): the region `branch_for_region` takes, None when unknown.
    The website widget brings the first one; until an app has one, routing tools take a region."""

    def region_for(self, ip: str) -> str | None: ...

"""Routing: which suggestions a person must see before they count.

Suggestions under the confidence threshold go to review. Of the confident
ones, a seeded random share goes to an audit queue so reviewers can estimate
the error rate of what was accepted without them; the rest are accepted.
The draw is a hash of the seed and the suggestion id, so it is the same on
every re-run and does not depend on the order suggestions arrive in.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, Field

from pipeline.suggestion import Status, Suggestion


class RoutingPolicy(BaseModel):
    threshold: float = Field(default=0.6, ge=0, le=1)
    audit_share: float = Field(default=0.10, ge=0, le=1)
    seed: int = 0


def audit_draw(seed: int, suggestion_id: str) -> float:
    """A uniform number in [0, 1) fixed by the seed and the suggestion."""
    digest = hashlib.sha256(f"{seed}:{suggestion_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def route(suggestion: Suggestion, policy: RoutingPolicy) -> Status:
    if suggestion.confidence < policy.threshold:
        return "review"
    if audit_draw(policy.seed, suggestion.id) < policy.audit_share:
        return "audit"
    return "accepted"

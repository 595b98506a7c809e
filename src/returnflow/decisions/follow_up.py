"""What follows every decision, in the same commit: the parked facts the return can now use
(:func:`returnflow.decisions.facts.drain`), native mode's platform-return effects
(:func:`returnflow.decisions.platform.plan`) and when a timer next has something to do
(:func:`returnflow.decisions.timers.schedule`)."""

from __future__ import annotations

from returnflow.decisions import facts, platform
from returnflow.decisions import timers as timer_rules
from returnflow.decisions.change import Change
from returnflow.domain.policy import ReturnPolicy

__all__ = ["follow_up"]


def follow_up(change: Change, policy: ReturnPolicy) -> None:
    """Run after a decision on ``change`` (and on each return it was reset into)."""
    facts.drain(change, policy)
    platform.plan(change, policy)
    timer_rules.schedule(change, policy)

"""Checks an event against the policy: things the contract alone cannot know."""

from __future__ import annotations

from schemas.deadletter import FieldError
from schemas.events import ConsentEvent
from streams.core.policy import Policy


def policy_errors(event: ConsentEvent, policy: Policy) -> list[FieldError]:
    controller = policy.controller(event.controller)
    if controller is None:
        return [FieldError(loc="controller", msg=f"unknown controller {event.controller!r}")]
    if event.purpose is None:
        return []
    purpose = controller.purposes.get(event.purpose)
    if purpose is None:
        return [
            FieldError(
                loc="purpose",
                msg=f"controller {event.controller!r} has no purpose {event.purpose!r}",
            )
        ]
    if event.channel is not None and event.channel not in purpose.channels:
        offered = ", ".join(purpose.channels)
        return [
            FieldError(
                loc="channel",
                msg=f"purpose {event.purpose!r} has no channel {event.channel.value!r} "
                f"(it has: {offered})",
            )
        ]
    return []

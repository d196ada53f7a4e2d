"""The job execution state machine (device-protocol.md §2.4, decision 7 of §8) — plain Python.

Who may move an execution where: the device (start-next, update) and the service (rollout,
timers, cancel, target changes). Everything that changes an execution's status asks here first.
"""

from firmware.choices import ExecutionStatus as S

TERMINAL = frozenset({S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.REJECTED, S.REMOVED, S.CANCELED})
PENDING = (S.IN_PROGRESS, S.QUEUED)  # the order devices see them in ($next, notify)
# What a device may report (UpdateJobExecution `status`).
DEVICE_REPORTS = frozenset({S.IN_PROGRESS, S.SUCCEEDED, S.FAILED, S.REJECTED})
# Failures the retry config may retry (jobExecutionsRetryConfig failureType).
RETRYABLE = frozenset({S.FAILED, S.TIMED_OUT})

_BY_DEVICE = {
    # Decision 7: a device may finish a QUEUED execution without starting it.
    S.QUEUED: frozenset({S.IN_PROGRESS, S.SUCCEEDED, S.FAILED, S.REJECTED}),
    # IN_PROGRESS -> IN_PROGRESS is repeatable: it refreshes statusDetails and the step timer.
    S.IN_PROGRESS: frozenset({S.IN_PROGRESS, S.SUCCEEDED, S.FAILED, S.REJECTED}),
}
_BY_SERVICE = {
    S.QUEUED: frozenset({S.CANCELED, S.REMOVED}),
    # CANCELED from IN_PROGRESS only with force (may_cancel).
    S.IN_PROGRESS: frozenset({S.CANCELED, S.TIMED_OUT, S.REMOVED}),
}


def is_terminal(status: str) -> bool:
    return status in TERMINAL


def device_may_move(current: str, target: str) -> bool:
    """May a device's update move an execution from `current` to `target`?"""
    return target in _BY_DEVICE.get(S(current), frozenset())


def service_may_move(current: str, target: str) -> bool:
    return target in _BY_SERVICE.get(S(current), frozenset())


def may_cancel(current: str, *, force: bool) -> bool:
    """Cancel (CancelJob, CancelJobExecution, abort): QUEUED always, IN_PROGRESS only with force."""
    return current == S.QUEUED or (force and current == S.IN_PROGRESS)

"""The rollout page (admin look, at /admin/firmware/rollout/<rollout_id>/page/): its parts as a
fragment the page fetches again when the rollout changes (firmware.consumers), and its buttons —
each a POST calling the same service or control function as the REST API, with the user as
actor. A refused action is a message on the page, never a 500."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone
from django.views.decorators.http import require_POST

from firmware.rollouts import control, page, services, states
from firmware.rollouts.models import Rollout
from fleetportal.actors import actor_for_request
from fleetportal.errors import DomainError

VIEW = "firmware.view_rollout"


def rollout_page(request, rollout_id: str):
    return _render(request, rollout_id, "firmware/rollout.html")


def rollout_parts(request, rollout_id: str):
    return _render(request, rollout_id, "firmware/rollout_parts.html")


def _render(request, rollout_id: str, template: str):
    if not request.user.has_perm(VIEW):
        raise PermissionDenied
    rollout = get_object_or_404(Rollout.objects.select_related("firmware"), rollout_id=rollout_id)
    actor = actor_for_request(request)
    context = {
        **admin.site.each_context(request),
        "title": f"Rollout {rollout.rollout_id}",
        **page.context(rollout, request.user, actor, timezone.now()),
    }
    return TemplateResponse(request, template, context)


# action -> (permission, what it does); the REST API's RolloutViewSet calls the same functions.
ACTIONS = {
    "start": (page.RUN, lambda r, a, reason, force: services.request_start(r, actor=a)),
    "approve": (page.APPROVE, lambda r, a, reason, force: services.approve(r, actor=a)),
    "pause": (page.RUN, lambda r, a, reason, force: control.pause(r, actor=a, reason=reason)),
    "resume": (page.RUN, lambda r, a, reason, force: control.resume(r, actor=a, reason=reason)),
    "abort": (
        page.RUN,
        lambda r, a, reason, force: control.abort(r, actor=a, reason=reason, force=force),
    ),
    "cancel": (page.RUN, lambda r, a, reason, force: services.cancel(r, actor=a, reason=reason)),
}
DONE = {
    "start": "started",
    "approve": "approved",
    "pause": "paused",
    "resume": "resumed",
    "abort": "aborted",
    "cancel": "canceled",
}


@require_POST
def rollout_action(request, rollout_id: str, action: str):
    permission, do = ACTIONS.get(action, (None, None))
    if do is None or not request.user.has_perm(VIEW) or not request.user.has_perm(permission):
        raise PermissionDenied
    rollout = get_object_or_404(Rollout, rollout_id=rollout_id)
    reason = request.POST.get("reason", "").strip()[:500]
    force = request.POST.get("force") == "force"
    try:
        do(rollout, actor_for_request(request), reason, force)
    except (states.IllegalTransition, DomainError, ValidationError) as exc:
        messages.error(request, f"Not {DONE[action]}: {_message(exc)}")
    else:
        messages.success(request, f"Rollout {rollout.rollout_id} {DONE[action]}.")
    return redirect("admin:firmware_rollout_page", rollout_id=rollout.rollout_id)


@require_POST
def approve_gate(request, rollout_id: str, number: int):
    if not (request.user.has_perm(VIEW) and request.user.has_perm(page.APPROVE)):
        raise PermissionDenied
    rollout = get_object_or_404(Rollout, rollout_id=rollout_id)
    wave = get_object_or_404(rollout.waves, number=number)
    try:
        control.approve_gate(wave, actor=actor_for_request(request))
    except DomainError as exc:
        messages.error(request, f"Gate not approved: {_message(exc)}")
    else:
        messages.success(request, f"Wave {number}'s gate approved.")
    return redirect("admin:firmware_rollout_page", rollout_id=rollout.rollout_id)


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError) and hasattr(exc, "error_dict"):
        return " ".join(
            f"{field}: {' '.join(errors)}" for field, errors in exc.message_dict.items()
        )
    if isinstance(exc, ValidationError):
        return " ".join(exc.messages)
    return getattr(exc, "message", None) or str(exc)

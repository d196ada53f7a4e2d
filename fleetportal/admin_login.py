"""The console's login with lockouts: too many failed logins for a username, or from an address,
and every further attempt is answered 429 with Retry-After — the right password included — until
the lockout ends (settings.RATE_LIMITS; one SecurityEvent per lockout)."""

from django.contrib import admin
from django.template.response import TemplateResponse

from fleetportal import lockouts

USER_DOOR, ADDRESS_DOOR = "admin-login-user", "admin-login-address"


def login(request, extra_context=None):
    if request.method != "POST":
        return admin.site.login(request, extra_context)
    username = str(request.POST.get("username", ""))[:150]
    address = lockouts.client_address(request)
    doors = ((USER_DOOR, username), (ADDRESS_DOOR, address))
    if wait := lockouts.locked_for(*doors):
        return locked_out(request, wait)
    response = admin.site.login(request, extra_context)
    if request.user.is_authenticated:
        lockouts.forget_failures(USER_DOOR, username)
    else:
        lockouts.count_failure(address, *doors)
    return response


def locked_out(request, wait: int) -> TemplateResponse:
    context = {
        **admin.site.each_context(request),
        "title": "Too many failed logins",
        "minutes": max(1, -(-wait // 60)),
    }
    response = TemplateResponse(request, "admin/login_locked_out.html", context, status=429)
    response["Retry-After"] = str(wait)
    return response

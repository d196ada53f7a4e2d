"""How a change's author is written into DeviceEvent.actor and other audit records."""

SYSTEM = "system"
DEVICE = "device"


def actor_for_request(request) -> str:
    """The operator's username, or "token:<username>" when an integrator's API token was used."""
    user = request.user
    if not user.is_authenticated:
        return SYSTEM
    if getattr(request, "auth", None) is not None and hasattr(request.auth, "key"):
        return f"token:{user.get_username()}"
    return user.get_username()

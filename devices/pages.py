"""The device and group pages' extension points (fleetportal.pages): apps above devices add
sections, links and annotations here instead of subclassing and re-registering devices.admin.

`render_device_page` is the door for the device page's forms that post elsewhere (a certificate
from a CSR, a shadow's desired state): a refused post shows the page again with what the
operator typed and the form's errors (devices.device_page.refused_form), never a blank form."""

import copy

from django.http import HttpRequest, QueryDict
from django.template.response import TemplateResponse

from fleetportal.pages import PageExtensions

DEVICE_PAGE = PageExtensions("device")
GROUP_PAGE = PageExtensions("group")


def render_device_page(
    request: HttpRequest,
    device_pk,
    *,
    refused: dict,
    tab: str,
    query: dict | None = None,
    status: int = 400,
) -> TemplateResponse:
    """The device page as a GET of `?query` shows it, open on `tab`, with the `refused` forms
    (key -> bound form) in place of blank ones; 400 by default, since the post was refused."""
    from django.contrib import admin

    from devices.models import Device

    page = copy.copy(request)
    page.method, page.POST, page.GET = "GET", QueryDict(), QueryDict(mutable=True)
    page.GET.update(query or {})
    page.refused_forms, page.device_page_tab = refused, tab  # type: ignore[attr-defined]
    response = admin.site._registry[Device].change_view(page, str(device_pk))
    response.status_code = status
    return response

"""The device page's certificate buttons, thin callers of devices.credentials with the same
rules and roles as the REST API (devices.api.credentials):

- issue from a pasted CSR, or rotate with one (the new certificate replaces the active one once
  the device first uses it) — devices.add_devicecredential, as the API's create;
- generate a key pair and certificate: the private key is in this one response only (a page
  with a download link, not cached), never stored;
- revoke one certificate with an RFC 5280 reason — view + change_devicecredential, as the API.

A refused CSR (malformed, another device's name, a weak key) shows the API's message on the
field with what was pasted still in it (devices.pages.render_device_page)."""

import base64

from django.contrib import messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from devices import credentials
from devices.device_page import CsrForm, RevokeForm
from devices.models import Device, DeviceCredential
from devices.pages import render_device_page
from fleetportal.actors import actor_for_request
from fleetportal.errors import DomainError

ISSUE = "devices.add_devicecredential"
REVOKE = ("devices.view_devicecredential", "devices.change_devicecredential")


def issue(model_admin, request, object_id: str):
    device = _device(model_admin, request, object_id)
    if not request.user.has_perm(ISSUE):
        raise PermissionDenied
    actor = actor_for_request(request)
    if request.POST.get("action") == "generate":
        try:
            credential, private_key = credentials.issue_credential(device, actor=actor)
        except DomainError as exc:
            messages.error(request, exc.message)
            return _back(device)
        return _issued_once(model_admin, request, device, credential, private_key)
    form = CsrForm(request.POST)
    if form.is_valid():
        try:
            credential = _from_csr(device, form.cleaned_data["csr"], request.POST, actor)
        except DomainError as exc:
            form.add_error("csr", exc.message)
        else:
            messages.success(request, f"Certificate {credential.fingerprint[:16]}… issued.")
            return _back(device)
    return render_device_page(request, device.pk, refused={"csr": form}, tab="credentials")


def _from_csr(device: Device, csr: str, post, actor: str) -> DeviceCredential:
    if post.get("action") == "rotate":
        return credentials.request_rotation(device, csr, actor=actor)
    return credentials.issue_credential(device, csr_pem=csr, actor=actor)[0]


def revoke(model_admin, request, object_id: str, certificate_id: str):
    device = _device(model_admin, request, object_id)
    if not request.user.has_perms(REVOKE):
        raise PermissionDenied
    credential = get_object_or_404(
        DeviceCredential, device=device, fingerprint=certificate_id.lower()
    )
    form = RevokeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Not revoked: " + " ".join(form.errors.get("reason", [])))
        return _back(device)
    revoked = credentials.revoke_credential(
        credential, actor=actor_for_request(request), reason=form.cleaned_data["reason"]
    )
    messages.success(
        request,
        f"Certificate {revoked.fingerprint[:16]}… revoked; the broker refuses it from now on.",
    )
    return _back(device)


def _device(model_admin, request, object_id: str) -> Device:
    device = model_admin.get_object(request, unquote(object_id))
    if device is None:
        raise Http404("No such device.")
    if not model_admin.has_view_permission(request, device):
        raise PermissionDenied
    return device


def _back(device: Device) -> HttpResponseRedirect:
    url = reverse("admin:devices_device_change", args=[device.pk])
    return HttpResponseRedirect(url + "#tab-credentials")


def _issued_once(model_admin, request, device, credential, private_key: str):
    bundle = private_key + credential.credential_value + credentials.load_authority().chain_pem
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"New certificate for {device.device_id}",
        "original": device,
        "credential": credential,
        "private_key": private_key,
        "download": "data:application/x-pem-file;base64,"
        + base64.b64encode(bundle.encode()).decode(),
        "filename": f"{device.device_id.replace(':', '_')}-credentials.pem",
        "device_url": reverse("admin:devices_device_change", args=[device.pk]),
    }
    response = TemplateResponse(request, "admin/devices/device/issued_once.html", context)
    # The page holds a private key: no cache, proxy or browser history may keep a copy.
    response["Cache-Control"] = "no-store"
    return response

"""The console as an operator meets it (issue 15, part L): the admin's home is the fleet
dashboard, every figure on it leads to a list showing that many rows, the navigation is
grouped the way operators look for things, a viewer gets no edit links, the page's queries do
not grow with the fleet, and no page the console serves points at another host."""

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from firmware.rollouts.models import Rollout, RolloutDevice, Wave
from monitoring.summary import services
from tests.conftest import make_user
from tests.firmware.rollouts.helpers import fleet
from tests.monitoring.summary.fleet import hand_counted_fleet

pytestmark = pytest.mark.django_db

GROUPS = ["Fleet", "Identity", "State &amp; configuration", "Firmware", "Health"]


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


class Links(HTMLParser):
    """Every src and href of a page, and each dashboard figure's (link, shown count)."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.figures: list[tuple[str, str]] = []
        self._figure: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        if tag == "a" and "data-figure" in attributes:
            self._figure = attributes.get("href") or ""
        elif tag == "b" and self._figure is not None:
            self.figures.append((self._figure, ""))

    def handle_data(self, data):
        if self.figures and self.figures[-1][1] == "" and self._figure is not None:
            self.figures[-1] = (self._figure, data.strip())
            self._figure = None


def parsed(response) -> Links:
    links = Links()
    links.feed(response.content.decode())
    return links


def test_logging_in_lands_on_the_fleet_dashboard(viewer):
    client = Client()
    assert 'name="next" value="/admin/"' in client.get("/admin/login/").content.decode()
    answer = client.post(
        "/admin/login/", {"username": "vera", "password": "pw-vera", "next": "/admin/"}
    )
    assert answer.status_code == 302 and answer["Location"] == "/admin/"
    page = client.get("/admin/").content.decode()
    assert 'id="fleet-live"' in page and 'data-socket-path="/ws/fleet/summary/"' in page
    assert 'id="nav-sidebar"' in page  # the models moved to the navigation


@pytest.mark.parametrize("role", ["viewer", "operator", "fleet_admin"])
def test_every_role_sees_the_navigation_grouped_as_operators_think(role, request):
    page = logged_in(request.getfixturevalue(role)).get("/admin/").content.decode()
    sidebar = page[page.index('id="nav-sidebar"') :]
    captions = re.findall(r'<caption>\s*<span class="section">(.*?)</span>', sidebar)
    assert captions[: len(GROUPS)] == GROUPS
    assert "Other" not in captions  # every model of the portal has its place
    for entry in ("Devices", "Device credentials", "Shadows", "Rollouts", "Alert rules"):
        assert f">{entry}</a>" in sidebar
    assert 'href="/fleet/"' in sidebar and 'href="/config/drift/"' in sidebar


def test_a_viewer_sees_the_dashboard_without_any_edit_link(viewer):
    hand_counted_fleet()
    page = logged_in(viewer).get("/admin/").content.decode()
    dashboard = page[page.index('id="content-main"') : page.index("<!-- END Content -->")]
    assert 'id="fleet-live"' in dashboard
    assert "addlink" not in dashboard and "changelink" not in dashboard
    assert "<form" not in dashboard and "<button" not in dashboard
    # The navigation offers only what the role may do: a viewer adds nothing but own API tokens.
    sidebar = page[
        page.index('id="nav-sidebar"') : page.index("</nav>", page.index('id="nav-sidebar"'))
    ]
    assert re.findall(r'class="addlink" aria-describedby="([\w-]+)"', sidebar) == [
        "identity-apitoken"
    ]


def test_a_user_without_the_summary_gets_the_plain_list_of_what_they_may_open():
    nobody = make_user("nobody", is_staff=True)
    page = logged_in(nobody).get("/admin/").content.decode()
    assert 'id="fleet-live"' not in page
    assert 'class="app-identity module' in page and ">API tokens</a>" in page  # own tokens
    assert 'class="app-fleet module' not in page


def test_an_apps_own_index_keeps_djangos_list(fleet_admin):
    page = logged_in(fleet_admin).get("/admin/devices/").content.decode()
    assert 'class="app-devices module' in page


def figures_of(client) -> list[tuple[str, int]]:
    links = parsed(client.get("/admin/"))
    return [(href, int(count)) for href, count in links.figures if href]


def test_each_status_alert_and_work_figure_leads_to_a_list_of_that_many_rows(fleet_admin):
    hand_counted_fleet()
    services.refresh()
    client = logged_in(fleet_admin)
    followed = 0
    for href, count in figures_of(client):
        path = urlsplit(href).path
        if "online=" in href or path == "/config/drift/":
            continue  # presence: see test_presence_figures_and_their_closest_list below
        answer = client.get(href)
        assert answer.status_code == 200, href
        assert answer.context_data["cl"].result_count == count, href
        followed += 1
    # statuses, severities, 2 certificate windows + jobs + rollouts, never connected
    assert followed == 5 + 3 + 4 + 1


def test_the_drift_figure_leads_to_the_drift_page(fleet_admin):
    hand_counted_fleet()
    services.refresh()
    client = logged_in(fleet_admin)
    drift = [href for href, _ in figures_of(client) if href.startswith("/config/drift/")]
    assert drift and client.get(drift[0]).status_code == 200


def test_presence_figures_and_their_closest_list(fleet_admin):
    """The device list has no in-service presence filter yet (part G): "online" leads to the
    online filter, which also counts a decommissioned device whose presence row still says
    online — so on a fleet without such a device the counts agree."""
    devices = fleet(3, prefix="p")
    from monitoring.models import Presence

    Presence.objects.create(device=devices[0], online=True)
    Presence.objects.create(device=devices[1], online=True)
    services.refresh()
    client = logged_in(fleet_admin)
    online = [(h, n) for h, n in figures_of(client) if h.endswith("?online=yes")]
    assert [n for _, n in online] == [2]
    assert client.get(online[0][0]).context_data["cl"].result_count == 2


def test_active_rollouts_show_their_progress(fleet_admin):
    devices = fleet(4, prefix="ro")
    rollout = Rollout.objects.create(rollout_id="spring", status="running")
    wave = Wave.objects.create(rollout=rollout, number=1, selector="count", count=4)
    for position, (device, outcome) in enumerate(
        zip(devices, ["updated", "updated", "failed", "notified"], strict=True)
    ):
        RolloutDevice.objects.create(
            rollout=rollout, device=device, wave=wave, position=position, outcome=outcome
        )
    services.refresh()
    page = logged_in(fleet_admin).get("/admin/").content.decode()
    section = page[page.index('id="fleet-rollouts"') :]
    assert 'href="/admin/firmware/rollout/spring/page/"' in section
    assert "3 of 4 devices done · 2 updated" in section and "1 failed" in section
    assert 'aria-valuenow="75"' in section and "badge-working" in section


def test_latest_alerts_and_events_carry_badges_times_and_device_links(fleet_admin):
    devices = hand_counted_fleet()
    services.refresh()
    page = logged_in(fleet_admin).get("/admin/").content.decode()
    alerts = page[page.index('id="fleet-latest-alerts"') : page.index('id="fleet-latest-events"')]
    assert alerts.count('class="badge badge-problem"') == 2  # the two open critical alerts
    assert f'href="/admin/devices/device/{devices["a4"].pk}/change/"' in alerts
    assert re.search(r'<time datetime="[^"]+Z" title="[^"]+ UTC">\d+ min ago</time>', alerts)


def test_the_online_ratio_is_drawn_without_a_script(fleet_admin):
    hand_counted_fleet()
    services.refresh()
    page = logged_in(fleet_admin).get("/admin/").content.decode()
    assert re.search(r'<svg class="fleet-spark"[^>]*>\s*<polyline points="[\d., ]+"', page)


def test_the_dashboard_does_not_query_more_for_a_bigger_fleet(fleet_admin):
    client = logged_in(fleet_admin)

    def queries() -> int:
        services.refresh()
        client.get("/admin/")  # warm: sessions, permissions
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/admin/").status_code == 200
        return len(captured)

    hand_counted_fleet()
    small = queries()
    fleet(30, prefix="more")
    assert queries() == small


# --- no page the console serves points at another host ----------------------------------


def pages_to_crawl(devices) -> list[str]:
    return [
        "/admin/",
        "/fleet/",
        "/admin/devices/device/",
        f"/admin/devices/device/{devices['a1'].pk}/change/",
        "/admin/devices/devicegroup/",
        "/admin/devices/devicecredential/",
        "/admin/firmware/rollout/",
        "/admin/firmware/rollout/r1/page/",
        "/admin/firmware/job/",
        "/admin/monitoring/alert/",
        "/admin/shadows/shadow/",
        "/config/drift/",
        "/api/docs/",
        "/api/redoc/",
    ]


def external(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in ("data", "mailto", "javascript"):
        return parts.scheme == "javascript"
    return bool(parts.scheme or parts.netloc) and parts.netloc not in ("testserver", "")


def test_no_page_references_an_outside_host(fleet_admin):
    devices = hand_counted_fleet()
    services.refresh()
    client = logged_in(fleet_admin)
    crawled = {}
    for page in pages_to_crawl(devices):
        answer = client.get(page)
        assert answer.status_code == 200, page
        crawled[page] = [url for url in parsed(answer).urls if external(url)]
    login = Client().get("/admin/login/")
    crawled["/admin/login/"] = [url for url in parsed(login).urls if external(url)]
    assert {page: urls for page, urls in crawled.items() if urls} == {}


def test_the_themes_assets_name_no_outside_host(fleet_admin):
    from django.contrib.staticfiles import finders

    for asset in (
        "fleetportal/console/console.css",
        "fleetportal/console/console.js",
        "monitoring/fleet.css",
    ):
        text = Path(finders.find(asset)).read_text(encoding="utf-8")
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text), asset


# --- statuses and times in the existing lists --------------------------------------------


def test_the_alert_rollout_and_job_lists_show_badges_and_relative_times(fleet_admin):
    hand_counted_fleet()
    client = logged_in(fleet_admin)
    alerts = client.get("/admin/monitoring/alert/?open=yes").content.decode()
    assert alerts.count('class="badge badge-problem" data-status="critical">Critical<') == 2
    assert re.search(r'<time datetime="[^"]+" title="[^"]+ UTC">\d+ min ago</time>', alerts)
    rollouts = client.get("/admin/firmware/rollout/").content.decode()
    assert 'class="badge badge-working" data-status="running">Running<' in rollouts
    jobs = client.get("/admin/firmware/job/").content.decode()
    assert 'data-status="IN_PROGRESS">In progress<' in jobs


@pytest.mark.parametrize("value", ["maybe", "yes" * 10_000, "1e309", "%F0%9F%92%A5"])
def test_the_open_alert_filter_ignores_what_it_does_not_know(fleet_admin, value):
    hand_counted_fleet()
    answer = logged_in(fleet_admin).get(f"/admin/monitoring/alert/?open={value}")
    assert answer.status_code == 200
    assert answer.context_data["cl"].result_count == 4  # every alert, resolved included


def test_a_nul_in_the_filter_is_refused_at_the_door(fleet_admin):
    answer = logged_in(fleet_admin).get("/admin/monitoring/alert/?open=%00")
    assert answer.status_code == 400

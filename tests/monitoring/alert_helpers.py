"""Helpers for the alert tests: rules, reported battery levels, a clock, a webhook receiver."""

import datetime
import http.server
import threading

from monitoring.models import AlertRule
from shadows.models import Shadow

T0 = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
LOW_BATTERY = {"field": "reported.battery", "op": "lt", "value": 15}


def at(minutes: float) -> datetime.datetime:
    return T0 + datetime.timedelta(minutes=minutes)


def make_rule(name: str = "low battery", **fields) -> AlertRule:
    fields.setdefault("filter", LOW_BATTERY)
    fields.setdefault("for_seconds", 600)
    rule = AlertRule(name=name, **fields)
    rule.full_clean()
    rule.save()
    return rule


def report_battery(device, level: int) -> None:
    """The device's classic shadow reports `level` (what the filter's reported.* reads)."""
    Shadow.objects.update_or_create(
        device=device, name="", defaults={"reported_state": {"battery": level}, "live": True}
    )


class Receiver(http.server.ThreadingHTTPServer):
    """A local webhook endpoint: answers `statuses` in turn (then 200) and keeps each request."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/alerts"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests.append((dict(self.headers), body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

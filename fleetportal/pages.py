"""Extension points for pages one app owns and apps above it add to (the device page, the group
page), so the owner never imports the apps that extend it.

An app registers, from its AppConfig.ready() or its admin module:
- a **section**: a template rendered below the page's own form, with a context its function
  builds for the object (None: the section is not shown for this object);
- a **link** in the page's object tools;
- an **annotation** on the page's own query, so a section can decide whether it has anything to
  show without a query of its own.

    DEVICE_PAGE.add_section(Section(
        "firmware", "admin/firmware/device_section.html",
        context=lambda request, device: {"executions": recent_executions(device)},
        permission="firmware.view_jobexecution", order=30,
    ))
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.safestring import SafeString


@dataclass(frozen=True)
class Section:
    """A block an app adds below a page's own form."""

    name: str
    template: str
    context: Callable[[HttpRequest, Any], dict | None]
    permission: str = ""  # shown only to users holding it ("" = whoever sees the page)
    order: int = 100
    # The page's tab it belongs on ("" = a tab of its own, named after the section); pages
    # without tabs ignore it.
    tab: str = ""

    @property
    def tab_name(self) -> str:
        return self.tab or self.name


@dataclass(frozen=True)
class Link:
    """A button an app adds to a page's object tools."""

    name: str
    label: str
    url: Callable[[Any], str]
    permission: str = ""


class PageExtensions:
    """What the apps above a page's owner add to it. Names are unique per page: registering a
    name twice is a programming error and raises at start-up, not a silent replacement."""

    def __init__(self, page: str) -> None:
        self.page = page
        self._sections: dict[str, Section] = {}
        self._links: dict[str, Link] = {}
        self._annotations: list[Callable[[QuerySet], QuerySet]] = []

    def add_section(self, section: Section) -> None:
        self._claim(self._sections, section.name, section)

    def add_link(self, link: Link) -> None:
        self._claim(self._links, link.name, link)

    def add_annotation(self, annotate: Callable[[QuerySet], QuerySet]) -> None:
        self._annotations.append(annotate)

    def annotate(self, queryset: QuerySet) -> QuerySet:
        for annotate in self._annotations:
            queryset = annotate(queryset)
        return queryset

    def render_sections(self, request: HttpRequest, obj: Any) -> list[SafeString]:
        """Each section the user may see that has something to show, in order, as HTML."""
        return [html for _section, html in self.rendered(request, obj)]

    def rendered(self, request: HttpRequest, obj: Any) -> list[tuple[Section, SafeString]]:
        """(section, HTML) of each section the user may see that has something to show, in
        order: a page with tabs puts each on its section's tab."""
        rendered = []
        for section in sorted(self._sections.values(), key=lambda s: (s.order, s.name)):
            if section.permission and not request.user.has_perm(section.permission):
                continue
            context = section.context(request, obj)
            if context is not None:
                html = render_to_string(section.template, {"original": obj, **context}, request)
                rendered.append((section, SafeString(html)))
        return rendered

    def links(self, request: HttpRequest, obj: Any) -> list[tuple[str, str]]:
        """(label, url) of each link the user may follow."""
        return [
            (link.label, link.url(obj))
            for link in self._links.values()
            if not link.permission or request.user.has_perm(link.permission)
        ]

    def _claim(self, registry: dict, name: str, item: Any) -> None:
        if name in registry and registry[name] != item:
            raise ImproperlyConfigured(f"The {self.page} page already has a {name!r} extension.")
        registry[name] = item

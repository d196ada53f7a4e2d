// The device page's tabs (templates/admin/devices/device/change_form.html): without this
// script every tab is shown in turn and the bar's links jump to them; with it one tab is shown
// at a time, chosen by the address's #tab-<name> (or the tab holding the #element named there),
// so a link, a reload and the back button keep the tab.
"use strict";
(function () {
  const page = document.getElementById("device-page");
  if (!page) return;
  const tabs = Array.from(page.querySelectorAll("section.device-tab"));
  const links = Array.from(page.querySelectorAll(".device-tabs a[data-tab]"));
  if (!tabs.length) return;

  function tabFor(hash) {
    // A refused form is shown again on its tab (devices.pages.render_device_page).
    if (!hash && page.dataset.initialTab) return page.dataset.initialTab;
    const id = decodeURIComponent(hash.replace(/^#/, ""));
    if (id.startsWith("tab-")) return id.slice(4);
    const target = id && document.getElementById(id);
    const section = target && target.closest("section.device-tab");
    return section ? section.dataset.tab : tabs[0].dataset.tab;
  }

  function show(name) {
    if (!tabs.some((tab) => tab.dataset.tab === name)) name = tabs[0].dataset.tab;
    for (const tab of tabs) tab.hidden = tab.dataset.tab !== name;
    for (const link of links) {
      const selected = link.dataset.tab === name;
      link.classList.toggle("selected", selected);
      if (selected) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    page.dataset.tab = name;
    // A chart drawn while its tab was hidden measured no width (telemetry_chart.js resizes).
    window.dispatchEvent(new Event("resize"));
  }

  for (const link of links) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      history.replaceState(null, "", "#tab-" + link.dataset.tab);
      show(link.dataset.tab);
    });
  }
  window.addEventListener("hashchange", () => show(tabFor(location.hash)));
  page.classList.add("tabbed");
  show(tabFor(location.hash));
})();

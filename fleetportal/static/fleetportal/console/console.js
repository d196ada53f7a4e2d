// Keeps the console's relative times current as a page stays open ("5 min ago" becomes
// "6 min ago"). The server already wrote them (fleetportal.console.relative_time), so a page
// is correct without this; the words and units are the server's (fleetportal.console.ago).
"use strict";
(function () {
  const UNITS = [[86400 * 365, "y"], [86400 * 30, "mo"], [86400, "d"], [3600, "h"], [60, "min"]];

  function ago(seconds) {
    const span = Math.abs(seconds);
    if (span < 45) return "just now";
    for (const [size, unit] of UNITS) {
      if (span >= size) {
        const amount = Math.floor(span / size) + " " + unit;
        return seconds > 0 ? amount + " ago" : "in " + amount;
      }
    }
    return seconds > 0 ? span + " s ago" : "in " + span + " s";
  }

  function refresh() {
    const now = Date.now();
    for (const element of document.querySelectorAll("time[datetime]")) {
      const at = Date.parse(element.getAttribute("datetime"));
      if (!Number.isNaN(at)) element.textContent = ago(Math.trunc((now - at) / 1000));
    }
  }

  setInterval(refresh, 30000);
})();

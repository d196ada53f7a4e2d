// The fleet summary page, live: the server says "changed" over the WebSocket (at most once per
// refresh, coalesced again there); the page fetches its parts and swaps each [data-part].
"use strict";
(function () {
  const root = document.getElementById("fleet-live");
  if (!root) return;
  const state = document.getElementById("fleet-live-state");
  let fetching = false, again = false, retry = 1000;

  function show(text, name) { state.textContent = text; state.dataset.state = name; }

  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const answer = await fetch(root.dataset.partsUrl, {credentials: "same-origin"});
      if (!answer.ok) throw new Error(answer.status);
      const fresh = document.createElement("div");
      fresh.innerHTML = await answer.text();
      for (const part of fresh.querySelectorAll("[data-part]")) {
        const old = root.querySelector(`[data-part="${part.dataset.part}"]`);
        if (old) old.replaceWith(part); else root.appendChild(part);
      }
      root.dataset.refreshed = String(Date.now());
    } catch (error) {
      show("not updated: " + error.message, "error");
    } finally {
      fetching = false;
      if (again) { again = false; refresh(); }
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + root.dataset.socketPath);
    socket.onopen = () => { retry = 1000; show("live", "live"); };
    socket.onmessage = refresh;
    socket.onclose = () => {
      show("reconnecting…", "connecting");
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }
  connect();
})();

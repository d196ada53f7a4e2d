// A live page's parts (the rollout page, the fleet summary): the server says "changed" over the
// WebSocket (coalesced there to a few a second, fleetportal.live_consumers); the page fetches
// its parts again and swaps each [data-part] in place. One fetch at a time; a change announced
// during a fetch is fetched right after it.
//
// The page marks its container with data-live-parts, data-parts-url and data-socket-path, and
// names its state element (connecting / live / polling / error) in data-state-id. A part marked
// data-keep-while-typing is kept while the operator is typing into one of its text inputs.
// While the socket is down (a proxy that refuses WebSockets, a restarting server) the parts are
// fetched every data-poll-seconds (15 unless the page says otherwise; 0 = never), and the state
// element says so, so no live page silently goes stale.
"use strict";
(function () {
  const root = document.querySelector("[data-live-parts]");
  if (!root) return;
  const state = document.getElementById(root.dataset.stateId);
  let fetching = false, again = false, retry = 1000, poll = null;
  const pollSeconds = Number(root.dataset.pollSeconds ?? 15);

  function show(text, name) {
    if (state) { state.textContent = text; state.dataset.state = name; }
  }

  function busy(part) {
    return part.hasAttribute("data-keep-while-typing") &&
      Array.from(part.querySelectorAll("input[type=text]")).some(
        (input) => input.value || input === document.activeElement);
  }

  async function refresh() {
    if (fetching) { again = true; return; }
    fetching = true;
    try {
      const answer = await fetch(root.dataset.partsUrl, {credentials: "same-origin"});
      if (!answer.ok) throw new Error(answer.status);
      const fresh = document.createElement("div");
      fresh.innerHTML = await answer.text();
      const parts = new Map(Array.from(fresh.querySelectorAll("[data-part]"), (p) => [p.dataset.part, p]));
      for (const old of root.querySelectorAll("[data-part]")) {
        const next = parts.get(old.dataset.part);
        if (!next) old.remove();
        else if (!busy(old)) old.replaceWith(next);
        parts.delete(old.dataset.part);
      }
      for (const added of parts.values()) root.appendChild(added);
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
    socket.onopen = () => {
      retry = 1000;
      show("live", "live");
      if (poll) { clearInterval(poll); poll = null; }
    };
    socket.onmessage = refresh;
    socket.onclose = () => {
      if (pollSeconds > 0) {
        show("not live: refreshing every " + pollSeconds + " s", "polling");
        if (!poll) poll = setInterval(refresh, pollSeconds * 1000);
      } else {
        show("reconnecting…", "connecting");
      }
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 30000);
    };
  }
  connect();
})();

// The dynamic group form's preview: while the operator types a filter, ask the server (debounced,
// only the answer to the latest text is shown) which devices it matches now — a count and the
// newest few — or show the filter language's messages inline. Nothing is saved.
"use strict";
(function () {
  const box = document.getElementById("group-filter-preview");
  const field = document.getElementById("id_filters");
  if (!box || !field) return;
  const state = document.getElementById("group-preview-state");
  const errors = document.getElementById("group-preview-errors");
  const table = document.getElementById("group-preview-sample");
  const token = document.querySelector("[name=csrfmiddlewaretoken]");
  const WAIT_MS = 400;
  let timer = null, asked = 0;

  function cell(row, text, href) {
    const td = row.insertCell();
    if (href) {
      const link = document.createElement("a");
      link.href = href; link.textContent = text; td.appendChild(link);
    } else {
      td.textContent = text;
    }
  }

  function show(answer) {
    errors.replaceChildren();
    errors.hidden = !answer.errors;
    table.hidden = !answer.sample || answer.sample.length === 0;
    if (answer.errors) {
      state.textContent = "Not a filter yet:";
      for (const message of answer.errors) {
        const item = document.createElement("li"); item.textContent = message; errors.appendChild(item);
      }
      box.dataset.count = "";
      return;
    }
    const count = (answer.approximate ? "about " : "") + answer.count.toLocaleString("en");
    state.textContent = "Matches " + count + " device" + (answer.count === 1 ? "" : "s") + " now" +
      (answer.sample.length ? "; the newest:" : ".");
    box.dataset.count = String(answer.count);
    const body = table.tBodies[0];
    body.replaceChildren();
    for (const device of answer.sample) {
      const row = body.insertRow();
      cell(row, device.device_id, device.url);
      cell(row, device.device_type); cell(row, device.status); cell(row, device.firmware_version);
    }
  }

  async function ask() {
    const mine = ++asked;
    const body = new URLSearchParams({filters: field.value});
    try {
      const answer = await fetch(box.dataset.previewUrl, {
        method: "POST", body, credentials: "same-origin",
        headers: {"X-CSRFToken": token ? token.value : ""},
      });
      if (mine !== asked) return;  // the operator typed on: a newer answer is coming
      if (answer.status !== 200 && answer.status !== 400) throw new Error("HTTP " + answer.status);
      show(await answer.json());
    } catch (error) {
      if (mine === asked) state.textContent = "Preview unavailable: " + error.message;
    }
  }

  const HINT = state.textContent;

  function blank() {  // a static group: nothing to preview
    return ["", "{}"].includes(field.value.replace(/\s/g, ""));
  }

  field.addEventListener("input", () => {
    clearTimeout(timer);
    asked++;  // an answer still on its way is for older text
    if (blank()) {
      errors.hidden = table.hidden = true;
      state.textContent = HINT;
      box.dataset.count = "";
      return;
    }
    state.textContent = "…";
    timer = setTimeout(ask, WAIT_MS);
  });
  if (!blank()) ask();
})();

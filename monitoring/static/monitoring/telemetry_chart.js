// The device page's telemetry chart: fetches the aggregates API (session auth) for the chosen
// period and draws each name's average per bucket with uPlot; min and max are in the legend's
// tooltip values. One fetch at a time; the period selector fetches again.
"use strict";
(function () {
  const root = document.getElementById("telemetry-chart");
  if (!root || !window.uPlot) return;
  const select = document.getElementById("telemetry-period");
  const state = document.getElementById("telemetry-state");
  const colours = ["#417690", "#ba2121", "#2a9d2a", "#d4820d", "#7b3fa0", "#555555"];
  let chart = null;

  function show(text) { state.textContent = text; }

  function width() { return Math.max(240, root.clientWidth - 20); }

  // One x axis for every name: the union of bucket starts, nulls where a name has none.
  function aligned(series) {
    const times = Array.from(new Set(series.flatMap((s) => s.t))).sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    const columns = series.map((s) => {
      const column = new Array(times.length).fill(null);
      s.t.forEach((t, i) => { column[index.get(t)] = s.avg[i]; });
      return column;
    });
    return [times, ...columns];
  }

  function draw(body) {
    if (chart) { chart.destroy(); chart = null; }
    root.dataset.points = String(body.series.reduce((n, s) => n + s.t.length, 0));
    if (!body.series.length) { show("No telemetry in this period."); return; }
    show(`${body.series.length} series, ${body.bucket_seconds} s buckets`);
    const options = {
      width: width(),
      height: 260,
      series: [{}, ...body.series.map((s, i) => ({
        label: s.name, stroke: colours[i % colours.length], width: 1.5, spanGaps: false,
      }))],
      axes: [{}, {size: 60}],
    };
    chart = new uPlot(options, aligned(body.series), root);
    window.telemetryChart = chart;  // for the browser test
  }

  async function load() {
    show("Loading…");
    const url = `${root.dataset.url}?period=${encodeURIComponent(select.value)}`;
    try {
      const answer = await fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}});
      if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
      draw(await answer.json());
    } catch (error) {
      show(`Could not load telemetry (${error.message}).`);
    }
  }

  select.addEventListener("change", load);
  window.addEventListener("resize", () => { if (chart) chart.setSize({width: width(), height: 260}); });
  load();
})();

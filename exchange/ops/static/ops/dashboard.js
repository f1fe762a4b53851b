// The ops dashboard: fetch every panel's series (one request), draw each with uPlot, refresh
// every 10 s. Each panel's section carries data-points (non-empty values drawn), which tests read.
(function () {
  "use strict";
  const root = document.getElementById("ops-dashboard");
  const status = document.getElementById("ops-status");
  const charts = {};
  const palette = ["#2b7bb9", "#e4572e", "#29a36a", "#a05195", "#f3a712", "#5c6b73"];

  function width(el) {
    return Math.max(300, el.clientWidth - 8);
  }

  function draw(panel, xs) {
    const section = document.getElementById("panel-" + panel.id);
    const holder = section.querySelector(".chart");
    const points = panel.series.reduce(
      (n, s) => n + s.values.filter((v) => v !== null).length, 0);
    section.dataset.points = String(points);
    section.dataset.series = String(panel.series.length);
    const key = panel.id + ":" + panel.series.map((s) => s.name).join("|");
    const data = [xs].concat(panel.series.map((s) => s.values));
    if (charts[panel.id] && charts[panel.id].key === key) {
      charts[panel.id].plot.setData(data);
      return;
    }
    if (charts[panel.id]) charts[panel.id].plot.destroy();
    holder.textContent = "";
    if (!panel.series.length) {
      holder.innerHTML = '<p class="empty">no data yet</p>';
      delete charts[panel.id];
      return;
    }
    const opts = {
      width: width(section),
      height: 200,
      series: [{}].concat(panel.series.map((s, i) => ({
        label: s.name, stroke: palette[i % palette.length], width: 1.5, spanGaps: false,
        // Few values (a new series, a short history): show them as dots, not an empty chart.
        points: { show: s.values.filter((v) => v !== null).length < 30, size: 5 },
      }))),
      axes: [{}, { size: 60 }],
    };
    charts[panel.id] = { key: key, plot: new uPlot(opts, data, holder) };
  }

  function alerts(rows) {
    const body = document.querySelector("#ops-alerts tbody");
    body.textContent = "";
    if (!rows.length) {
      body.innerHTML = '<tr><td colspan="5" class="empty">none</td></tr>';
      return;
    }
    for (const a of rows) {
      const tr = document.createElement("tr");
      for (const [text, cls] of [[a.alertname, ""], [a.severity, "sev-" + a.severity],
                                 [a.summary, ""], [a.starts_at, ""], [a.runbook_url, ""]]) {
        const td = document.createElement("td");
        td.textContent = text;
        if (cls) td.className = cls;
        tr.appendChild(td);
      }
      body.appendChild(tr);
    }
  }

  async function refresh() {
    try {
      const url = root.dataset.source + "?minutes=" + root.dataset.minutes;
      const response = await fetch(url, { credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) throw new Error(body.message + " (" + body.code + ")");
      body.panels.forEach((panel) => draw(panel, body.x));
      alerts(body.alerts);
      status.className = "";
      status.textContent = "Updated " + new Date().toLocaleTimeString() + "; refreshes every 10 s.";
      root.dataset.loaded = "1";
    } catch (error) {
      status.className = "error";
      status.textContent = "Could not load the dashboard: " + error.message;
    }
  }

  refresh();
  setInterval(refresh, 10000);
})();

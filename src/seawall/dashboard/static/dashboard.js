/* Seawall dashboard: charts (uPlot) and live updates; no inline script anywhere (CSP).
 *
 * Charts: an element .chart with data-chart='{"x": [unix seconds], "series": [[label,
 * [values]], ...]}' becomes a uPlot time series.
 * Live updates: on a page whose <body> has data-live-page, the page is fetched again every
 * data-refresh-s seconds (with the X-Seawall-Live header); each element with data-live and
 * an id is replaced by its new version, and each chart gets its new data.  Times are UTC,
 * as everywhere on the dashboard.  The new HTML is
 * parsed by DOMParser, whose documents run no script, and it is the server's autoescaped
 * markup, so nothing from mail can run.
 */
(function () {
  "use strict";

  var COLORS = {
    "reject": "#c0392b",
    "soft reject": "#8e44ad",
    "rewrite subject": "#d35400",
    "add header": "#e67e22",
    "greylist": "#f1c40f",
    "no action": "#27ae60",
    "infected": "#7f1d1d",
    "messages": "#2c3e50"
  };
  var PALETTE = ["#2c3e50", "#16a085", "#2980b9", "#8e44ad", "#c0392b", "#d35400"];
  var charts = {};

  function chartData(spec) {
    var data = [spec.x];
    spec.series.forEach(function (s) { data.push(s[1]); });
    return data;
  }

  function makeChart(el) {
    var spec;
    try { spec = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
    if (!spec || !spec.x || typeof uPlot === "undefined") { return; }
    var series = [{}];
    spec.series.forEach(function (s, i) {
      var color = COLORS[s[0]] || PALETTE[i % PALETTE.length];
      series.push({ label: s[0], stroke: color, width: 2, fill: color + "22",
                    points: { show: false } });
    });
    var opts = {
      width: Math.max(320, el.clientWidth || 800),
      height: parseInt(el.getAttribute("data-height") || "240", 10),
      series: series,
      scales: { x: { time: true } },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); },
      axes: [{}, { label: spec.unit || "" }],
      legend: { live: true }
    };
    el.textContent = "";
    charts[el.id] = new uPlot(opts, chartData(spec), el);
    el.setAttribute("data-drawn", "1");
  }

  function updateChart(el, fresh) {
    var chart = charts[el.id];
    if (!chart) { makeChart(el); return; }
    var spec;
    try { spec = JSON.parse(fresh.getAttribute("data-chart")); } catch (e) { return; }
    if (spec.series.length + 1 !== chart.series.length) {
      chart.destroy();
      delete charts[el.id];
      el.setAttribute("data-chart", fresh.getAttribute("data-chart"));
      makeChart(el);
      return;
    }
    el.setAttribute("data-chart", fresh.getAttribute("data-chart"));
    chart.setData(chartData(spec));
  }

  function stamp(text) {
    var el = document.getElementById("updated");
    if (el) { el.textContent = text; }
  }

  function refresh() {
    if (document.hidden) { return; }
    fetch(window.location.href, {
      credentials: "same-origin",
      headers: { "X-Seawall-Live": "1" },
      cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) { window.location.reload(); throw new Error("logged out"); }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (html) {
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live][id]").forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (fresh) { el.replaceWith(document.importNode(fresh, true)); }
      });
      document.querySelectorAll(".chart[data-chart][id]").forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (fresh) { updateChart(el, fresh); }
      });
      stamp("updated " + new Date().toLocaleTimeString());
      document.body.setAttribute("data-updates",
        String(parseInt(document.body.getAttribute("data-updates") || "0", 10) + 1));
    }).catch(function (err) {
      stamp("not updated: " + err.message);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart[data-chart]").forEach(makeChart);
    var body = document.body;
    if (body.hasAttribute("data-live-page")) {
      var seconds = parseFloat(body.getAttribute("data-refresh-s") || "5");
      window.setInterval(refresh, Math.max(1, seconds) * 1000);
    }
  });
})();

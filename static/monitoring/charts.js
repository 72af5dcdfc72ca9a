// The monitoring page's island: each <canvas data-chart-url> fetches its chart's JSON and draws it with Chart.js,
// then asks again every 10 s while the tab is visible. Points that carry a url open it when clicked.
(function () {
  "use strict";
  const REFRESH_MS = 10000;
  const COLOURS = ["#2563eb", "#f59e0b", "#16a34a", "#db2777", "#7c3aed", "#0891b2"];
  const charts = new Map();

  function datasetsOf(spec) {
    if (spec.reference) {  // a drift cell: both distributions as shares
      return [
        { label: "reference", data: spec.reference, backgroundColor: "rgba(100,116,139,.45)" },
        { label: "window", data: spec.current, backgroundColor: "rgba(37,99,235,.6)" },
      ];
    }
    return spec.datasets.map((set, i) => {
      const colour = COLOURS[i % COLOURS.length];
      const base = { label: set.label, borderColor: colour, backgroundColor: colour + (spec.kind === "bar" ? "b0" : "66") };
      if (spec.kind === "scatter") {
        return { ...base, data: set.points.map((p) => ({ x: Date.parse(p.x), y: p.y, url: p.url })), pointRadius: 3 };
      }
      if (set.points) {
        return { ...base, data: set.points.map(([x, y]) => ({ x: Date.parse(x), y })), spanGaps: true, pointRadius: 2 };
      }
      return { ...base, data: set.values };
    });
  }

  function configOf(spec) {
    const time = spec.x === "time";
    const kind = spec.reference ? "bar" : spec.kind;
    const x = time
      ? { type: "linear", min: Date.parse(spec.start), max: Date.parse(spec.end), ticks: { maxTicksLimit: 8, callback: (v) => new Date(v).toISOString().slice(5, 16).replace("T", " ") } }
      : { type: "category" };
    return {
      type: kind,
      data: { labels: spec.labels, datasets: datasetsOf(spec) },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: kind === "scatter" ? "point" : "index", intersect: kind === "scatter" },
        scales: { x, y: { beginAtZero: true, title: { display: Boolean(spec.y), text: spec.y || "" } } },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: time ? { callbacks: { title: (items) => new Date(items[0].parsed.x).toISOString().slice(0, 16).replace("T", " ") + " UTC" } } : {},
        },
        onClick(event, elements, chart) {
          const hit = elements[0];
          const point = hit && chart.data.datasets[hit.datasetIndex].data[hit.index];
          if (point && point.url) window.location.assign(point.url);
        },
        onHover(event, elements, chart) {
          const hit = elements[0];
          const point = hit && chart.data.datasets[hit.datasetIndex].data[hit.index];
          event.native.target.style.cursor = point && point.url ? "pointer" : "default";
        },
      },
    };
  }

  async function draw(canvas) {
    const response = await fetch(canvas.dataset.chartUrl, { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const spec = await response.json();
    const figure = canvas.closest("figure");
    const empty = figure && figure.querySelector(".chart-empty");
    if (empty) empty.hidden = !spec.empty;
    const existing = charts.get(canvas);
    const config = configOf(spec);
    if (existing) {
      existing.data = config.data;
      existing.update("none");
    } else {
      charts.set(canvas, new window.Chart(canvas, config));
    }
    canvas.dataset.drawn = String(Number(canvas.dataset.drawn || 0) + 1);
  }

  function start(root) {
    root.querySelectorAll("canvas[data-chart-url]").forEach((canvas) => {
      if (!charts.has(canvas)) draw(canvas);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    start(document);
    window.setInterval(() => {
      if (document.hidden) return;
      charts.forEach((chart, canvas) => { if (!canvas.dataset.chartStatic && document.body.contains(canvas)) draw(canvas); });
    }, REFRESH_MS);
  });
  document.addEventListener("htmx:load", (event) => start(event.target));
  window.LoupeCharts = { draw };
})();

// Sieve dashboard charts (Chart.js, vendored). The data lives in <script id="dash-data"> inside
// the live region; when htmx swaps that region (a new verdict arrived), the charts are updated
// in place (no re-creation, so no flicker and no scroll jump).
(function () {
  "use strict";
  const charts = {};
  const HIT = "#1f9d55", MISS = "#d64545", RATIO = "#2f6fdf", BAND = "rgba(47,111,223,0.15)";

  function readData() {
    const el = document.getElementById("dash-data");
    return el ? JSON.parse(el.textContent) : null;
  }

  function thresholdsConfig(rows) {
    const labels = rows.map((r) => r.threshold.toFixed(2));
    return {
      type: "line",
      data: {
        labels,
        datasets: [
          { label: "hit rate", data: rows.map((r) => r.hit_rate), borderColor: HIT, yAxisID: "y" },
          { label: "error rate", data: rows.map((r) => r.error_rate), borderColor: MISS, yAxisID: "y" },
          { label: "ratio 95 % low", data: rows.map((r) => r.ratio_low), borderColor: "transparent",
            pointRadius: 0, yAxisID: "ratio", fill: false },
          { label: "ratio 95 % high", data: rows.map((r) => r.ratio_high), borderColor: "transparent",
            backgroundColor: BAND, pointRadius: 0, yAxisID: "ratio", fill: "-1" },
          { label: "ratio", data: rows.map((r) => r.ratio), borderColor: RATIO, yAxisID: "ratio" },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "threshold θ" } },
          y: { min: 0, max: 1, title: { display: true, text: "rate" } },
          ratio: { position: "right", min: 0, grid: { drawOnChartArea: false },
                   title: { display: true, text: "hit rate / error rate" } },
        },
        plugins: { legend: { labels: { filter: (item) => !item.text.startsWith("ratio 95") } } },
      },
    };
  }

  function classesConfig(rows) {
    return {
      type: "bar",
      data: {
        labels: rows.map((r) => r.label),
        datasets: [
          { label: "accuracy", data: rows.map((r) => r.accuracy), backgroundColor: "rgba(31,157,85,0.6)",
            grouped: false },
          // The Wilson interval as a thin floating bar [low, high] over the accuracy bar.
          { label: "95 % interval", data: rows.map((r) => (r.accuracy_low === null ? null
              : [r.accuracy_low, r.accuracy_high])), backgroundColor: "rgba(20,26,34,0.8)",
            barPercentage: 0.08, grouped: false },
        ],
      },
      options: { animation: false, maintainAspectRatio: false,
                 scales: { y: { min: 0, max: 1, title: { display: true, text: "accuracy" } } } },
    };
  }

  function histogramConfig(h) {
    const labels = h.bins.slice(0, -1).map((b, i) => `${b.toFixed(2)}–${h.bins[i + 1].toFixed(2)}`);
    return {
      type: "bar",
      data: { labels, datasets: [
        { label: "hits", data: h.hits, backgroundColor: HIT },
        { label: "misses", data: h.misses, backgroundColor: MISS },
      ] },
      options: { animation: false, maintainAspectRatio: false,
                 scales: { x: { title: { display: true, text: "top probability" } },
                           y: { beginAtZero: true, title: { display: true, text: "items" } } } },
    };
  }

  function draw(id, config) {
    const canvas = document.getElementById(id);
    if (!canvas || typeof Chart === "undefined") return;
    const chart = charts[id];
    if (!chart) {
      charts[id] = new Chart(canvas, config);
      return;
    }
    // Update in place: same chart object, new labels and data.
    chart.data.labels = config.data.labels;
    config.data.datasets.forEach((ds, i) => { chart.data.datasets[i].data = ds.data; });
    chart.update("none");
  }

  function render() {
    const data = readData();
    if (!data) return;
    draw("chart-thresholds", thresholdsConfig(data.thresholds));
    draw("chart-classes", classesConfig(data.classes));
    draw("chart-histogram", histogramConfig(data.histogram));
    document.body.dataset.chartsVersion = document.getElementById("dash-live").dataset.version;
  }

  document.addEventListener("DOMContentLoaded", render);
  document.addEventListener("htmx:afterSettle", render);
})();

// Run page charts (Chart.js, vendored): the most frequent labels and the coverage by threshold.
// The data comes from <script type="application/json" id="run-chart-data">.
(function () {
  "use strict";

  function render() {
    const source = document.getElementById("run-chart-data");
    if (!source || typeof Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    const labelCanvas = document.getElementById("label-chart");
    if (labelCanvas) {
      new Chart(labelCanvas, {
        type: "bar",
        data: { labels: data.labels, datasets: [{ label: "items", data: data.counts, backgroundColor: "#2f6fdf" }] },
        options: { indexAxis: "y", maintainAspectRatio: false, animation: false, plugins: { legend: { display: false } } },
      });
    }
    new Chart(document.getElementById("coverage-chart"), {
      type: "line",
      data: {
        labels: data.thresholds.map((t) => t.toFixed(1)),
        datasets: [{ label: "% classified", data: data.percents, borderColor: "#1f9d55", fill: false }],
      },
      options: { maintainAspectRatio: false, animation: false, scales: { y: { min: 0, max: 100 } } },
    });
  }

  document.addEventListener("DOMContentLoaded", render);
})();

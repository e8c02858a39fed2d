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
    const coverageCanvas = document.getElementById("coverage-chart");
    if (!coverageCanvas) return;
    new Chart(coverageCanvas, {
      type: "line",
      data: {
        labels: data.thresholds.map((t) => t.toFixed(1)),
        // backgroundColor too: the points and the tooltip's colour box are filled with it.
        datasets: [{ label: "% of items with p ≥ θ", data: data.percents, borderColor: "#1f9d55",
                     backgroundColor: "#1f9d55", fill: false }],
      },
      options: {
        maintainAspectRatio: false, animation: false,
        // One line, named by the card's title and the axes: no legend (it showed an empty box).
        plugins: { legend: { display: false } },
        scales: {
          x: { title: { display: true, text: "threshold θ" } },
          y: { min: 0, max: 100, title: { display: true, text: "% of the run's items kept" } },
        },
      },
    });
  }

  document.addEventListener("DOMContentLoaded", render);
})();

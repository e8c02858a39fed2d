// The ITR dashboard's chart (Chart.js, vendored): items per type before and after correction.
// The data comes from <script id="itr-chart-data" type="application/json"> (json_script): no
// inline script, as the CSP requires.
(function () {
  "use strict";

  function render() {
    const source = document.getElementById("itr-chart-data");
    const canvas = document.getElementById("chart-distribution");
    if (!source || !canvas || typeof Chart === "undefined") return;
    const data = JSON.parse(source.textContent);
    new Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "published labels", data: data.before, backgroundColor: "rgba(95,107,122,0.55)" },
          { label: "after correction", data: data.after, backgroundColor: "rgba(47,111,223,0.8)" },
        ],
      },
      options: {
        animation: false, maintainAspectRatio: false,
        scales: { y: { beginAtZero: true, title: { display: true, text: "test items" } } },
      },
    });
    canvas.dataset.drawn = "1";
  }

  document.addEventListener("DOMContentLoaded", render);
})();

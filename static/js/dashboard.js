// Sieve dashboard charts (Chart.js, vendored). The data lives in <script id="dash-data"> inside
// the live region; when htmx swaps that region (a new verdict arrived), the charts are updated
// in place (no re-creation, so no flicker and no scroll jump), and the tables keep the order
// the reader clicked.
(function () {
  "use strict";
  const charts = {};
  const HIT = "#1f9d55", MISS = "#d64545", RATIO = "#2f6fdf", PRECISION = "#1f9d55",
    COVERAGE = "#2f6fdf", INK = "rgba(20,26,34,0.85)";
  const percent = (v) => (v === null || v === undefined ? "—" : `${Math.round(v * 100)} %`);

  // Chart.js draws no intervals: a dataset with `errorBars: [[low, high] | null, ...]` gets a
  // vertical bar with caps at each point. A high of null is unbounded: drawn to the top, no cap.
  const errorBars = {
    id: "sieveErrorBars",
    afterDatasetsDraw(chart) {
      const { ctx, chartArea } = chart;
      ctx.save();
      ctx.beginPath();
      ctx.rect(chartArea.left, chartArea.top, chartArea.right - chartArea.left,
        chartArea.bottom - chartArea.top);
      ctx.clip();
      chart.data.datasets.forEach((ds, i) => {
        if (!ds.errorBars || !chart.isDatasetVisible(i)) return;
        const meta = chart.getDatasetMeta(i);
        const scale = chart.scales[meta.yAxisID];
        ctx.strokeStyle = ds.errorBarColor || ds.borderColor || INK;
        ctx.lineWidth = 1.5;
        meta.data.forEach((point, j) => {
          const bar = ds.errorBars[j];
          if (!bar || bar[0] === null || bar[0] === undefined) return;
          const bottom = scale.getPixelForValue(bar[0]);
          const open = bar[1] === null || bar[1] === undefined;
          const top = open ? chartArea.top : scale.getPixelForValue(bar[1]);
          const cap = Math.max(3, Math.min(7, (point.width || 14) / 4));
          ctx.beginPath();
          ctx.moveTo(point.x, bottom);
          ctx.lineTo(point.x, top);
          ctx.moveTo(point.x - cap, bottom);
          ctx.lineTo(point.x + cap, bottom);
          if (!open) {
            ctx.moveTo(point.x - cap, top);
            ctx.lineTo(point.x + cap, top);
          }
          ctx.stroke();
        });
      });
      ctx.restore();
    },
  };

  // The θ the sentence above the chart reads: a dashed vertical line (`chart.sieveChosen`).
  const chosenLine = {
    id: "sieveChosen",
    beforeDatasetsDraw(chart) {
      const index = chart.data.labels.indexOf(chart.sieveChosen);
      if (index < 0) return;
      const x = chart.scales.x.getPixelForValue(index);
      const { ctx, chartArea } = chart;
      ctx.save();
      ctx.strokeStyle = "rgba(20,26,34,0.45)";
      ctx.setLineDash([4, 4]);
      ctx.beginPath();
      ctx.moveTo(x, chartArea.top);
      ctx.lineTo(x, chartArea.bottom);
      ctx.stroke();
      ctx.restore();
    },
  };

  // The interval in the tooltip too, for the point under the pointer.
  function intervalLabel(format) {
    return (item) => {
      const bar = item.dataset.errorBars && item.dataset.errorBars[item.dataIndex];
      if (!bar || bar[0] === null) return "";
      return `95 % interval ${format(bar[0])} – ${bar[1] === null ? "∞" : format(bar[1])}`;
    };
  }

  function readData() {
    const el = document.getElementById("dash-data");
    return el ? JSON.parse(el.textContent) : null;
  }

  function headlineConfig(rows) {
    return {
      type: "line",
      data: {
        labels: rows.map((r) => String(r.threshold)),
        datasets: [
          { label: "precision (share of kept items that is right)", data: rows.map((r) => r.precision),
            errorBars: rows.map((r) => [r.precision_low, r.precision_high]),
            borderColor: PRECISION, backgroundColor: PRECISION, pointRadius: 3 },
          { label: "coverage (share of the run's items kept)", data: rows.map((r) => r.coverage),
            borderColor: COVERAGE, backgroundColor: COVERAGE, borderDash: [6, 4], pointRadius: 2 },
        ],
      },
      plugins: [errorBars, chosenLine],
      options: {
        animation: false, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "threshold θ (keep items with top probability ≥ θ)" } },
          y: { min: 0, max: 1, ticks: { callback: (v) => `${Math.round(v * 100)} %` } },
        },
        plugins: {
          legend: { display: false },  // the page names both lines under the chart
          tooltip: { callbacks: {
            label: (item) => `${item.dataset.label.split(" (")[0]}: ${percent(item.raw)}`,
            afterLabel: intervalLabel(percent),
          } },
        },
      },
    };
  }

  function thresholdsConfig(rows) {
    const two = (v) => v.toFixed(2);
    return {
      type: "line",
      data: {
        labels: rows.map((r) => String(r.threshold)),
        datasets: [
          { label: "hit rate", data: rows.map((r) => r.hit_rate), borderColor: HIT,
            backgroundColor: HIT, yAxisID: "y" },
          { label: "error rate", data: rows.map((r) => r.error_rate), borderColor: MISS,
            backgroundColor: MISS, yAxisID: "y" },
          { label: "ratio", data: rows.map((r) => r.ratio), borderColor: RATIO, backgroundColor: RATIO,
            errorBars: rows.map((r) => [r.ratio_low, r.ratio_high]), yAxisID: "ratio" },
        ],
      },
      plugins: [errorBars],
      options: {
        animation: false, maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: "index", intersect: false },
        scales: {
          x: { title: { display: true, text: "threshold θ" } },
          y: { min: 0, max: 1, title: { display: true, text: "share kept" } },
          ratio: { position: "right", min: 0, grid: { drawOnChartArea: false },
                   title: { display: true, text: "ratio" } },
        },
        plugins: { tooltip: { callbacks: { afterLabel: intervalLabel(two) } } },
      },
    };
  }

  function classesConfig(rows, itemsUrl) {
    return {
      type: "bar",
      data: {
        labels: rows.map((r) => r.label),
        datasets: [
          { label: "accuracy", data: rows.map((r) => r.accuracy), backgroundColor: "rgba(31,157,85,0.6)",
            errorBars: rows.map((r) => [r.accuracy_low, r.accuracy_high]), errorBarColor: INK },
        ],
      },
      plugins: [errorBars],
      options: {
        animation: false, maintainAspectRatio: false,
        scales: { y: { min: 0, max: 1, title: { display: true, text: "accuracy" } } },
        plugins: { legend: { display: false },
                   tooltip: { callbacks: { afterLabel: intervalLabel(percent) } } },
        onClick: (event, elements, chart) => {
          const keys = chart.sieveKeys || [];
          if (!itemsUrl || !elements.length || !keys[elements[0].index]) return;
          window.location.href = `${itemsUrl}&label=${encodeURIComponent(keys[elements[0].index])}`;
        },
      },
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
    if (!canvas || typeof Chart === "undefined") return null;
    const chart = charts[id];
    if (!chart) {
      charts[id] = new Chart(canvas, config);
      return charts[id];
    }
    // Update in place: same chart object, new labels, data and intervals.
    chart.data.labels = config.data.labels;
    config.data.datasets.forEach((ds, i) => {
      chart.data.datasets[i].data = ds.data;
      if (ds.errorBars) chart.data.datasets[i].errorBars = ds.errorBars;
    });
    chart.update("none");
    return chart;
  }

  // ---------------------------------------------------------------- sortable tables
  // A click on a column heading sorts by it (again: the other way). Cells sort by their
  // data-sort value or their text, as numbers when both are numbers. The choice survives the
  // live swaps: it is re-applied to the fresh table.
  const sortState = {};

  function cellValue(row, column) {
    const cell = row.cells[column];
    if (!cell) return "";
    const raw = cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent.trim();
    const number = Number(raw.replace(/[–—]\s*.*$/, "").trim());
    return raw !== "" && raw !== "—" && !Number.isNaN(number) ? number : raw.toLowerCase();
  }

  function sortTable(table, column, descending) {
    const body = table.tBodies[0];
    if (!body) return;
    const rows = Array.from(body.rows).filter((r) => r.cells.length > 1);
    const order = rows.map((row, index) => ({ row, index, value: cellValue(row, column) }));
    order.sort((a, b) => {
      const x = a.value, y = b.value;
      let c;
      if (typeof x === "number" && typeof y === "number") c = x - y;
      else if (typeof x === "number") c = -1;  // numbers before empty cells
      else if (typeof y === "number") c = 1;
      else c = String(x).localeCompare(String(y));
      return (descending ? -c : c) || a.index - b.index;
    });
    order.forEach((o) => body.appendChild(o.row));
    Array.from(table.tHead.rows[0].cells).forEach((th, i) => {
      th.setAttribute("aria-sort", i === column ? (descending ? "descending" : "ascending") : "none");
    });
  }

  function setUpSorting() {
    document.querySelectorAll("table.sortable").forEach((table) => {
      if (!table.tHead || table.dataset.sortReady) return;  // a table the last swap kept
      table.dataset.sortReady = "1";
      Array.from(table.tHead.rows[0].cells).forEach((th, column) => {
        th.classList.add("sort-heading");
        th.tabIndex = 0;
        const choose = () => {
          const state = sortState[table.id];
          const descending = state && state.column === column ? !state.descending : false;
          sortState[table.id] = { column, descending };
          sortTable(table, column, descending);
        };
        th.addEventListener("click", choose);
        th.addEventListener("keydown", (event) => {
          if (event.key === "Enter" || event.key === " ") { event.preventDefault(); choose(); }
        });
      });
      const state = sortState[table.id];
      if (state) sortTable(table, state.column, state.descending);
    });
  }

  function render() {
    const data = readData();
    if (!data) return;
    const head = draw("chart-headline", headlineConfig(data.headline));
    if (head) {
      head.sieveChosen = String(data.chosen);
      head.update("none");
    }
    draw("chart-thresholds", thresholdsConfig(data.thresholds));
    const canvas = document.getElementById("chart-classes");
    const classes = draw("chart-classes", classesConfig(data.classes, canvas && canvas.dataset.itemsUrl));
    if (classes) classes.sieveKeys = data.classes.map((r) => r.label_key);
    draw("chart-histogram", histogramConfig(data.histogram));
    setUpSorting();
    document.body.dataset.chartsVersion = document.getElementById("dash-live").dataset.version;
  }

  document.addEventListener("DOMContentLoaded", render);
  document.addEventListener("htmx:afterSettle", render);
})();

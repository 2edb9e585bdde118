/* Transfers dashboard: draws each <canvas data-chart> with Chart.js from the JSON in the
 * <script type="application/json" id="{data-source}"> that Django's json_script wrote. No inline JS. */
(function () {
  "use strict";

  var PALETTE = ["#0f5c63", "#f2a541", "#1e5fae", "#9a5b00", "#1c7c4a", "#b42318"];

  function read(id) {
    var node = document.getElementById(id);
    if (!node) {
      return null;
    }
    try {
      return JSON.parse(node.textContent);
    } catch (error) {
      return null;
    }
  }

  function config(kind, data, label) {
    var common = { responsive: true, maintainAspectRatio: false, animation: false };
    if (kind === "doughnut") {
      return {
        type: "doughnut",
        data: { labels: data.labels, datasets: [{ data: data.data, backgroundColor: PALETTE }] },
        options: Object.assign({}, common, { plugins: { legend: { position: "right" } } }),
      };
    }
    if (kind === "bar-stacked") {
      return {
        type: "bar",
        data: {
          labels: data.labels,
          datasets: data.datasets.map(function (set, index) {
            return { label: set.label, data: set.data, backgroundColor: PALETTE[index % PALETTE.length] };
          }),
        },
        options: Object.assign({}, common, {
          scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
        }),
      };
    }
    if (kind === "line") {
      return {
        type: "line",
        data: {
          labels: data.labels,
          datasets: data.datasets.map(function (set, index) {
            return {
              label: set.label,
              data: set.data,
              borderColor: PALETTE[index % PALETTE.length],
              backgroundColor: PALETTE[index % PALETTE.length],
              spanGaps: true,
              tension: 0.2,
            };
          }),
        },
        options: Object.assign({}, common, { scales: { y: { beginAtZero: true } } }),
      };
    }
    return {
      type: "bar",
      data: { labels: data.labels, datasets: [{ label: label || "", data: data.data, backgroundColor: PALETTE[0] }] },
      options: Object.assign({}, common, {
        plugins: { legend: { display: false } },
        scales: { y: { beginAtZero: true } },
      }),
    };
  }

  function draw() {
    if (!window.Chart) {
      return;
    }
    document.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var data = read(canvas.getAttribute("data-source"));
      if (!data) {
        return;
      }
      var chart = new window.Chart(canvas, config(canvas.getAttribute("data-chart"), data, canvas.getAttribute("data-label")));
      canvas.setAttribute("data-drawn", "true");
      canvas.chart = chart;
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();

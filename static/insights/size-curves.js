/* Size-curve chart: reads the JSON block the server renders next to the canvas (json_script,
 * so no inline script runs under the CSP) and draws it with the vendored Chart.js. Redraws after
 * htmx swaps the #size-curve fragment (new category, store or buy quantity). */
(function () {
  "use strict";

  var chart = null;

  function draw() {
    var data = document.getElementById("size-curve-data");
    var canvas = document.getElementById("size-curve-chart");
    if (chart) {
      chart.destroy();
      chart = null;
    }
    if (!data || !canvas || typeof window.Chart === "undefined") {
      return;
    }
    var curve = JSON.parse(data.textContent);
    chart = new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: curve.labels,
        datasets: [
          {
            label: "Share of demand (%)",
            data: curve.shares,
            backgroundColor: "#0f5c63",
            borderRadius: 4
          }
        ]
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        scales: {
          y: { beginAtZero: true, ticks: { callback: function (value) { return value + "%"; } } }
        },
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              afterLabel: function (item) {
                var sold = curve.sold[item.dataIndex] || 0;
                var lost = curve.lost[item.dataIndex] || 0;
                return sold + " sold" + (lost ? ", " + lost + " lost" : "");
              }
            }
          }
        }
      }
    });
    canvas.setAttribute("data-drawn", "true");
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.target && event.target.id === "size-curve") {
      draw();
    }
  });
})();

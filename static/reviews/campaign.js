// The campaign page's progress chart: tasks done per day, drawn once from the page's own JSON.
document.addEventListener("DOMContentLoaded", () => {
  const data = document.getElementById("campaign-chart");
  const canvas = document.getElementById("campaign-canvas");
  if (!data || !canvas || !window.Chart) return;
  const chart = JSON.parse(data.textContent);
  new window.Chart(canvas, {
    type: "bar",
    data: { labels: chart.days, datasets: [{ label: "done or skipped", data: chart.done, backgroundColor: "#16a34a", maxBarThickness: 48 }] },
    options: { animation: false, responsive: true, maintainAspectRatio: false, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
});

// The dashboard's charts: counts per hour, drawn with uPlot (vendored, MIT) as stacked-looking bars
// per series; times on the axis in the operator's time zone.
(function () {
  "use strict";
  const PALETTE = ["#b42318", "#0f6b5c", "#b54708", "#1d4ed8", "#6d28d9", "#0e7490", "#4d7c0f", "#9f1239"];
  window.TripGuard.widget("chart", (el) => {
    const hours = JSON.parse(el.dataset.hours);
    const series = JSON.parse(el.dataset.series);
    const labels = JSON.parse(el.dataset.labels);
    const names = Object.keys(series);
    if (!names.length) {
      const p = document.createElement("p");
      p.className = "muted";
      p.textContent = el.dataset.empty;
      el.appendChild(p);
      return null;
    }
    const zone = el.dataset.zone;
    const hourOf = new Intl.DateTimeFormat("en-GB", { timeZone: zone, hour: "2-digit", minute: "2-digit", hour12: false });
    const bars = uPlot.paths.bars({ size: [0.8, 40] });
    const opts = {
      width: Math.max(280, el.clientWidth),
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), zone),
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
      axes: [{ values: (u, ticks) => ticks.map((t) => hourOf.format(new Date(t * 1000))) },
             { size: 40, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }],  // counts: whole numbers
      series: [{ label: el.dataset.timeLabel, value: (u, t) => (t == null ? "—" : hourOf.format(new Date(t * 1000))) },
               ...names.map((name, i) => ({ label: labels[name] || name, stroke: PALETTE[i % PALETTE.length],
                                                fill: PALETTE[i % PALETTE.length] + "99", paths: bars, points: { show: false } }))],
    };
    const chart = new uPlot(opts, [hours, ...names.map((name) => series[name])], el);
    const resized = new ResizeObserver(() => chart.setSize({ width: Math.max(280, el.clientWidth), height: 220 }));
    resized.observe(el);
    return () => { resized.disconnect(); chart.destroy(); };
  });
})();

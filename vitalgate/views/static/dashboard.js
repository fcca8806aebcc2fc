// Draws the patient page's charts from the JSON the server embedded (#page-data).
// Times are "local epoch ms": the patient's wall-clock time, so no time-zone logic here.
(function () {
  "use strict";
  const el = document.getElementById("page-data");
  if (!el || !window.Plotly) { return; }
  const d = JSON.parse(el.textContent);
  const C = {
    sys: "#c62828", dia: "#1f5fa8", target: "#2e7d32", grid: "#edf0f3",
    veryLow: "#8b1a1a", low: "#e53935", inRange: "#43a047", high: "#fdd835", veryHigh: "#fb8c00",
    band95: "rgba(31,95,168,0.15)", band50: "rgba(31,95,168,0.40)", median: "#0d3b73",
  };
  const font = { family: "system-ui, -apple-system, Segoe UI, Roboto, DejaVu Sans, sans-serif", size: 12, color: "#1d2733" };
  const cfg = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const range = d.range.x;
  function layout(extra) {
    return Object.assign({
      font: font, margin: { l: 48, r: 12, t: 8, b: 36 }, showlegend: true,
      legend: { orientation: "h", y: 1.12, x: 0 }, hovermode: "closest",
      paper_bgcolor: "#fff", plot_bgcolor: "#fff",
      xaxis: { type: "date", range: range, gridcolor: C.grid },
    }, extra);
  }
  function hline(y, color, dash, text) {
    return { type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y,
      line: { color: color, width: 1.2, dash: dash || "dash" } };
  }
  function plot(id, traces, lay) {
    const node = document.getElementById(id);
    if (!node) { return; }
    Plotly.newPlot(node, traces, lay, cfg).then(function () { node.dataset.drawn = "1"; });
  }
  function empty(id, text) {
    const node = document.getElementById(id);
    if (!node) { return; }
    node.innerHTML = '<p class="muted" style="padding:20px">' + text + "</p>";
    node.style.height = "auto";
    node.dataset.drawn = "empty";
  }

  // Blood pressure: readings, weekly averages, home targets 135/85.
  const bp = d.bp;
  if (bp && bp.n) {
    const catNames = ["Normal", "Elevated", "Stage 1", "Stage 2", "Crisis"];
    const text = bp.cat.map(function (c, i) { return (catNames[c] || "") + (bp.irregular[i] ? " · irregular pulse" : ""); });
    const traces = [
      { x: bp.x, y: bp.sys, name: "Systolic", mode: "markers", marker: { color: C.sys, size: 5, opacity: 0.55 }, text: text,
        hovertemplate: "%{x|%d %b %H:%M}<br>%{y} mmHg systolic<br>%{text}<extra></extra>" },
      { x: bp.x, y: bp.dia, name: "Diastolic", mode: "markers", marker: { color: C.dia, size: 5, opacity: 0.55 },
        hovertemplate: "%{x|%d %b %H:%M}<br>%{y} mmHg diastolic<extra></extra>" },
    ];
    if (bp.weekly && bp.weekly.length) {
      const wx = bp.weekly.map(function (w) { return w.x; });
      const wt = bp.weekly.map(function (w) { return "week of " + w.week + ", " + w.n + " readings<br>" + w.category; });
      traces.push({ x: wx, y: bp.weekly.map(function (w) { return w.sys; }), name: "Weekly mean systolic",
        mode: "lines+markers", line: { color: C.sys, width: 3 }, marker: { size: 9, symbol: "diamond" }, text: wt,
        hovertemplate: "%{y} mmHg<br>%{text}<extra></extra>" });
      traces.push({ x: wx, y: bp.weekly.map(function (w) { return w.dia; }), name: "Weekly mean diastolic",
        mode: "lines+markers", line: { color: C.dia, width: 3 }, marker: { size: 9, symbol: "diamond" }, text: wt,
        hovertemplate: "%{y} mmHg<br>%{text}<extra></extra>" });
    }
    plot("chart-bp", traces, layout({
      yaxis: { title: { text: "mmHg" }, gridcolor: C.grid, rangemode: "tozero", range: [50, Math.max(190, Math.max.apply(null, bp.sys) + 10)] },
      shapes: [hline(bp.target_sys, C.sys), hline(bp.target_dia, C.dia)],
      annotations: [
        { xref: "paper", x: 1, y: bp.target_sys, text: "home target " + bp.target_sys, showarrow: false, xanchor: "right", yanchor: "bottom", font: { color: C.sys, size: 11 } },
        { xref: "paper", x: 1, y: bp.target_dia, text: "home target " + bp.target_dia, showarrow: false, xanchor: "right", yanchor: "bottom", font: { color: C.dia, size: 11 } },
      ],
    }));
  } else { empty("chart-bp", "No blood-pressure readings in this range."); }

  // CGM: time-in-ranges stacked bar (consensus colours) and the AGP.
  const cgm = d.cgm;
  if (cgm) {
    const t = cgm.tir;
    const parts = [
      ["Very low <54", t.very_low, C.veryLow], ["Low 54–69", t.low, C.low], ["In range 70–180", t.target, C.inRange],
      ["High 181–250", t.high, C.high], ["Very high >250", t.very_high, C.veryHigh],
    ];
    plot("chart-tir", parts.map(function (p) {
      return { x: ["TIR"], y: [p[1]], name: p[0] + ": " + p[1] + " %", type: "bar", marker: { color: p[2] },
        text: [p[1] >= 3 ? p[1].toFixed(0) + " %" : ""], textposition: "inside", insidetextanchor: "middle",
        hovertemplate: p[0] + ": %{y:.1f} %<extra></extra>" };
    }), { font: font, barmode: "stack", margin: { l: 36, r: 8, t: 8, b: 20 }, showlegend: true,
      legend: { traceorder: "reversed", x: 1.02, y: 0.5, yanchor: "middle" }, bargap: 0.35,
      xaxis: { visible: false }, yaxis: { range: [0, 100], ticksuffix: " %", gridcolor: C.grid } });

    const a = cgm.agp;
    const x = a.tod_min.map(function (m) { return m / 60; });
    const tick = { tickvals: [0, 3, 6, 9, 12, 15, 18, 21, 24], ticktext: ["00:00", "03:00", "06:00", "09:00", "12:00", "15:00", "18:00", "21:00", "24:00"] };
    plot("chart-agp", [
      { x: x, y: a.p5, mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
      { x: x, y: a.p95, mode: "lines", line: { width: 0.5, color: "rgba(31,95,168,0.4)" }, fill: "tonexty", fillcolor: C.band95, name: "5–95 %",
        hovertemplate: "95th: %{y:.0f}<extra></extra>" },
      { x: x, y: a.p25, mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
      { x: x, y: a.p75, mode: "lines", line: { width: 0.5, color: "rgba(31,95,168,0.6)" }, fill: "tonexty", fillcolor: C.band50, name: "25–75 %",
        hovertemplate: "75th: %{y:.0f}<extra></extra>" },
      { x: x, y: a.p50, mode: "lines", line: { width: 2.5, color: C.median }, name: "Median",
        hovertemplate: "%{x:.2f} h<br>median %{y:.0f} mg/dL<extra></extra>" },
    ], { font: font, margin: { l: 48, r: 12, t: 8, b: 36 }, showlegend: true, legend: { orientation: "h", y: 1.12 },
      xaxis: Object.assign({ range: [0, 24], gridcolor: C.grid }, tick),
      yaxis: { title: { text: "mg/dL" }, range: [0, 350], gridcolor: C.grid, tickvals: [0, 54, 70, 180, 250, 350] },
      shapes: [hline(70, C.target, "solid"), hline(180, C.target, "solid")] });

    const daily = cgm.overlay.map(function (o, i) {
      const last = i === cgm.overlay.length - 1;
      return { x: o.x.map(function (m) { return m / 60; }), y: o.y, mode: "lines", name: o.day, connectgaps: false,
        line: { width: last ? 2.2 : 1, color: last ? C.median : "rgba(31,95,168," + (0.15 + 0.4 * i / cgm.overlay.length).toFixed(2) + ")" },
        hovertemplate: o.day + " %{x:.2f} h: %{y} mg/dL<extra></extra>" };
    });
    plot("chart-daily", daily, { font: font, margin: { l: 48, r: 12, t: 8, b: 36 }, showlegend: false,
      xaxis: Object.assign({ range: [0, 24], gridcolor: C.grid }, tick),
      yaxis: { title: { text: "mg/dL" }, range: [40, 350], gridcolor: C.grid },
      shapes: [hline(70, C.target, "solid"), hline(180, C.target, "solid")] });
  }

  // Meter readings by meal context.
  const meter = d.meter;
  if (meter && meter.x.length) {
    const groups = {};
    meter.meal.forEach(function (m, i) { (groups[m] = groups[m] || { x: [], y: [] }).x.push(meter.x[i]); groups[m].y.push(meter.y[i]); });
    const colors = { "Before meal": "#1f5fa8", "After meal": "#fb8c00", "Fasting": "#6a1b9a", "Casual": "#546e7a", "Bedtime": "#00897b", "No context": "#90a4ae" };
    plot("chart-meter", Object.keys(groups).map(function (k) {
      return { x: groups[k].x, y: groups[k].y, name: k, mode: "markers", marker: { size: 6, color: colors[k] || "#555" },
        hovertemplate: "%{x|%d %b %H:%M}<br>%{y} mg/dL · " + k + "<extra></extra>" };
    }), layout({ yaxis: { title: { text: "mg/dL" }, gridcolor: C.grid }, shapes: [hline(70, C.target, "dot"), hline(180, C.target, "dot")] }));
  } else if (document.getElementById("chart-meter")) { empty("chart-meter", "No meter readings."); }

  // Heart rate: mean with a min-max band (downsampled on the server).
  const hr = d.hr;
  if (hr) {
    plot("chart-hr", [
      { x: hr.x, y: hr.min, mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip" },
      { x: hr.x, y: hr.max, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(198,40,40,0.15)", name: "min–max", hoverinfo: "skip" },
      { x: hr.x, y: hr.mean, mode: "lines", line: { color: "#c62828", width: 1.4 }, name: "Heart rate",
        hovertemplate: "%{x|%d %b %H:%M}<br>%{y} bpm<extra></extra>" },
    ], layout({ yaxis: { title: { text: "bpm" }, gridcolor: C.grid } }));
  } else { empty("chart-hr", "No heart-rate readings in this range."); }

  function points(id, s, name, unit, color, shapes, yaxis) {
    if (!s) { empty(id, "No " + name.toLowerCase() + " readings in this range."); return; }
    plot(id, [{ x: s.x, y: s.y, name: name, mode: "lines+markers", line: { color: color, width: 1 }, marker: { size: 5, color: color },
      hovertemplate: "%{x|%d %b %H:%M}<br>%{y} " + unit + "<extra></extra>" }],
      layout({ showlegend: false, yaxis: Object.assign({ title: { text: name + " (" + unit + ")" }, gridcolor: C.grid }, yaxis || {}), shapes: shapes || [] }));
  }
  points("chart-spo2", d.spo2, "SpO2", "%", "#1f5fa8", [hline(90, C.sys)], { range: [80, 100] });
  points("chart-hrv", d.hrv, "HRV (RMSSD)", "ms", "#6a1b9a");
  points("chart-weight", d.weight, "Weight", "kg", "#546e7a");
  points("chart-temp", d.temp, "Temperature", "°C", "#fb8c00", [hline(38, C.sys, "dot")]);

  // Quick range links keep "to" and set "from".
  document.body.dataset.chartsReady = "1";
})();

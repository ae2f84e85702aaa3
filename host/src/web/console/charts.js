// Small SVG charts for the dashboards, written here rather than pulled from npm so the
// console stays one embedded, dependency-free bundle. Each function returns an <svg>.
"use strict";

const Charts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#1f4e8c", "#e07a1f", "#2e7d32", "#8e44ad", "#c62828", "#00838f", "#6d4c41", "#7f8c8d"];
  const svg = (tag, attrs = {}, ...children) => {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  };
  const fit = (text, max) => (text.length > max ? text.slice(0, max - 1) + "…" : text);
  // What a chart shows, as text for screen readers (the chart is one image to them): its
  // title, then every value.
  const sep = () => (document.documentElement.lang === "en" ? "; " : "；");
  const described = (root, title, parts) => {
    root.setAttribute("aria-label", `${title}${document.documentElement.lang === "en" ? ": " : "："}${parts.length ? parts.join(sep()) : "—"}`);
    return root;
  };
  // Room on the left for the longest value label of an axis.
  const axisRoom = (labels) => 12 + 8 * Math.max(1, ...labels.map((l) => String(l).length));

  // Horizontal bars, one per item: [{id, label, value, text}]. `onpick(item)` on click.
  function bars(items, { onpick, width = 520, format = (v) => String(v), title = "" } = {}) {
    const row = 26, left = 120, right = 70;
    const height = Math.max(1, items.length) * row + 8;
    const max = Math.max(1e-9, ...items.map((i) => i.value || 0));
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, style: "max-width:100%;height:auto", role: "img", class: "chart-bars" });
    items.forEach((item, n) => {
      const y = 4 + n * row;
      const w = Math.max(1, ((item.value || 0) / max) * (width - left - right));
      const g = svg("g", { "data-id": item.id, class: "bar" });
      g.append(svg("text", { x: left - 6, y: y + 16, "text-anchor": "end" }, fit(item.label, 12)));
      const rect = svg("rect", { x: left, y: y + 3, width: w, height: row - 8, rx: 2, class: "bar-rect" });
      rect.append(svg("title", {}, `${item.label}: ${format(item.value || 0)}`));
      g.append(rect, svg("text", { x: left + w + 5, y: y + 16 }, format(item.value || 0)));
      if (onpick) { g.style.cursor = "pointer"; g.addEventListener("click", () => onpick(item)); }
      root.append(g);
    });
    if (items.length === 0) root.append(svg("text", { x: 8, y: 18 }, "—"));
    return described(root, title, items.map((i) => `${i.label} ${format(i.value || 0)}`));
  }

  // Horizontal stacked bars: items [{id, label, values: {key: n}}], series [{key, label}].
  function stacked(items, series, { onpick, width = 520, title = "" } = {}) {
    const row = 26, left = 120, right = 40;
    const height = Math.max(1, items.length) * row + 8;
    const total = (i) => series.reduce((s, k) => s + (i.values[k.key] || 0), 0);
    const max = Math.max(1e-9, ...items.map(total));
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, style: "max-width:100%;height:auto", role: "img", class: "chart-stacked" });
    items.forEach((item, n) => {
      const y = 4 + n * row;
      const g = svg("g", { "data-id": item.id });
      g.append(svg("text", { x: left - 6, y: y + 16, "text-anchor": "end" }, fit(item.label, 12)));
      let x = left;
      series.forEach((s, k) => {
        const v = item.values[s.key] || 0;
        if (!v) return;
        const w = (v / max) * (width - left - right);
        const rect = svg("rect", { x, y: y + 3, width: w, height: row - 8, fill: PALETTE[k % PALETTE.length] });
        rect.append(svg("title", {}, `${item.label} · ${s.label}: ${v}`));
        g.append(rect);
        x += w;
      });
      g.append(svg("text", { x: x + 5, y: y + 16 }, String(total(item))));
      if (onpick) { g.style.cursor = "pointer"; g.addEventListener("click", () => onpick(item)); }
      root.append(g);
    });
    const parts = items.map((i) => `${i.label} ${series.filter((k) => i.values[k.key]).map((k) => `${k.label} ${i.values[k.key]}`).join(", ") || "0"}`);
    return described(root, title, parts);
  }

  // Lines over days: days ["2026-11-22", …], series [{label, values: [n per day]}].
  function lines(days, series, { width = 520, height = 200, title = "" } = {}) {
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    // Room on the right for the last day's label, centred on the last point.
    const left = axisRoom([max]), bottom = 24, top = 10, right = 24;
    const x = (i) => left + (days.length <= 1 ? 0 : (i / (days.length - 1)) * (width - left - right));
    const y = (v) => top + (1 - v / max) * (height - top - bottom);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, style: "max-width:100%;height:auto", role: "img", class: "chart-lines" });
    root.append(svg("line", { x1: left, y1: y(0), x2: width - right, y2: y(0), class: "axis" }));
    root.append(svg("text", { x: left - 4, y: y(max) + 4, "text-anchor": "end" }, String(max)));
    root.append(svg("text", { x: left - 4, y: y(0) + 4, "text-anchor": "end" }, "0"));
    days.forEach((d, i) => root.append(svg("text", { x: x(i), y: height - 6, "text-anchor": "middle" }, d.slice(5))));
    series.forEach((s, k) => {
      const color = PALETTE[k % PALETTE.length];
      root.append(svg("polyline", { points: s.values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: color, "stroke-width": 2 }));
      s.values.forEach((v, i) => {
        const dot = svg("circle", { cx: x(i), cy: y(v), r: 3, fill: color });
        dot.append(svg("title", {}, `${s.label} ${days[i]}: ${v}`));
        root.append(dot);
      });
    });
    return described(root, title, series.map((s) => `${s.label} ${s.values.reduce((a, b) => a + b, 0)}（${days[0] || ""}–${days[days.length - 1] || ""}）`));
  }

  function legend(series) {
    const box = document.createElement("div");
    box.className = "legend";
    series.forEach((s, k) => {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = PALETTE[k % PALETTE.length];
      item.append(swatch, s.label);
      box.append(item);
    });
    return box;
  }

  return { bars, stacked, lines, legend };
})();

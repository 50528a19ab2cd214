// SVG charts drawn from the counts the server sends (dialer.receiver.ui.charts).
// Every label is a text node; bars carry data-label/data-count for tests and tools.
"use strict";

const Charts = (() => {
  const { svg, el } = D;

  function progress(fraction, width = 160) {
    const w = Math.max(0, Math.min(1, fraction)) * width;
    return svg("svg", { class: "progress", width, height: 10, viewBox: `0 0 ${width} 10`,
      role: "progressbar", "aria-valuenow": Math.round(fraction * 100), "aria-valuemin": 0, "aria-valuemax": 100 },
      svg("rect", { class: "bar-bg", x: 0, y: 0, width, height: 10, rx: 3 }),
      svg("rect", { class: "bar-fg", x: 0, y: 0, width: w, height: 10, rx: 3 }));
  }

  // One horizontal bar split by outcome.
  function mix(outcomes, width = 160) {
    const total = Object.values(outcomes).reduce((a, b) => a + b, 0);
    const root = svg("svg", { class: "mix", width, height: 10, viewBox: `0 0 ${width} 10` },
      svg("rect", { class: "bar-bg", x: 0, y: 0, width, height: 10 }));
    let x = 0;
    for (const [name, n] of Object.entries(outcomes)) {
      const w = total ? (n / total) * width : 0;
      root.append(svg("rect", { class: D.outcomeClass(name), x, y: 0, width: w, height: 10,
        "data-label": name, "data-count": n }, svg("title", {}, `${name}: ${n}`)));
      x += w;
    }
    return root;
  }

  function legend(names) {
    return el("div", { class: "legend" }, names.map((n) => [el("span", { class: "swatch " + D.outcomeClass(n) }), n]));
  }

  // Calls finished per time bucket, stacked by outcome.
  function timeline(t, width = 520, height = 180) {
    const names = Object.keys(t.series);
    const buckets = names.length ? t.series[names[0]].length : 0;
    const sums = Array.from({ length: buckets }, (_, i) => names.reduce((a, n) => a + t.series[n][i], 0));
    const top = Math.max(1, ...sums);
    const pad = 24, plotH = height - pad - 8, colW = buckets ? (width - pad) / buckets : 0;
    const root = svg("svg", { class: "timeline", width, height, viewBox: `0 0 ${width} ${height}` },
      svg("line", { class: "axis", x1: pad, y1: height - pad, x2: width, y2: height - pad }),
      svg("text", { x: 0, y: 12 }, String(top)),
      svg("text", { x: pad, y: height - 6 }, new Date(t.start * 1000).toLocaleTimeString()),
      svg("text", { x: width - 70, y: height - 6 },
        new Date((t.start + t.step_s * buckets) * 1000).toLocaleTimeString()));
    for (let i = 0; i < buckets; i++) {
      let y = height - pad;
      for (const n of names) {
        const v = t.series[n][i];
        if (!v) continue;
        const h = (v / top) * plotH;
        y -= h;
        root.append(svg("rect", { class: D.outcomeClass(n), x: pad + i * colW + 1, y, width: Math.max(1, colW - 2), height: h,
          "data-label": n, "data-count": v }, svg("title", {}, `${n}: ${v}`)));
      }
    }
    return el("div", {}, root, legend(names));
  }

  // Active calls against the account's limit: a half-circle gauge.
  function gauge(active, limit, size = 180) {
    const r = size / 2 - 12, cx = size / 2, cy = size / 2 + 4;
    const frac = limit ? Math.min(1, active / limit) : 0;
    const arc = (f) => {
      const a = Math.PI * (1 - f);
      return `M ${cx - r} ${cy} A ${r} ${r} 0 0 1 ${cx + r * Math.cos(a)} ${cy - r * Math.sin(a)}`;
    };
    const root = svg("svg", { class: "gauge", width: size, height: size / 2 + 28, viewBox: `0 0 ${size} ${size / 2 + 28}`,
      "data-active": active, "data-limit": limit },
      svg("path", { class: "gauge-bg", d: arc(1), "stroke-width": 14 }));
    if (frac > 0) root.append(svg("path", { class: "gauge-fg" + (frac >= 1 ? " full" : ""), d: arc(frac), "stroke-width": 14 }));
    root.append(svg("text", { x: cx, y: cy + 18, "text-anchor": "middle" }, `${active} / ${limit} calls`));
    return root;
  }

  // Labelled horizontal bars: {label: count}.
  function bars(counts, width = 420) {
    const entries = Object.entries(counts);
    const top = Math.max(1, ...entries.map(([, n]) => n));
    const total = entries.reduce((a, [, n]) => a + n, 0);
    const rowH = 22, labelW = 90, height = Math.max(1, entries.length) * rowH;
    const root = svg("svg", { class: "bars", width, height, viewBox: `0 0 ${width} ${height}` });
    entries.forEach(([label, n], i) => {
      const w = (n / top) * (width - labelW - 90);
      const y = i * rowH;
      root.append(
        svg("text", { x: 0, y: y + 15 }, label),
        svg("rect", { class: "bar-fg", x: labelW, y: y + 4, width: w, height: rowH - 8, "data-label": label, "data-count": n }),
        svg("text", { x: labelW + w + 6, y: y + 15 }, `${n} (${total ? Math.round((100 * n) / total) : 0} %)`));
    });
    return root;
  }

  return { progress, mix, legend, timeline, gauge, bars };
})();

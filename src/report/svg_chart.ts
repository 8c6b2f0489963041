/**
 * Small inline-SVG charts for the run report: line charts over time and bar charts. No library,
 * no network: the report is one self-contained HTML file.
 * @module
 */

/** One line of a {@linkcode lineChart}. */
export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  dash?: boolean;
  /** Drawn as steps (a value holds until the next point). */
  step?: boolean;
}

/** A mark on a {@linkcode lineChart}'s time axis (a 429, a slow-down). */
export interface Marker {
  x: number;
  label: string;
  color: string;
  /** `dot` at the top of the plot (sized by `weight`), `tick` a short line at the bottom. */
  shape: "dot" | "tick";
  weight?: number;
}

/** A shaded span of time (a pause). */
export interface Band {
  from: number;
  to: number;
  label: string;
}

/** Options for {@linkcode lineChart}. */
export interface LineChartOptions {
  id: string;
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  markers?: Marker[];
  bands?: Band[];
  xMax: number;
  width?: number;
  height?: number;
}

/** Escapes text for HTML and SVG. */
export function esc(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&#39;",
  );
}

/** A round number ≥ `x` for an axis top. */
function niceCeil(x: number): number {
  if (!(x > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(x));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= x) return m * p;
  return 10 * p;
}

/** A number for a label: integers plain, else up to 2 significant decimals. */
export function fmt(x: number): string {
  if (Number.isInteger(x)) return x.toLocaleString("en-US");
  return Math.abs(x) >= 100 ? Math.round(x).toLocaleString("en-US") : String(+x.toPrecision(3));
}

const r1 = (x: number) => Math.round(x * 10) / 10;

/** A line chart with a legend, axes, 5 gridlines, markers and shaded bands. */
export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 900, H = o.height ?? 260;
  const L = 56, R = 12, T = 16, B = 34;
  const pw = W - L - R, ph = H - T - B;
  const xMax = Math.max(o.xMax, 1);
  let yTop = 0;
  for (const s of o.series) for (const [, y] of s.points) if (y > yTop) yTop = y;
  yTop = niceCeil(yTop * 1.05);
  const X = (x: number) => r1(L + (x / xMax) * pw);
  const Y = (y: number) => r1(T + ph - (y / yTop) * ph);
  const parts: string[] = [];
  parts.push(
    `<svg id="${o.id}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${
      esc(o.title)
    }" xmlns="http://www.w3.org/2000/svg">`,
  );
  for (const b of o.bands ?? []) {
    parts.push(
      `<rect class="band" x="${X(b.from)}" y="${T}" width="${
        Math.max(1, X(Math.min(b.to, xMax)) - X(b.from))
      }" height="${ph}" fill="#f5c2c2" opacity="0.5"><title>${esc(b.label)}</title></rect>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const v = (yTop * i) / 5;
    parts.push(
      `<line x1="${L}" x2="${L + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#e3e3e3"/>` +
        `<text x="${L - 6}" y="${Y(v) + 4}" text-anchor="end" font-size="11" fill="#555">${
          fmt(v)
        }</text>`,
    );
  }
  for (let i = 0; i <= 6; i++) {
    const v = (xMax * i) / 6;
    parts.push(
      `<text x="${X(v)}" y="${T + ph + 16}" text-anchor="middle" font-size="11" fill="#555">${
        fmt(Math.round(v * 10) / 10)
      }</text>`,
    );
  }
  parts.push(
    `<text x="${L + pw / 2}" y="${H - 2}" text-anchor="middle" font-size="11" fill="#333">${
      esc(o.xLabel)
    }</text>`,
    `<text x="12" y="${
      T + ph / 2
    }" text-anchor="middle" font-size="11" fill="#333" transform="rotate(-90 12 ${T + ph / 2})">${
      esc(o.yLabel)
    }</text>`,
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${T + ph}" stroke="#999"/>`,
    `<line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#999"/>`,
  );
  for (const s of o.series) {
    const pts: string[] = [];
    let prev: [number, number] | undefined;
    for (const p of s.points) {
      if (s.step && prev) pts.push(`${X(p[0])},${Y(prev[1])}`);
      pts.push(`${X(p[0])},${Y(p[1])}`);
      prev = p;
    }
    parts.push(
      `<polyline class="series" data-series="${
        esc(s.name)
      }" data-points="${s.points.length}" points="${
        pts.join(" ")
      }" fill="none" stroke="${s.color}" stroke-width="${s.dash ? 1.5 : 2}"${
        s.dash ? ' stroke-dasharray="6 4"' : ""
      }/>`,
    );
  }
  for (const m of o.markers ?? []) {
    if (m.shape === "dot") {
      const rad = Math.min(8, 2.5 + Math.log2(1 + (m.weight ?? 1)));
      parts.push(
        `<circle class="marker" data-marker="${esc(m.label.split(":")[0])}" cx="${X(m.x)}" cy="${
          T + 6
        }" r="${r1(rad)}" fill="${m.color}" opacity="0.8"><title>${esc(m.label)}</title></circle>`,
      );
    } else {
      parts.push(
        `<path class="marker" data-marker="${esc(m.label.split(":")[0])}" d="M${X(m.x)} ${
          T + ph
        }l-5 8h10z" fill="${m.color}"><title>${esc(m.label)}</title></path>`,
      );
    }
  }
  parts.push("</svg>");
  const legend = o.series.map((s) =>
    `<span class="key"><i style="background:${s.color}"></i>${esc(s.name)}</span>`
  ).join("");
  return `<figure><figcaption>${esc(o.title)}</figcaption>${
    parts.join("")
  }<div class="legend">${legend}${(o.markers ?? []).length ? "" : ""}</div></figure>`;
}

/** One bar of a {@linkcode barChart}. */
export interface Bar {
  label: string;
  value: number;
  color?: string;
}

/** A vertical bar chart with a label under each bar and its value above it. */
export function barChart(
  o: { id: string; title: string; bars: Bar[]; yLabel: string; width?: number; height?: number },
): string {
  const W = o.width ?? 900, H = o.height ?? 220;
  const L = 56, R = 12, T = 18, B = 36;
  const pw = W - L - R, ph = H - T - B;
  const top = niceCeil(Math.max(1, ...o.bars.map((b) => b.value)));
  const n = Math.max(1, o.bars.length);
  const slot = pw / n;
  const bw = Math.max(1, slot * 0.8);
  const every = Math.ceil(n / 24); // at most 24 labels
  const parts = [
    `<svg id="${o.id}" class="chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${
      esc(o.title)
    }" xmlns="http://www.w3.org/2000/svg">`,
    `<line x1="${L}" x2="${L + pw}" y1="${T + ph}" y2="${T + ph}" stroke="#999"/>`,
    `<text x="12" y="${
      T + ph / 2
    }" text-anchor="middle" font-size="11" fill="#333" transform="rotate(-90 12 ${T + ph / 2})">${
      esc(o.yLabel)
    }</text>`,
  ];
  o.bars.forEach((b, i) => {
    const h = r1((b.value / top) * ph);
    const x = r1(L + i * slot + (slot - bw) / 2);
    parts.push(
      `<rect class="bar" data-label="${esc(b.label)}" data-value="${b.value}" x="${x}" y="${
        r1(T + ph - h)
      }" width="${r1(bw)}" height="${h}" fill="${b.color ?? "#4e79a7"}"><title>${esc(b.label)}: ${
        fmt(b.value)
      }</title></rect>`,
    );
    if (i % every === 0) {
      parts.push(
        `<text x="${r1(x + bw / 2)}" y="${
          T + ph + 14
        }" text-anchor="middle" font-size="10" fill="#555">${esc(b.label)}</text>`,
      );
      if (n <= 24) {
        parts.push(
          `<text x="${r1(x + bw / 2)}" y="${
            r1(T + ph - h - 4)
          }" text-anchor="middle" font-size="10" fill="#333">${fmt(b.value)}</text>`,
        );
      }
    }
  });
  parts.push("</svg>");
  return `<figure><figcaption>${esc(o.title)}</figcaption>${parts.join("")}</figure>`;
}

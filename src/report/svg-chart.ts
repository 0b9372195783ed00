/** Small dependency-free SVG line charts for training curves (one panel per metric). */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  /** A shaded range around the line, as [x, low, high] (the spread over seeds of a mean). */
  band?: readonly (readonly [number, number, number])[];
  /** Index into the palette, so one thing keeps its colour across panels; default: its place in the panel. */
  colorIndex?: number;
}

export interface Panel {
  title: string;
  series: readonly Series[];
}

/** Each point replaced by the mean of itself and up to `window − 1` points before it: a noisy per-step reward's trend. */
export function trailingMean(points: Series['points'], window: number): Series['points'] {
  return points.map(([x], i) => {
    const span = points.slice(Math.max(0, i - window + 1), i + 1);
    return [x, span.reduce((sum, [, y]) => sum + y, 0) / span.length] as const;
  });
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
const W = 420;
const H = 240;
const M = { left: 56, right: 12, top: 28, bottom: 34 };

function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (lo === hi) return [lo];
  const raw = (hi - lo) / count;
  const step = 10 ** Math.floor(Math.log10(raw));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => s >= raw) ?? raw;
  const ticks: number[] = [];
  // Ticks are integer multiples of the step, so accumulated rounding never prints 1e-25 for 0.
  for (let k = Math.ceil(lo / nice); k * nice <= hi + nice * 1e-9; k++) ticks.push(Number((k * nice).toPrecision(6)));
  return ticks;
}

const escape = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

function panelSvg(panel: Panel, x0: number, y0: number): string {
  const bandPoints = panel.series.flatMap((s) => (s.band ?? []).flatMap(([x, low, high]) => [[x, low], [x, high]] as const));
  const all = [...panel.series.flatMap((s) => s.points), ...bandPoints].filter(([, y]) => Number.isFinite(y));
  const parts = [`<g transform="translate(${x0},${y0})">`, `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">${escape(panel.title)}</text>`];
  if (!all.length) return parts.concat(['<text x="40" y="120" font-size="12">no data</text>', '</g>']).join('');
  let [xmin, xmax] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [ymin, ymax] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (xmin === xmax) [xmin, xmax] = [xmin - 1, xmax + 1];
  if (ymin === ymax) [ymin, ymax] = [ymin - 0.5, ymax + 0.5];
  const pad = (ymax - ymin) * 0.05;
  [ymin, ymax] = [ymin - pad, ymax + pad];
  const sx = (x: number) => M.left + ((x - xmin) / (xmax - xmin)) * (W - M.left - M.right);
  const sy = (y: number) => H - M.bottom - ((y - ymin) / (ymax - ymin)) * (H - M.top - M.bottom);
  parts.push(`<rect x="${M.left}" y="${M.top}" width="${W - M.left - M.right}" height="${H - M.top - M.bottom}" fill="none" stroke="#999"/>`);
  for (const t of niceTicks(ymin, ymax)) {
    parts.push(`<line x1="${M.left}" x2="${W - M.right}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    parts.push(`<text x="${M.left - 4}" y="${sy(t) + 4}" text-anchor="end" font-size="10">${t}</text>`);
  }
  for (const t of niceTicks(xmin, xmax)) parts.push(`<text x="${sx(t)}" y="${H - M.bottom + 14}" text-anchor="middle" font-size="10">${t}</text>`);
  parts.push(`<text x="${W / 2}" y="${H - 4}" text-anchor="middle" font-size="11">step</text>`);
  panel.series.forEach((s, i) => {
    const pts = s.points.filter(([, y]) => Number.isFinite(y));
    const color = COLORS[(s.colorIndex ?? i) % COLORS.length];
    const band = (s.band ?? []).filter(([, low, high]) => Number.isFinite(low) && Number.isFinite(high));
    if (band.length > 1) {
      const outline = [...band.map(([x, , high]) => [x, high] as const), ...band.map(([x, low]) => [x, low] as const).reverse()];
      parts.push(`<polygon fill="${color}" fill-opacity="0.18" stroke="none" points="${outline.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    }
    parts.push(`<polyline fill="none" stroke="${color}" stroke-width="1.6" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    if (pts.length === 1) parts.push(`<circle cx="${sx(pts[0][0])}" cy="${sy(pts[0][1])}" r="2.5" fill="${color}"/>`);
    // A lone line needs no legend, unless its name says what its band spans.
    if (panel.series.length > 1 || s.band) parts.push(`<text x="${M.left + 6}" y="${M.top + 14 + 13 * i}" font-size="10" fill="${color}">${escape(s.name)}</text>`);
  });
  parts.push('</g>');
  return parts.join('');
}

/** Panels laid out two per row in one SVG document. */
export function chartSvg(panels: readonly Panel[]): string {
  const cols = Math.min(2, panels.length);
  const rows = Math.ceil(panels.length / 2);
  const body = panels.map((p, i) => panelSvg(p, (i % 2) * W, Math.floor(i / 2) * H)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${cols * W}" height="${rows * H}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>\n${body}\n</svg>\n`;
}

// Line charts drawn as SVG: one line per slot over the history window,
// broken where samples are missing, with a ring where the slot's worker
// changed (a respawn, rollout or recycle). Hand-drawn rather than a
// charting library: the page needs two kinds of plain line charts, and
// this is smaller than any library that draws them.
import { svg } from './util.js';

const PAD = { left: 64, right: 10, top: 10, bottom: 20 };

// niceMax rounds v up to 1, 2 or 5 times a power of base (10, or 1024 for
// bytes), so that axis labels are round numbers.
function niceMax(v, base) {
  if (!(v > 0)) return 1;
  let p = 1;
  while (p * base <= v) p *= base;
  while (p > v) p /= base;
  for (const m of base === 1024 ? [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024] : [1, 2, 5, 10]) {
    if (m * p >= v) return m * p;
  }
  return base * p;
}

// segments turns the samples of one series into SVG path data. A sample
// of pid 0 (no worker ran) is not drawn and breaks the line, and so does a
// wait over 2.5 times the slowest sampling pace (the primary was not
// sampling, or the slot did not exist); a ring marks where the pid changed.
function segments(s, x, y, gap) {
  let d = '', prev = -1;
  const marks = [];
  for (let i = 0; i < s.time.length; i++) {
    if (!s.pid[i]) { prev = -1; continue; }
    const px = x(s.time[i]).toFixed(1), py = y(s.value[i]).toFixed(1);
    const broken = prev < 0 || s.time[i] - s.time[prev] > gap;
    d += (broken ? 'M' : 'L') + px + ' ' + py + ' ';
    if (!broken && s.pid[i] !== s.pid[prev]) marks.push([px, py]);
    prev = i;
  }
  return { d, marks };
}

// latest returns the index of the newest sample of a running worker, or -1.
function latest(s) {
  for (let i = s.time.length - 1; i >= 0; i--) if (s.pid[i]) return i;
  return -1;
}

// span returns the start of the time axis: the window back from now, or
// less while the samples cover less (at least min ms), so that a young
// cluster's lines are not squeezed against the right edge.
function span(series, now, window, min) {
  let first = now;
  for (const s of series) if (s.time.length) first = Math.min(first, s.time[0]);
  return Math.max(now - window, Math.min(first, now - min));
}

// TICKS are the steps of the time axis, in minutes.
const TICKS = [0.25, 0.5, 1, 2, 5, 10, 15];

// drawChart draws series ([{slot, time[], value[], pid[]}], times in unix
// ms) into the svg element for at most the window (ms) ending at now.
export function drawChart(el, series, { now, window, idle, format, base = 10, floor = 1 }) {
  const w = Math.max(el.clientWidth || 300, 200), h = Math.max(el.clientHeight || 180, 120);
  el.setAttribute('viewBox', `0 0 ${w} ${h}`);
  el.replaceChildren();
  let top = floor;
  for (const s of series) for (const v of s.value) top = Math.max(top, v);
  top = niceMax(top, base);
  const start = span(series, now, window, 2 * 60000);
  const x = (t) => PAD.left + (w - PAD.left - PAD.right) * (t - start) / (now - start);
  const y = (v) => h - PAD.bottom - (h - PAD.top - PAD.bottom) * Math.min(v / top, 1);
  for (const f of [0, 0.5, 1]) {
    const yy = y(top * f);
    el.append(svg('line', { class: 'axis', x1: PAD.left, x2: w - PAD.right, y1: yy, y2: yy }));
    const label = svg('text', { x: PAD.left - 6, y: yy + 4, 'text-anchor': 'end' });
    label.textContent = format(top * f);
    el.append(label);
  }
  const minutes = (now - start) / 60000;
  const step = TICKS.find((m) => minutes / m <= 4) || 15;
  for (let m = 0; m <= minutes + 1e-9; m += step) {
    const t = svg('text', { x: x(now - m * 60000), y: h - 4, 'text-anchor': m === 0 ? 'end' : 'middle' });
    t.textContent = m === 0 ? 'now' : '−' + (m < 1 ? m * 60 + ' s' : m + ' min');
    el.append(t);
  }
  const desc = [];
  for (const s of series) {
    if (s.time.length === 0) continue;
    const cls = 'c' + (s.slot % 8);
    const { d, marks } = segments(s, x, y, idle * 2.5);
    el.append(svg('path', { class: 'series ' + cls, d }));
    for (const [mx, my] of marks) el.append(svg('circle', { class: 'restart ' + cls, cx: mx, cy: my, r: 3 }));
    const last = latest(s); // visible even alone
    if (last < 0) continue;
    el.append(svg('circle', { class: 'latest ' + cls, cx: x(s.time[last]).toFixed(1), cy: y(s.value[last]).toFixed(1), r: 2.5 }));
    desc.push(`slot ${s.slot}: latest ${format(s.value[last])}, peak ${format(Math.max(...s.value))}`);
  }
  const d = svg('desc');
  d.textContent = desc.length ? desc.join('; ') : 'no samples yet';
  el.prepend(d);
}

// drawSpark draws one slot's recent values as a small line.
export function drawSpark(el, s, { now, window, idle, cls }) {
  const w = 96, h = 24;
  el.setAttribute('viewBox', `0 0 ${w} ${h}`);
  el.replaceChildren();
  if (!s || s.time.length === 0) return;
  const top = Math.max(...s.value) || 1;
  const start = span([s], now, window, 60000);
  const x = (t) => w * (t - start) / (now - start);
  const y = (v) => h - 2 - (h - 4) * (v / top);
  el.append(svg('path', { class: 'series ' + cls, d: segments(s, x, y, idle * 2.5).d }));
}

// Helpers of the dashboard: DOM building (text only: nothing the primary
// sends is ever parsed as HTML), formatting, and the API client.

export const $ = (sel) => document.querySelector(sel);

// el builds an element: el('td', {class: 'num', 'data-label': 'PID'}, '123', child…).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const SVG = 'http://www.w3.org/2000/svg';

// svg builds an SVG element with attributes.
export function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  return e;
}

export function formatBytes(n) {
  if (!n) return '0 B';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n.toFixed(0) : n.toFixed(n < 10 ? 1 : 0)) + ' ' + units[i];
}

export function formatDuration(s) {
  if (s === undefined || s === null || s < 0) return '–';
  s = Math.floor(s);
  if (s < 60) return s + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(s % 60).padStart(2, '0') + 's';
  if (s < 86400) return Math.floor(s / 3600) + 'h' + String(Math.floor(s % 3600 / 60)).padStart(2, '0') + 'm';
  return Math.floor(s / 86400) + 'd' + Math.floor(s % 86400 / 3600) + 'h';
}

export function formatSeconds(s) {
  if (s < 1) return Math.round(s * 1000) + ' ms';
  return s.toFixed(s < 10 ? 1 : 0) + ' s';
}

export function formatTime(t) {
  const d = new Date(t);
  return d.toLocaleTimeString([], {hour12: false});
}

// quote writes a command line the way a shell would read it back.
export function quote(args) {
  return (args || []).map((a) => /^[\w@%+=:,./-]+$/.test(a) ? a : "'" + a.replace(/'/g, "'\\''") + "'").join(' ');
}

// APIError is an answer of the API with a status other than 2xx.
export class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// API talks to the primary: same origin, the session cookie (if any) sent
// by the browser, and the CSRF token on every change.
export class API {
  constructor() { this.csrf = ''; this.onUnauthorized = () => {}; }

  async call(method, path, body) {
    const opts = {method, headers: {}, credentials: 'same-origin', cache: 'no-store'};
    if (body !== undefined) {
      opts.body = JSON.stringify(body);
      opts.headers['Content-Type'] = 'application/json';
    }
    if (method !== 'GET' && this.csrf) opts.headers['X-CSRF-Token'] = this.csrf;
    let r;
    try {
      r = await fetch(path, opts);
    } catch (e) {
      throw new APIError(0, 'the primary does not answer (' + e.message + ')');
    }
    const text = await r.text();
    let doc = null;
    try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
    if (r.status === 401) this.onUnauthorized();
    if (!r.ok) throw new APIError(r.status, (doc && doc.error) || text.trim() || r.statusText);
    return doc;
  }

  get(path) { return this.call('GET', path); }
  post(path, body) { return this.call('POST', path, body === undefined ? {} : body); }
}

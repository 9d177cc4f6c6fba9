// Rendering of the dashboard's parts from the state app.js keeps. Every
// part is updated in place, so that focus and scroll survive a refresh.
import { $, el, svg, formatBytes, formatDuration, formatSeconds, formatTime, quote } from './util.js';
import { drawChart, drawSpark } from './chart.js';

const REASONS = ['crash', 'rollout', 'recycle', 'hung', 'scale'];

export function totalRestarts(r) {
  return Object.values(r || {}).reduce((a, b) => a + b, 0);
}

function reasonsText(r) {
  return REASONS.concat(Object.keys(r || {}).filter((k) => !REASONS.includes(k)))
    .filter((k) => r && r[k]).map((k) => k + ' ' + r[k]).join(', ');
}

// health says what GET /health would: ok, or why not.
function health(c, workers) {
  const disabled = workers.filter((w) => w.status === 'DISABLED').map((w) => w.slot);
  if (c.active === 0) return 'no worker is ACTIVE';
  if (disabled.length === 1) return 'slot ' + disabled[0] + ' is DISABLED';
  if (disabled.length > 1) return 'slots ' + disabled.join(', ') + ' are DISABLED';
  return '';
}

function setText(sel, main, small) {
  const dd = $(sel);
  dd.replaceChildren(String(main));
  if (small) dd.append(el('small', {}, small));
}

// count counts the workers by status, from the rows the events keep
// current rather than from the last /stats.
function count(workers) {
  const c = { workers: workers.length, active: 0, starting: 0, crashed: 0, disabled: 0 };
  for (const w of workers) {
    if (w.status === 'ACTIVE') c.active++;
    else if (w.status === 'STARTING') c.starting++;
    else if (w.status === 'CRASHED' || w.status === 'RESPAWNING') c.crashed++;
    else if (w.status === 'DISABLED') c.disabled++;
  }
  return c;
}

export function renderSummary(st, info, now) {
  const p = st.stats.primary, bounds = st.stats.cluster;
  const workers = [...st.workers.values()];
  const c = { ...bounds, ...count(workers) };
  setText('#s-workers', c.workers, `min ${c.min_workers}, max ${c.max_workers}`);
  setText('#s-active', c.active, c.starting ? c.starting + ' starting' : '');
  setText('#s-crashed', c.crashed);
  setText('#s-disabled', c.disabled);
  setText('#s-restarts', p.total_restarts, [reasonsText(p.restarts_by_reason), p.total_crashes ? 'crashes: ' + p.total_crashes : ''].filter(Boolean).join(' · '));
  const why = health(c, workers);
  setText('#s-health', why ? 'unhealthy' : 'ok', why);
  $('#s-health').className = why ? 'bad' : 'good';
  if (info) {
    const e = info.ecv;
    let state = 'in rotation', reason = '';
    if (!e.enabled) { state = 'out'; reason = 'taken out by an operator'; }
    else if (!e.healthy) { state = 'out'; reason = e.reason; }
    else if (c.active === 0) { state = 'out'; reason = 'no worker is ACTIVE'; }
    setText('#s-ecv', state, reason + (e.read_only ? (reason ? ' · ' : '') + 'read-only' : ''));
  }
  setText('#s-primary', 'pid ' + p.pid, 'up ' + formatDuration(p.uptime_seconds + (now - st.statsAt) / 1000) + (c.restart_in_progress ? ' · rolling restart' : '') + (c.shutdown_requested ? ' · stopping' : ''));
  const m = st.stats.membership, mp = $('#membership');
  mp.hidden = !m;
  if (m) {
    const held = m.index < 0 || m.threads === 0 ? 'no index' : m.threads === 1 ? 'index ' + m.index : `indices ${m.index}–${m.index + m.threads - 1}`;
    mp.replaceChildren(el('strong', {}, 'Cluster: '), `node ${m.instance} holds ${held} of ${m.total}, epoch ${m.epoch}` + (m.members ? `, ${m.members} members` : ''));
  }
}

const COLUMNS = ['Slot', 'Status', 'PID', 'Gen', 'Uptime', 'Restarts', 'CPU', 'Memory', ''];

// row returns the table row of slot, creating it in order.
function row(tbody, slot, onRestart) {
  let tr = tbody.querySelector(`tr[data-slot="${slot}"]`);
  if (tr) return tr;
  tr = el('tr', { 'data-slot': slot });
  COLUMNS.forEach((label, i) => tr.append(el(i === 0 ? 'th' : 'td', { scope: i === 0 ? 'row' : null, 'data-label': label || null, class: [2, 3, 4].includes(i) ? 'num' : null })));
  const cells = tr.children;
  cells[6].append(el('span', { class: 'usage' }, el('span'), svg('svg', { class: 'spark', 'aria-hidden': 'true' })));
  cells[7].append(el('span', { class: 'usage' }, el('span'), svg('svg', { class: 'spark', 'aria-hidden': 'true' })));
  const b = el('button', { type: 'button', class: 'small', 'aria-label': 'Restart slot ' + slot }, 'Restart');
  b.addEventListener('click', () => onRestart(slot));
  cells[8].append(b);
  const after = [...tbody.children].find((r) => Number(r.dataset.slot) > slot);
  tbody.insertBefore(tr, after || null);
  return tr;
}

export function renderRows(st, now, onRestart) {
  const tbody = $('#rows');
  for (const tr of [...tbody.children]) {
    if (!st.workers.has(Number(tr.dataset.slot))) tr.remove();
  }
  for (const w of [...st.workers.values()].sort((a, b) => a.slot - b.slot)) {
    const tr = row(tbody, w.slot, onRestart);
    const restarts = st.restarts.get(w.slot) || {};
    const cells = tr.children;
    if (tr.dataset.pid !== String(w.pid || 0) && tr.dataset.pid) {
      tr.classList.remove('flash'); void tr.offsetWidth; tr.classList.add('flash');
    }
    Object.assign(tr.dataset, { pid: w.pid || 0, gen: w.generation, status: w.status, restarts: totalRestarts(restarts) });
    cells[0].textContent = w.slot;
    cells[1].replaceChildren(el('span', { class: 'status st-' + w.status }, w.status));
    if (w.status_text) cells[1].append(el('div', { class: 'muted' }, w.status_text));
    cells[2].textContent = w.pid ? w.pid : '–';
    cells[3].textContent = w.generation;
    cells[4].textContent = w.pid && w.started_at ? formatDuration((now - st.skew - Date.parse(w.started_at)) / 1000) : '–';
    cells[5].replaceChildren(String(totalRestarts(restarts)));
    const why = reasonsText(restarts);
    if (why) cells[5].append(el('span', { class: 'reasons' }, why));
    const h = st.hist.get(w.slot);
    const opts = { now: now - st.skew, window: st.window, interval: st.interval, idle: st.idle, cls: 'c' + (w.slot % 8) };
    cells[6].querySelector('.usage > span').textContent = w.pid && w.rss_bytes ? w.cpu_percent.toFixed(1) + '%' : '–';
    drawSpark(cells[6].querySelector('svg'), h && { time: h.time, value: h.cpu, pid: h.pid }, opts);
    cells[7].querySelector('.usage > span').textContent = w.pid && w.rss_bytes ? formatBytes(w.rss_bytes) : '–';
    drawSpark(cells[7].querySelector('svg'), h && { time: h.time, value: h.rss, pid: h.pid }, opts);
  }
}

export function renderCharts(st, now) {
  const opts = { now: now - st.skew, window: st.window, interval: st.interval, idle: st.idle };
  const slots = [...st.hist.keys()].sort((a, b) => a - b);
  const series = (key) => slots.map((slot) => { const h = st.hist.get(slot); return { slot, time: h.time, value: h[key], pid: h.pid }; });
  drawChart($('#chart-cpu'), series('cpu'), { ...opts, format: (v) => v.toFixed(v < 10 && v > 0 ? 1 : 0) + '%', floor: 5 });
  drawChart($('#chart-mem'), series('rss'), { ...opts, format: formatBytes, base: 1024, floor: 1 << 20 });
  $('#legend').replaceChildren(...slots.filter((s) => st.hist.get(s).pid.some((p) => p))
    .map((s) => el('li', { class: 'c' + (s % 8) }, el('span', {}, 'slot ' + s))));
}

// eventText describes a lifecycle event and how it reads (good, warn, bad).
export function eventText(e) {
  const who = e.slot >= 0 ? `slot ${e.slot}` + (e.pid ? ` pid ${e.pid}` : '') : '';
  switch (e.type) {
    case 'started': return [`${who} started (gen ${e.gen}${e.reason ? ', ' + e.reason : ''})`, ''];
    case 'ready': return [`${who} ready`, 'good'];
    case 'exited': {
      const how = e.signal ? 'killed by ' + e.signal : 'exit status ' + e.status;
      return [`${who} exited: ${how}` + (e.crash ? ' (crash)' : e.reason ? ` (${e.reason})` : '') + (e.err ? ': ' + e.err : ''), e.crash ? 'bad' : ''];
    }
    case 'disabled': return [`slot ${e.slot} DISABLED: ${e.reason}`, 'bad'];
    case 'scaled': return [`scaled to ${e.workers} workers`, ''];
    case 'rollout_started': return [e.slot >= 0 ? `rolling restart of slot ${e.slot} started` : `rolling restart of ${e.workers} workers started`, ''];
    case 'rollout_finished': return [`rolling restart finished in ${formatSeconds(e.delay_seconds || 0)}`, 'good'];
    case 'rollout_failed': return [`rolling restart failed after ${formatSeconds(e.delay_seconds || 0)}: ${e.err}`, 'bad'];
    case 'signal': return [`primary received ${e.signal}`, ''];
    case 'shutdown': return ['every worker stopped', ''];
    case 'stopping': return [`${who} stopping` + (e.reason ? ` (${e.reason})` : ''), ''];
    case 'ready_timeout': return [`${who} not ready in time`, 'bad'];
    case 'respawn_scheduled': return [`slot ${e.slot} respawns in ${formatSeconds(e.delay_seconds || 0)}`, 'warn'];
    case 'hung': return [`${who} hung: ${e.reason}`, 'bad'];
    case 'recycle': return [`${who} recycled: ${e.reason}`, 'warn'];
    case 'autoscale': return [`autoscale to ${e.workers} workers: ${e.reason}`, 'warn'];
    case 'dropped': return [`${e.dropped} events lost (the page read too slowly)`, 'warn'];
  }
  return [`${e.type} ${who}`, ''];
}

const KEEP_EVENTS = 300;

// addEvents puts events at the top of the timeline, newest first.
export function addEvents(events) {
  const ol = $('#events');
  for (const e of events) {
    const [text, cls] = eventText(e);
    const li = el('li', { 'data-type': e.type },
      el('time', { datetime: e.time }, formatTime(e.time)), el('span', { class: cls || null }, text));
    ol.prepend(li);
  }
  while (ol.childElementCount > KEEP_EVENTS) ol.lastElementChild.remove();
}

function item(dl, term, ...value) {
  dl.append(el('dt', {}, term), el('dd', {}, ...value));
}

export function renderAbout(info) {
  const dl = $('#about');
  dl.replaceChildren();
  item(dl, 'Command', el('code', {}, quote(info.command)));
  item(dl, 'Directory', el('code', {}, info.dir || '–'));
  item(dl, 'herd', info.version + ' · primary pid ' + info.pid + ' · started ' + new Date(info.started_at).toLocaleString());
  const g = info.go;
  if (!g) {
    item(dl, 'Go build', 'not a Go program (or its build information cannot be read)');
    return;
  }
  item(dl, 'Go module', el('code', {}, g.module.path + (g.module.version ? '@' + g.module.version : '')));
  item(dl, 'Go', g.go_version + (g.path ? ' · main package ' + g.path : ''));
  const s = g.settings || {};
  if (s['vcs.revision']) {
    item(dl, 'Revision', el('code', {}, s['vcs.revision'].slice(0, 12)), (s['vcs.time'] ? ' · ' + s['vcs.time'] : '') + (s['vcs.modified'] === 'true' ? ' · modified' : ''));
  }
  const build = Object.entries(s).filter(([k]) => !k.startsWith('vcs')).map(([k, v]) => k + '=' + v).join(' ');
  if (build) item(dl, 'Build', el('code', {}, build));
  if (g.deps && g.deps.length) {
    const list = el('ul', {}, ...g.deps.map((d) => el('li', {}, d.path + ' ' + d.version)));
    item(dl, 'Dependencies', el('details', {}, el('summary', {}, g.deps.length + ' modules'), list));
  }
}

// The herd dashboard. It draws the cluster from the management API of the
// page's own origin: the /events stream moves rows at once, and GET /stats,
// /history and /info are read every few seconds and at most once a second
// after events, never more.
import { $, el, API } from './util.js';
import { LogTail } from './logs.js';
import { renderSummary, renderRows, renderCharts, addEvents, renderAbout } from './render.js';

const STATS_EVERY = 5000; // ms between reads of /stats
const INFO_EVERY = 15000; // ms between reads of /info
const MIN_GAP = 1000; // ms between two reads of /stats caused by events
const EVENT_TYPES = ['started', 'ready', 'exited', 'disabled', 'scaled', 'rollout_started', 'rollout_finished',
  'rollout_failed', 'signal', 'shutdown', 'stopping', 'ready_timeout', 'respawn_scheduled', 'hung', 'recycle',
  'autoscale', 'dropped'];
const REPLACING = ['rollout', 'recycle', 'hung']; // starts beside a worker that keeps serving until ready

const api = new API();
const st = {
  stats: null, statsAt: 0, info: null, skew: 0,
  workers: new Map(), // slot → the /stats worker, moved on by events
  pending: new Map(), // slot → the replacement started beside the current worker
  restarts: new Map(), // slot → {reason: count}
  hist: new Map(), // slot → {time, pid, cpu, rss}
  histSince: 0, // the time of the newest sample the page has
  interval: 5000, idle: 30000, window: 900000,
  seen: new Set(), // keys of the events shown
  rollout: null,
};
const logs = new LogTail($('#log-lines'));

function now() { return Date.now(); }

function render() {
  if (!st.stats) return;
  renderSummary(st, st.info, now());
  renderRows(st, now(), restartSlot);
  updateControls();
}

function updateControls() {
  const n = st.stats.cluster.workers;
  const input = $('#a-scale-n');
  if (document.activeElement !== input) input.value = n;
  for (const sel of ['#a-signal-slot', '#log-slot']) {
    const s = $(sel), want = [...st.workers.keys()].sort((a, b) => a - b);
    const have = [...s.options].slice(1).map((o) => Number(o.value));
    if (want.join() === have.join()) continue;
    const keep = s.value;
    s.replaceChildren(s.options[0], ...want.map((i) => el('option', { value: i }, 'slot ' + i)));
    s.value = [...s.options].some((o) => o.value === keep) ? keep : '-1';
    if (s.value !== keep) s.dispatchEvent(new Event('change')); // its slot was scaled away
  }
  const e = st.info && st.info.ecv;
  for (const [id, enable] of [['#a-ecv-disable', false], ['#a-ecv-enable', true]]) {
    const b = $(id);
    b.disabled = !e || e.read_only || e.enabled === enable;
    b.title = e && e.read_only ? 'read-only here (--ecv-read-only)' : '';
  }
}

// ---- reading the API

async function loadStats() {
  const doc = await api.get('/stats');
  st.stats = doc;
  st.statsAt = now();
  st.workers = new Map(doc.workers.map((w) => [w.slot, w]));
  for (const w of doc.workers) {
    if (w.started_at) { st.skew = now() - (Date.parse(w.started_at) + w.uptime_seconds * 1000); break; }
  }
  for (const [slot, p] of st.pending) {
    const w = st.workers.get(slot);
    if (!w || w.pid === p.pid || !doc.cluster.restart_in_progress) st.pending.delete(slot);
  }
  if (doc.cluster.restart_in_progress && !st.rollout) showProgress({ total: 0 });
  render();
}

// loadHistory reads the charts' samples: all of them when full (at the
// start, and after the event stream broke), else those taken since the
// last read, which the page adds to what it has.
async function loadHistory(full) {
  const since = full ? 0 : st.histSince;
  const doc = await api.get('/history' + (since ? '?since=' + since : ''));
  st.interval = doc.interval_seconds * 1000;
  st.idle = doc.idle_interval_seconds * 1000;
  st.window = doc.window_seconds * 1000;
  if (!since) st.hist = new Map();
  for (const s of doc.slots) {
    const h = st.hist.get(s.slot) || { time: [], pid: [], cpu: [], rss: [] };
    h.time.push(...(s.time || []));
    h.pid.push(...(s.pid || []));
    h.cpu.push(...(s.cpu_percent || []));
    h.rss.push(...(s.rss_bytes || []));
    st.hist.set(s.slot, h);
    if (h.time.length) st.histSince = Math.max(st.histSince, h.time[h.time.length - 1]);
    const local = st.restarts.get(s.slot) || {};
    for (const [k, v] of Object.entries(s.restarts || {})) local[k] = Math.max(local[k] || 0, v);
    st.restarts.set(s.slot, local);
  }
  const cutoff = st.histSince - st.window;
  for (const [slot, h] of st.hist) {
    const drop = h.time.findIndex((t) => t >= cutoff);
    if (drop < 0) { st.hist.delete(slot); continue; }
    for (const k of ['time', 'pid', 'cpu', 'rss']) h[k].splice(0, drop);
  }
  if (doc.events) addEvents(doc.events.filter(fresh));
  renderCharts(st, now());
  render();
}

async function loadInfo() {
  st.info = await api.get('/info');
  $('#name').textContent = st.info.name || 'herd';
  $('#version').textContent = 'herd ' + st.info.version;
  document.title = (st.info.name || 'herd') + ' · herd dashboard';
  renderAbout(st.info);
  render();
}

// guard runs a read, showing a failure as the connection's state.
function guard(p) {
  return p.catch((e) => setConn(false, e.message));
}

let statsTimer = null, lastStats = 0;

// refreshSoon reads /stats again after events: at once if the last read is
// old enough, else once MIN_GAP has passed; calls meanwhile join that read.
function refreshSoon() {
  if (statsTimer) return;
  statsTimer = setTimeout(() => {
    statsTimer = null;
    lastStats = now();
    guard(loadStats());
  }, Math.max(0, MIN_GAP - (now() - lastStats)));
}

function every(ms, f) {
  setInterval(() => { if (!document.hidden) f(); }, ms);
}

// ---- events

function key(e) { return [e.type, e.time, e.slot, e.pid, e.gen].join('|'); }

function fresh(e) {
  const k = key(e);
  if (st.seen.has(k)) return false;
  st.seen.add(k);
  if (st.seen.size > 2000) st.seen = new Set([...st.seen].slice(-1000));
  return true;
}

function onEvent(e) {
  if (!fresh(e)) return;
  addEvents([e]);
  const w = st.workers.get(e.slot);
  switch (e.type) {
    case 'started':
      if (e.gen > 1) {
        const r = st.restarts.get(e.slot) || {};
        const why = ['respawn', 'start', ''].includes(e.reason || '') ? 'crash' : e.reason;
        r[why] = (r[why] || 0) + 1;
        st.restarts.set(e.slot, r);
      }
      if (w && w.pid && REPLACING.includes(e.reason)) {
        st.pending.set(e.slot, { pid: e.pid, gen: e.gen, time: e.time });
      } else {
        st.workers.set(e.slot, { ...(w || { slot: e.slot, cpu_percent: 0, rss_bytes: 0 }), pid: e.pid, generation: e.gen, status: 'STARTING', started_at: e.time, status_text: '' });
      }
      if (st.rollout && e.reason === 'rollout') st.rollout.pids.add(e.pid);
      break;
    case 'ready': {
      const p = st.pending.get(e.slot);
      if (p && p.pid === e.pid) {
        st.pending.delete(e.slot);
        st.workers.set(e.slot, { ...w, pid: e.pid, generation: e.gen, status: 'ACTIVE', started_at: p.time });
      } else if (w && w.pid === e.pid) {
        w.status = 'ACTIVE';
      }
      if (st.rollout && st.rollout.pids.has(e.pid)) st.rollout.done++;
      break;
    }
    case 'exited':
      if (w && w.pid === e.pid) Object.assign(w, { pid: 0, status: e.crash ? 'CRASHED' : 'STOPPING' });
      break;
    case 'disabled':
      if (w) Object.assign(w, { pid: 0, status: 'DISABLED' });
      break;
    case 'rollout_started':
      showProgress({ total: e.workers });
      break;
    case 'rollout_finished':
    case 'rollout_failed':
      endProgress(e);
      guard(loadInfo());
      break;
  }
  if (st.stats) renderRows(st, now(), restartSlot);
  updateProgress();
  refreshSoon();
}

function setConn(live, why) {
  const c = $('#conn');
  c.textContent = live ? 'live' : 'reconnecting…';
  c.title = why || '';
  c.className = 'badge ' + (live ? 'live' : 'down');
}

function openEvents() {
  const es = new EventSource('/events');
  es.onopen = () => {
    setConn(true);
    guard(Promise.all([loadStats(), loadHistory(true)])); // what happened while away
  };
  es.onerror = () => setConn(false, 'the event stream broke; the browser opens it again');
  for (const t of EVENT_TYPES) {
    es.addEventListener(t, (m) => { try { onEvent(JSON.parse(m.data)); } catch (err) { console.error(err); } });
  }
  return es;
}

// ---- rollout progress

function showProgress({ total }) {
  st.rollout = { total, done: 0, pids: new Set() };
  $('#progress').hidden = false;
  updateProgress();
}

function updateProgress() {
  const r = st.rollout;
  if (!r) return;
  const bar = $('#rollout-bar');
  if (r.total > 0) {
    bar.max = r.total;
    bar.value = Math.min(r.done, r.total);
    $('#rollout-text').textContent = `${Math.min(r.done, r.total)} of ${r.total} slots replaced`;
  } else {
    bar.removeAttribute('value');
    $('#rollout-text').textContent = 'in progress';
  }
}

function endProgress(e) {
  st.rollout = null;
  $('#rollout-text').textContent = e.type === 'rollout_finished' ? 'finished' : 'failed: ' + e.err;
  setTimeout(() => { if (!st.rollout) $('#progress').hidden = true; }, 3000);
}

// ---- actions

function confirmDialog(text, ok) {
  const d = $('#confirm');
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = ok;
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true }));
}

function showError(msg) {
  const e = $('#error');
  e.textContent = msg;
  e.hidden = !msg;
}

function notice(msg) { $('#notice').textContent = msg; }

// act asks to confirm, runs the request and says how it went; a request
// the primary refuses shows the primary's error.
async function act(question, ok, run, done) {
  if (!await confirmDialog(question, ok)) return;
  showError('');
  notice(ok + '…');
  try {
    await run();
    notice(done);
  } catch (e) {
    notice('');
    showError(`${ok}: refused by the primary: ${e.message}`);
  }
  refreshSoon();
}

function restartSlot(slot) {
  act(`Restart slot ${slot}? A new worker starts, and the current one stops once the new one is ready.`, `Restart slot ${slot}`,
    () => api.post('/restart', { slot }), `slot ${slot} is being replaced`);
}

function scaleTo(n) {
  act(`Scale to ${n} workers?`, `Scale to ${n}`, () => api.post('/scale', { workers: n }), `scaled to ${n} workers`);
}

function wire() {
  $('#a-reload').addEventListener('click', () => {
    const n = st.stats ? st.stats.cluster.workers : 0;
    act(`Restart all ${n} workers one by one? Each new worker must be ready before its old one stops.`, 'Rolling restart',
      () => api.post('/restart'), 'rolling restart started');
  });
  $('#a-scale-up').addEventListener('click', () => scaleTo(st.stats.cluster.workers + 1));
  $('#a-scale-down').addEventListener('click', () => scaleTo(st.stats.cluster.workers - 1));
  $('#a-scale-set').addEventListener('click', () => {
    const n = Number($('#a-scale-n').value);
    if (!Number.isInteger(n) || n < 0) { showError('Scale: the number of workers must be a whole number'); return; }
    scaleTo(n);
  });
  $('#a-scale-n').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('#a-scale-set').click(); });
  $('#a-signal-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const sig = $('#a-signal').value, slot = Number($('#a-signal-slot').value);
    const body = slot >= 0 ? { signal: sig, slot } : { signal: sig };
    act(`Send ${sig} to ${slot >= 0 ? 'the worker of slot ' + slot : 'every worker'}?`, `Send ${sig}`,
      () => api.post('/signal', body), `${sig} sent`);
  });
  for (const [id, enable] of [['#a-ecv-disable', false], ['#a-ecv-enable', true]]) {
    $(id).addEventListener('click', () => {
      const path = st.info.ecv.path + (enable ? '/enable' : '/disable');
      act(enable ? 'Put this node back into load-balancer rotation?' : 'Take this node out of load-balancer rotation? The ECV will answer DISABLED.',
        enable ? 'Put back in rotation' : 'Take out of rotation', () => api.post(path), enable ? 'in rotation' : 'out of rotation')
        .then(() => guard(loadInfo()));
    });
  }
  const openLogs = () => logs.open(Number($('#log-slot').value), $('#log-follow').checked);
  $('#log-slot').addEventListener('change', openLogs);
  $('#log-follow').addEventListener('change', openLogs);
  $('#logout').addEventListener('click', async () => {
    try { await api.post('/ui/logout'); } catch { /* gone already */ }
    location.reload();
  });
  api.onUnauthorized = () => {
    showError('');
    $('#error').replaceChildren('Your session has ended: ', el('a', { href: '/ui/login' }, 'sign in again'), '.');
    $('#error').hidden = false;
  };
  new ResizeObserver(() => renderCharts(st, now())).observe($('#chart-cpu'));
  document.addEventListener('visibilitychange', () => { if (!document.hidden) refreshSoon(); });
  return openLogs;
}

async function main() {
  const openLogs = wire();
  try {
    const s = await api.get('/ui/session');
    api.csrf = s.csrf;
    $('#logout').hidden = s.auth !== 'session';
    await Promise.all([loadInfo(), loadStats(), loadHistory(true)]);
  } catch (e) {
    showError('The dashboard cannot read the cluster: ' + e.message);
  }
  openEvents();
  openLogs();
  every(STATS_EVERY, () => { lastStats = now(); guard(loadStats()); });
  every(Math.max(st.interval, STATS_EVERY), () => guard(loadHistory()));
  every(INFO_EVERY, () => guard(loadInfo()));
  every(1000, render); // uptimes tick without asking the primary
}

main();

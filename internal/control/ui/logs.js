// The log tail: GET /logs streams worker output as JSON lines; with
// follow it goes on until the page closes the request.
import { el } from './util.js';

const KEEP = 1000; // lines kept on the page
const RETRY = 3000; // ms before a followed stream that ended is opened again

export class LogTail {
  constructor(pre) {
    this.pre = pre;
    this.ctrl = null;
    this.retry = null;
  }

  // open shows the last lines of slot (every slot when < 0) and, with
  // follow, the lines that come after.
  open(slot, follow) {
    this.close();
    this.pre.replaceChildren();
    const q = new URLSearchParams({ lines: '200' });
    if (slot >= 0) q.set('slot', String(slot));
    if (follow) q.set('follow', '1');
    const ctrl = new AbortController();
    this.ctrl = ctrl;
    this.read('/logs?' + q, ctrl.signal)
      .catch((e) => { if (!ctrl.signal.aborted) this.note('log stream: ' + e.message); return true; })
      .then((again) => {
        // A stream that broke or ended (the primary restarted) is opened
        // again; one the primary refused (no such slot) is not.
        if (again && this.ctrl === ctrl && follow && !ctrl.signal.aborted) {
          this.retry = setTimeout(() => this.open(slot, follow), RETRY);
        }
      });
  }

  close() {
    clearTimeout(this.retry);
    if (this.ctrl) this.ctrl.abort();
    this.ctrl = null;
  }

  async read(url, signal) {
    const r = await fetch(url, { signal, credentials: 'same-origin', cache: 'no-store' });
    if (!r.ok) {
      let msg = r.statusText;
      try { msg = (await r.json()).error || msg; } catch { /* not JSON */ }
      this.note('logs: ' + msg);
      return r.status >= 500;
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      buf += dec.decode(value, { stream: true });
      const batch = [];
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line) continue;
        try { batch.push(JSON.parse(line)); } catch { /* a partial line cannot happen; skip garbage */ }
      }
      if (batch.length) this.append(batch);
    }
  }

  note(text) {
    this.append([{ slot: -1, stream: 'herd', text }]);
  }

  append(lines) {
    const pre = this.pre;
    const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
    const frag = document.createDocumentFragment();
    for (const l of lines) {
      const row = el('span', { class: 'line ' + (l.stream || ''), 'data-slot': l.slot });
      if (l.slot >= 0) row.append(el('span', { class: 'slot' }, '[' + l.slot + '] '));
      row.append(document.createTextNode(l.text + '\n'));
      frag.append(row);
    }
    pre.append(frag);
    while (pre.childElementCount > KEEP) pre.firstElementChild.remove();
    if (atEnd) pre.scrollTop = pre.scrollHeight;
  }
}

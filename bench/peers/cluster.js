// Node's cluster module running app.js, as its users write it: WORKERS
// workers on PORT, a crashed worker replaced at once, and on SIGUSR2 a
// rolling restart: one worker at a time, the new one listening before the
// old one is asked to stop. The scheduling policy comes from
// NODE_CLUSTER_SCHED_POLICY (rr or none). Worker pids go to PID_DIR.
'use strict';
const cluster = require('cluster');
const fs = require('fs');
const path = require('path');

const n = Number(process.env.WORKERS || 2);
const pidDir = process.env.PID_DIR;
cluster.setupPrimary({ exec: path.join(__dirname, 'app.js') });

let stopping = false;
const retired = new Set();

// send tells a worker to stop gracefully; one that is already gone is
// not an error.
function send(w, msg) {
  try { w.send(msg); } catch (e) { /* it exited meanwhile */ }
}

function fork() {
  const w = cluster.fork();
  w.on('error', () => { /* a send to a worker that just exited */ });
  w.on('online', () => { if (pidDir) fs.writeFileSync(path.join(pidDir, 'w' + w.id), String(w.process.pid)); });
  w.on('exit', () => {
    if (pidDir) fs.rmSync(path.join(pidDir, 'w' + w.id), { force: true });
    if (!stopping && !retired.has(w.id)) fork();
    retired.delete(w.id);
  });
  return w;
}

for (let i = 0; i < n; i++) fork();

async function roll() {
  for (const old of Object.values(cluster.workers)) {
    if (!old || retired.has(old.id)) continue;
    const fresh = fork();
    await new Promise((resolve) => fresh.once('listening', resolve));
    retired.add(old.id);
    send(old, 'shutdown');
  }
  console.log('rollout finished');
}

process.on('SIGUSR2', () => { roll(); });
process.on('SIGTERM', () => {
  stopping = true;
  for (const w of Object.values(cluster.workers)) send(w, 'shutdown');
  setTimeout(() => process.exit(0), 5000).unref();
  cluster.on('exit', () => { if (Object.keys(cluster.workers).length === 0) process.exit(0); });
});

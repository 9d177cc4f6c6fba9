// READY=1 (or any sd_notify state) for a Node worker under herd or systemd.
// Node's core has no unix datagram sockets, so a tiny helper sends it:
// systemd-notify, with --pid naming this process as the sender (herd hears
// the worker and its descendants only; as root the message carries this
// pid, otherwise the helper's, a child of this process).
const { execFileSync } = require('node:child_process');

function sdNotify(state) {
  if (!process.env.NOTIFY_SOCKET) return false; // not asked: --ready delay
  execFileSync('systemd-notify', [`--pid=${process.pid}`, state], { stdio: 'inherit' });
  return true;
}

module.exports = { sdNotify };

// The Node app of the side-by-side benchmark: the same file runs under
// herd (the socket is fd 3, LISTEN_FDS), Node's cluster module and PM2
// (PORT). With LEAK set it keeps 16 KiB per request, to be recycled for
// its memory. On SIGTERM or SIGINT it stops gracefully: it answers what
// arrives with Connection: close, closes idle connections and exits once
// none is left.
'use strict';
const http = require('http');

const leak = process.env.LEAK ? [] : null;
let closing = false;
const body = Buffer.from('hello from ' + process.pid + '\n');

const srv = http.createServer((req, res) => {
  if (leak) leak.push(Buffer.alloc(16384, 1));
  if (closing) res.setHeader('Connection', 'close');
  res.setHeader('Content-Type', 'text/plain');
  res.end(body);
});
srv.keepAliveTimeout = 30000;

if (process.env.LISTEN_FDS) {
  srv.listen({ fd: 3 });
} else {
  srv.listen(Number(process.env.PORT), '127.0.0.1');
}

// stop stops accepting and lets every connection end on its own: each
// next response says Connection: close, and a connection that stays idle
// ends at the keep-alive timeout. Closing idle connections at once (what
// server.close does by itself) races with the next request a client sends
// on them, which then fails.
function stop() {
  if (closing) return;
  closing = true;
  srv.keepAliveTimeout = 1000;
  srv.closeIdleConnections = () => {};
  srv.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.on('message', (m) => { if (m === 'shutdown') stop(); });

// The Node servers of the compatibility suite, on the socket herd passes:
//   node server.js http|express|fastify [--graceful]
// Without --graceful the server is as it comes: SIGTERM ends the process.
// With it, SIGTERM starts a stop that fails no request: every answer says
// "Connection: close" for STOP_GRACE ms, then the server closes what is left.
const { sdNotify } = require('./notify');

const [kind, ...opts] = process.argv.slice(2);
const graceful = opts.includes('--graceful');
const grace = Number(process.env.STOP_GRACE || 1000);
let stopping = false;

function listening(close) {
  if (graceful) {
    process.on('SIGTERM', () => {
      stopping = true;
      setTimeout(close, grace);
      setTimeout(() => process.exit(0), 10000).unref(); // stragglers
    });
  }
  sdNotify('READY=1');
}

if (kind === 'http') {
  const http = require('node:http');
  const server = http.createServer((req, res) => {
    if (stopping) res.setHeader('Connection', 'close');
    res.end('ok\n');
  });
  server.listen({ fd: 3 }, () => listening(() => server.close(() => process.exit(0))));
} else if (kind === 'express') {
  const express = require('express');
  const app = express();
  app.use((req, res, next) => {
    if (stopping) res.set('Connection', 'close');
    next();
  });
  app.get('/', (req, res) => res.send('ok\n'));
  const server = app.listen({ fd: 3 }, () => listening(() => server.close(() => process.exit(0))));
} else if (kind === 'fastify') {
  // return503OnClosing: false, so that requests still arriving on a
  // connection while the server closes are served, not refused.
  const app = require('fastify')({ return503OnClosing: !graceful });
  app.addHook('onRequest', async (req, reply) => {
    if (stopping) reply.header('Connection', 'close');
  });
  app.get('/', async () => 'ok\n');
  app.listen({ fd: 3 }).then(() => listening(() => app.close().then(() => process.exit(0))));
} else {
  console.error(`unknown server ${kind}: want http, express or fastify`);
  process.exit(2);
}

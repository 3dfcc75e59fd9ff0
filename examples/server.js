// A tiny Node service for examples/Dockerfile.node: no dependencies, one
// /health endpoint that tells resil-init (and you) how it is doing.
//
// Under resil-init it starts with RESIL_RESTART_COUNT, RESIL_RESTART_REASON,
// RESIL_MEMORY_LIMIT_MB and RESIL_MEMORY_TIER set, and in emergency mode also
// with EMERGENCY_MODE=true (and whatever else --emergency-env names): then it
// switches its memory-hungry parts off and reports itself "degraded".
'use strict';

const http = require('http');
const v8 = require('v8');

const truthy = (v) => /^(1|true|yes|on)$/i.test(v || '');
const port = Number(process.env.PORT || 3000);
const host = process.env.HOST || '0.0.0.0';
const emergency = truthy(process.env.EMERGENCY_MODE);
const websockets = !emergency && !truthy(process.env.DISABLE_WEBSOCKETS);
// The stand-in for a memory-hungry feature: emergency mode runs without it.
const cache = emergency ? null : new Map();

function log(msg) {
  console.log(`server.js[${process.pid}]: ${msg}`);
}

function send(res, status, body) {
  const text = typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  res.writeHead(status, {
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function health() {
  return {
    status: emergency ? 'degraded' : 'ok',
    emergency,
    pid: process.pid,
    restart_count: process.env.RESIL_RESTART_COUNT ?? null,
    restart_reason: process.env.RESIL_RESTART_REASON ?? null,
    tier: process.env.RESIL_MEMORY_TIER ?? null,
    memory_limit_mb: process.env.RESIL_MEMORY_LIMIT_MB ?? null,
    // Shows --runtime-hints at work: NODE_OPTIONS=--max-old-space-size=...
    heap_limit_mb: Math.round(v8.getHeapStatistics().heap_size_limit / 1048576),
    websockets,
    cache: cache !== null,
  };
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'only GET\n');
  if (path === '/health') return send(res, 200, health());
  if (path === '/') {
    if (cache) cache.set('hits', (cache.get('hits') || 0) + 1);
    return send(res, 200, `hello from ${process.pid}${emergency ? ' (emergency mode)' : ''}\n`);
  }
  return send(res, 404, 'not found\n');
});

// Under `resil-init --listen 3000` the port is bound once by resil-init and
// handed to every start as fd 3 (LISTEN_FDS, systemd style): connections that
// arrive while the app restarts wait in its backlog instead of being refused.
const inherited = process.env.LISTEN_FDS && Number(process.env.LISTEN_PID) === process.pid;
const where = inherited ? { fd: 3 } : { port, host };

server.listen(where, () => {
  const addr = server.address();
  log(`listening on ${inherited ? 'fd 3, ' : ''}${addr.address}:${addr.port}` +
      ` (EMERGENCY_MODE=${emergency ? 'on' : 'off'},` +
      ` RESIL_RESTART_COUNT=${process.env.RESIL_RESTART_COUNT ?? 'unset'},` +
      ` RESIL_RESTART_REASON=${process.env.RESIL_RESTART_REASON ?? 'unset'},` +
      ` RESIL_MEMORY_TIER=${process.env.RESIL_MEMORY_TIER ?? 'unset'})`);
  if (emergency) log('emergency mode: websockets disabled, cache off');
});

// resil-init forwards SIGTERM (docker stop, a pod deletion, a restart) and
// gives --grace before SIGKILL: finish in-flight requests and leave.
function shutdown(signal) {
  log(`${signal} received, shutting down gracefully`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 5000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

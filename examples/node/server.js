'use strict';
// Azure Functions custom handler in forwarding mode, Node.js standard library
// only. The host passes each HTTP request through unchanged (full path with
// the /api prefix) and sends the response back unchanged.

const http = require('node:http');

// Must match extensions.http.routePrefix in host.json.
const ROUTE_PREFIX = '/api';

const port = Number(
  process.env.FUNCTIONS_CUSTOMHANDLER_PORT || process.env.FUNCTIONS_HTTPWORKER_PORT || 8080);

function sendJSON(res, status, value) {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': body.length,
  });
  res.end(body);
}

function notFound(res) {
  res.writeHead(404, { 'Content-Type': 'text/plain' });
  res.end('not found\n');
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  const path = url.pathname;

  // Readiness: the host polls GET / until it answers.
  if (path === '/' && (req.method === 'GET' || req.method === 'HEAD')) {
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
    res.end('ok');
    return;
  }

  if (path === ROUTE_PREFIX + '/hello') {
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' });
      res.end();
      return;
    }
    const name = url.searchParams.get('name') || 'world';
    sendJSON(res, 200, {
      message: 'Hello from Node, ' + name,
      slot: process.env.WEBSITE_SLOT_NAME || '',
    });
    return;
  }

  if (path === ROUTE_PREFIX + '/echo') {
    if (req.method !== 'POST') {
      res.writeHead(405, { Allow: 'POST' });
      res.end();
      return;
    }
    // Collect raw Buffers (never strings) so binary bodies come back
    // byte for byte.
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('error', () => res.destroy());
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const headers = { 'Content-Length': body.length };
      if (req.headers['content-type'] !== undefined) {
        headers['Content-Type'] = req.headers['content-type'];
      }
      res.writeHead(200, headers);
      res.end(body);
    });
    return;
  }

  notFound(res);
});

server.listen(port, '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${port} pid ${process.pid}`);
});

// The host sends SIGTERM when it drains this process: stop accepting, let
// in-flight requests finish, then exit 0 (forced after 10 s).
function shutdown(signal) {
  console.log(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

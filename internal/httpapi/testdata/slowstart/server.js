'use strict';
// A custom handler that takes START_DELAY_MS (default 3000) to start
// listening, as a handler that loads a lot before it serves: the progress
// tests see the deploy report "starting" while it waits.
const http = require('node:http');

const port = Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT || 8080);
const delay = Number(process.env.START_DELAY_MS || 3000);

const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(req.url === '/api/hello' ? 'hello, slowly\n' : 'ok');
});

setTimeout(() => server.listen(port, '127.0.0.1'), delay);

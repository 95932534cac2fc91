'use strict';
// A timer function for the cluster timer tests whose run outlasts its
// two-second schedule: each run takes RUN_MS (3000) and then appends one
// line (its start and end in ms since the epoch, the pid) to the file named
// by the TICKS_FILE app setting, so a test sees whether two runs, on any
// nodes, overlapped.
const http = require('node:http');
const fs = require('node:fs');

const runMs = Number(process.env.RUN_MS || 3000);

http.createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (req.method !== 'POST') {
      res.end('ok');
      return;
    }
    const start = Date.now();
    setTimeout(() => {
      const line = { start, end: Date.now(), pid: process.pid };
      fs.appendFileSync(process.env.TICKS_FILE, JSON.stringify(line) + '\n');
      res.setHeader('Content-Type', 'application/json');
      res.end('{"Outputs": {}, "Logs": [], "ReturnValue": null}');
    }, runMs);
  });
}).listen(Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT), '127.0.0.1');

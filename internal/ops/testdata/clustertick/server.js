'use strict';
// A timer function for the cluster timer tests: each run appends one line
// (the occurrence's ScheduleStatus.Next, IsPastDue, the pid) to the file
// named by the TICKS_FILE app setting, 300 ms after the call and only if
// the caller is still waiting for the answer, so a run whose node stopped
// meanwhile leaves no line.
const http = require('node:http');
const fs = require('node:fs');

http.createServer((req, res) => {
  let body = '';
  req.on('data', (c) => { body += c; });
  req.on('end', () => {
    if (req.method !== 'POST') {
      res.end('ok');
      return;
    }
    let t = {};
    try { t = JSON.parse(body).Data.myTimer || {}; } catch (e) { /* empty */ }
    setTimeout(() => {
      if (res.destroyed || req.socket.destroyed) {
        return; // the node gave up the run
      }
      const line = { next: (t.ScheduleStatus || {}).Next, pastDue: t.IsPastDue, pid: process.pid };
      fs.appendFileSync(process.env.TICKS_FILE, JSON.stringify(line) + '\n');
      res.setHeader('Content-Type', 'application/json');
      res.end('{"Outputs": {}, "Logs": [], "ReturnValue": null}');
    }, 300);
  });
}).listen(Number(process.env.FUNCTIONS_CUSTOMHANDLER_PORT), '127.0.0.1');

#!/usr/bin/env node
'use strict';
require('../dist/src/cli/main.js').main(process.argv).then(
  (code) => { process.exitCode = code; },
  (err) => { process.stderr.write(`lapidary: internal error: ${err && err.stack || err}\n`); process.exitCode = 70; },
);

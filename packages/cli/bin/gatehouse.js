#!/usr/bin/env node
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'bin.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('gatehouse: not built yet: run `npm run build` (or `npm start`) first\n');
  process.exit(1);
}
require(entry)
  .program.parseAsync(process.argv)
  .catch((err) => {
    process.stderr.write(`gatehouse: ${err.message}\n`);
    process.exit(1);
  });

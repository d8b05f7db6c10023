#!/usr/bin/env node
// Launcher for the local S3 server.  The published @20minutes/s3rver@4.0.4 package
// ships lib/cli.js but not the bin/ script its package.json names, so npm links no
// executable; this file is that missing three-line entry point.
// Run as:  node --openssl-legacy-provider scripts/s3/s3rver.js -d DIR -a 127.0.0.1 -p PORT --silent
'use strict';
const program = require('@20minutes/s3rver/lib/cli');

// Exit cleanly on SIGTERM/SIGINT so `nexus down` sees a normal stop.
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));

program.parseAsync(process.argv).catch((err) => {
  console.error('s3rver: ' + (err && err.stack ? err.stack : err));
  process.exit(1);
});

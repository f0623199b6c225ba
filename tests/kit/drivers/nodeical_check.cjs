// nodeical_check FILE.ics: read one calendar with node-ical (the lenient Node parser many web
// calendars use) and print a JSON report {version, errors, warnings, counts}. Its console
// warnings and errors are collected; every VEVENT must come back with a real DTSTART, each RRULE
// must expand (node-ical hands back an rrule.js object) without throwing, and no date may be one
// node-ical silently changes.
'use strict';
const fs = require('node:fs');
const { version } = require('../node_modules/node-ical/package.json');

const report = { version, errors: [], warnings: [], counts: {} };
const log = { warn: console.warn, error: console.error };
console.warn = (...a) => report.warnings.push(a.join(' '));
console.error = (...a) => report.errors.push(a.join(' '));
let data = {};
try {
  const ical = require('node-ical');
  data = ical.sync.parseICS(fs.readFileSync(process.argv[2], 'utf8'));
} catch (e) {
  report.errors.push(`parse: ${e.message}`);
}
Object.assign(console, log);

const START = new Date(Date.UTC(2024, 0, 1));
const END = new Date(Date.UTC(2029, 0, 1));
const counts = { VEVENT: 0, VTODO: 0 };
for (const [key, c] of Object.entries(data)) {
  if (c.type === 'VTODO') counts.VTODO += 1;
  if (c.type !== 'VEVENT') continue;
  counts.VEVENT += 1;
  if (!(c.start instanceof Date) || Number.isNaN(c.start.getTime())) {
    report.errors.push(`VEVENT[${key}]: DTSTART not read as a date (${c.start})`);
  }
  if (c.end !== undefined && (!(c.end instanceof Date) || c.end < c.start)) {
    report.errors.push(`VEVENT[${key}]: DTEND missing or before DTSTART`);
  }
  if (c.rrule) {
    try {
      if (c.rrule.between(START, END, true).length === 0) {
        report.warnings.push(`VEVENT[${key}]: its RRULE gives no date in 2024-2028`);
      }
    } catch (e) {
      report.errors.push(`VEVENT[${key}]: RRULE does not expand: ${e.message}`);
    }
  }
}
// node-ical builds JS Dates from the digits, and a Date quietly rolls an impossible day over
// (Feb 30 becomes Mar 1 or 2): such a value is one node-ical silently changes, an error.
const unfolded = fs.readFileSync(process.argv[2], 'utf8').replace(/\r?\n[ \t]/g, '');
for (const match of unfolded.matchAll(/^(DTSTART|DTEND|DUE|RDATE|EXDATE)[^:\n]*:(.*)$/gm)) {
  for (const value of match[2].trim().split(',')) {
    const d = /^(\d{4})(\d{2})(\d{2})/.exec(value);
    if (!d) continue;
    const [y, m, day] = [Number(d[1]), Number(d[2]), Number(d[3])];
    const read = new Date(Date.UTC(y, m - 1, day));
    if (read.getUTCFullYear() !== y || read.getUTCMonth() !== m - 1 || read.getUTCDate() !== day) {
      const as = read.toISOString().slice(0, 10);
      report.errors.push(`${match[1]} ${value}: node-ical silently reads ${d[0]} as ${as}`);
    }
  }
}
report.counts = counts;
process.stdout.write(JSON.stringify(report) + '\n');

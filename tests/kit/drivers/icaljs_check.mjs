// icaljs_check FILE.ics: read one calendar with Mozilla's ical.js (the parser Thunderbird uses)
// as a client that shows it would, and print a JSON report {version, errors, warnings, counts}.
//
// ical.js decodes values lazily and quietly normalises out-of-range fields (Feb 30 becomes
// Mar 1 or 2), so this decodes every property value and compares each DATE / DATE-TIME with the
// text it came from, expands every VEVENT/VTODO (RRULE, RDATE, EXDATE) through 2028, and checks
// each zoned time ical.js computes (with the file's own VTIMEZONE) against the IANA zone of the
// same name (node's Intl).
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import ICAL from 'ical.js';

const require = createRequire(import.meta.url);
const { version } = require('../node_modules/ical.js/package.json');
const report = { version, errors: [], warnings: [], counts: {} };
// VEVENT occurrences are counted from 2024 through 2028, as the python checkers do.
const START = ICAL.Time.fromDateTimeString('2024-01-01T00:00:00Z');
const END = ICAL.Time.fromDateTimeString('2029-01-01T00:00:00Z');
const partialZones = new Set(); // TZIDs whose VTIMEZONE has a multi-valued RDATE

const label = (comp) => {
  const id = comp.getFirstPropertyValue('uid') || comp.getFirstPropertyValue('tzid') || '?';
  return `${comp.name.toUpperCase()}[${id}]`;
};

// The UTC offset, in seconds, the IANA database gives `zone` at `utcMillis` (null: unknown zone).
function ianaOffset(zone, utcMillis) {
  let format;
  try {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
  } catch {
    return null;
  }
  const parts = format.formatToParts(new Date(utcMillis));
  const f = Object.fromEntries(parts.map((p) => [p.type, p.value]));
  return (Date.UTC(f.year, f.month - 1, f.day, f.hour, f.minute, f.second) - utcMillis) / 1000;
}

// A zoned ICAL.Time whose instant, as ical.js computes it, differs from the IANA zone's.
function zoneMismatch(time, tzid) {
  if (!tzid || !ICAL.TimezoneService.has(tzid) || time.isDate) return null;
  const local = Date.UTC(time.year, time.month - 1, time.day, time.hour, time.minute, time.second);
  const first = ianaOffset(tzid, local);
  if (first === null) return null;
  const utc = local - 1000 * ianaOffset(tzid, local - 1000 * first);
  const mine = time.toUnixTime() * 1000;
  return mine === utc ? null : `${time} ${tzid} is ${new Date(mine).toISOString()} to ical.js `
    + `but ${new Date(utc).toISOString()} in the IANA zone`;
}

// An error, unless ical.js's known RDATE limitation explains it (the file itself is valid).
function reportMismatch(where, mismatch, tzid) {
  if (!partialZones.has(tzid)) {
    report.errors.push(`${where}: ${mismatch}`);
  } else {
    report.warnings.push(`${where}: ${mismatch} (the multi-valued RDATE of VTIMEZONE[${tzid}])`);
  }
}

function checkProperties(comp) {
  for (const prop of comp.getAllProperties()) {
    const where = `${label(comp)} ${prop.name.toUpperCase()}`;
    try {
      const raw = prop.toJSON().slice(3);
      prop.getValues().forEach((value, i) => {
        if (value instanceof ICAL.Time) {
          if ([value.year, value.month, value.day, value.hour].some(Number.isNaN)) {
            report.errors.push(`${where}: ${raw[i]} decodes to an invalid time`);
          } else if (String(value) !== raw[i]) {
            report.errors.push(`${where}: ical.js silently reads ${raw[i]} as ${value}`);
          }
          const mismatch = zoneMismatch(value, prop.getParameter('tzid'));
          if (mismatch) reportMismatch(where, mismatch, prop.getParameter('tzid'));
        } else if (value instanceof ICAL.Recur && value.until && typeof raw[i].until === 'string'
                   && String(value.until) !== raw[i].until) {
          report.errors.push(`${where}: ical.js silently reads UNTIL ${raw[i].until} as `
            + `${value.until}`);
        }
      });
    } catch (e) {
      report.errors.push(`${where}: ${e.message}`);
    }
    const values = prop.name === 'rdate' ? prop.getValues() : [];
    if (values.length > 1 && ['standard', 'daylight'].includes(comp.name)) {
      report.warnings.push(`${label(comp.parent)} ${comp.name.toUpperCase()} RDATE has `
        + `${values.length} values; ical.js's Timezone reads only the first (${values[0]}) `
        + `and misses the transitions at ${values.slice(1).join(', ')}`);
    }
  }
}

function expand(comp) {
  const dtstart = comp.getFirstPropertyValue('dtstart');
  if (!dtstart) return;
  const tzid = comp.getFirstProperty('dtstart').getParameter('tzid');
  const it = new ICAL.RecurExpansion({ component: comp, dtstart });
  const wrong = [];
  let n = 0;
  let inRange = 0;
  let first = null;
  for (let next = it.next(); next && next.compare(END) < 0 && n < 5000; next = it.next()) {
    first ??= next.clone();
    n += 1;
    if (next.compare(START) >= 0) inRange += 1;
    const mismatch = zoneMismatch(next, tzid);
    if (mismatch) wrong.push(mismatch);
  }
  if (wrong.length) {
    reportMismatch(`${label(comp)} ${wrong.length} of ${n} occurrences, first`, wrong[0], tzid);
  }
  const excluded = comp.getAllProperties('exdate').flatMap((e) => e.getValues().map(String));
  if (first && first.compare(dtstart) !== 0 && !excluded.includes(String(dtstart))) {
    report.warnings.push(`${label(comp)}: ical.js leaves out the DTSTART instance (${dtstart}), `
      + `which RFC 5545 counts as the first; its first is ${first} (also list DTSTART as an RDATE)`);
  }
  if (comp.name === 'vevent') report.counts.occurrences += inRange;
  if (n === 0 && comp.hasProperty('rrule')) {
    report.warnings.push(`${label(comp)}: the RRULE has no occurrence before 2029`);
  }
}

function walk(comp) {
  const name = comp.name.toUpperCase();
  if (name in report.counts) report.counts[name] += 1;
  checkProperties(comp);
  if (name === 'VEVENT' || name === 'VTODO') {
    for (const prop of comp.getAllProperties()) {
      const tzid = prop.getParameter('tzid');
      if (tzid && !ICAL.TimezoneService.has(tzid)) {
        report.errors.push(`${label(comp)} ${prop.name.toUpperCase()}: no VTIMEZONE for `
          + `${tzid}, so ical.js reads a floating time`);
      }
    }
    try {
      expand(comp);
    } catch (e) {
      report.errors.push(`${label(comp)} recurrence: ${e.message}`);
    }
  }
  for (const sub of comp.getAllSubcomponents()) walk(sub);
}

try {
  const jcal = ICAL.parse(readFileSync(process.argv[2], 'utf8'));
  const roots = typeof jcal[0] === 'string' ? [jcal] : jcal;
  report.counts = { VEVENT: 0, VTODO: 0, VALARM: 0, occurrences: 0 };
  for (const root of roots.map((j) => new ICAL.Component(j))) {
    if (root.name !== 'vcalendar') {
      report.errors.push(`top-level ${root.name.toUpperCase()}, not VCALENDAR`);
    }
    for (const vtimezone of root.getAllSubcomponents('vtimezone')) {
      ICAL.TimezoneService.register(vtimezone);
      const rdates = vtimezone.getAllSubcomponents().flatMap((c) => c.getAllProperties('rdate'));
      if (rdates.some((rdate) => rdate.getValues().length > 1)) {
        partialZones.add(vtimezone.getFirstPropertyValue('tzid'));
      }
    }
    walk(root);
  }
} catch (e) {
  report.errors.push(`parse failed: ${e.message}`);
}
process.stdout.write(`${JSON.stringify(report)}\n`);

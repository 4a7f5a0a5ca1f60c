import type ICAL from 'ical.js';

/** ical.js, loaded at the first invitation rather than at start (docs/operations.md, "Memory at start-up"). */
let library: Promise<typeof ICAL> | undefined;
const loadIcal = (): Promise<typeof ICAL> => (library ??= import('ical.js').then((module) => module.default));

/** Events of one invitation read at most (a recurring series' exceptions come as more VEVENTs of one UID). */
const MAX_EVENTS = 5;

/**
 * What a calendar invitation says (`text/calendar` or `application/ics`, RFC 5545 iCalendar, parsed by ical.js), as
 * the text of a request: for each VEVENT (at most MAX_EVENTS) its SUMMARY, DTSTART (as written, with its TZID when
 * given), LOCATION and DESCRIPTION (RFC 5545 §3.8.1.5; the parser unfolds lines and undoes `\,` `\;` `\n`). A mail
 * whose only content is an invitation (a meeting request sent to the mailbox) carries its request there.
 * Resolves to undefined for data ical.js cannot parse, or with none of these fields.
 */
export async function calendarText(data: string): Promise<string | undefined> {
  if (!/BEGIN:VCALENDAR/i.test(data)) return undefined;
  const ical = await loadIcal();
  let calendar: ICAL.Component;
  try {
    calendar = new ical.Component(ical.parse(data));
  } catch {
    return undefined; // not iCalendar, or damaged: nothing we can read
  }
  const events = calendar
    .getAllSubcomponents('vevent')
    .slice(0, MAX_EVENTS)
    .map(eventText)
    .filter((text) => text !== '');
  return events.length ? events.join('\n\n') : undefined;
}

/**
 * One VEVENT's fields, one per line (`Тема:`, `Когда:`, `Где:`), then its description; a field whose value ical.js
 * cannot parse is left out (never an error: the mail is still read).
 */
function eventText(event: ICAL.Component): string {
  const text = (name: string): string | undefined => {
    let written: string | undefined;
    try {
      // Values are parsed when read: a damaged one (`DTSTART:notadate`) throws, and counts as absent.
      const value = event.getFirstPropertyValue(name);
      written = typeof value === 'string' ? value : value?.toString();
    } catch {
      return undefined;
    }
    return written?.trim() ? written.trim() : undefined;
  };
  const start = event.getFirstProperty('dtstart');
  const zone = start?.getParameter('tzid');
  const [summary, when, location] = [text('summary'), text('dtstart'), text('location')];
  const lines = [
    summary && `Тема: ${summary}`,
    when && `Когда: ${when}${typeof zone === 'string' ? ` (${zone})` : ''}`,
    location && `Где: ${location}`,
    text('description'),
  ];
  return lines.filter(Boolean).join('\n');
}

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import iconv from 'iconv-lite';
import { rtfText } from './tnef-text.js';

/**
 * An Outlook item saved as a file (`.msg`, [MS-OXMSG]: the MAPI properties of a mail in a CFB/OLE2 container) and
 * attached by a client that does not turn it into a message/rfc822 part (webmail, Thunderbird, a phone): read by
 * @kenjiuno/msgreader (the maintained reader of .msg in JavaScript; its author's @kenjiuno/decompressrtf already reads
 * TNEF's compressed RTF here). The reader follows the container's sector chains without a bound, so a damaged or
 * hostile file could loop or fill the heap: it runs in a worker thread with its own small heap
 * (MSG_WORKER_HEAP_MB) and a deadline (MSG_READ_TIMEOUT_MS), and is terminated past them. The text is taken, in
 * this order, from PR_BODY, PR_BODY_HTML / PR_HTML, or the compressed RTF body (tnef-text.ts rtfText).
 */

/** The mail an Outlook .msg holds: its author (`Name <address>`), subject, date and body (text or HTML). */
export type OutlookMsg = { from?: string; subject?: string; date?: string; text?: string; html?: string };

/** Bytes of a .msg read at most: an Outlook mail with its text is far smaller; a larger one is named unreadable. */
export const MAX_MSG_BYTES = 5_000_000;
/** How long (ms) the reader may take over one file. */
export const MSG_READ_TIMEOUT_MS = 3000;
/** The reader's heap (MB): bounds what a hostile container can make it allocate. */
const MSG_WORKER_HEAP_MB = 64;

// The worker's code: loads the reader by the path resolved here (so it works from src/ and dist/ alike) and posts
// back the few properties used, or null.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
let out = null;
try {
  const mod = require(workerData.reader);
  const MsgReader = mod.default || mod;
  const d = new MsgReader(workerData.bytes).getFileData();
  if (!d.error) {
    out = {
      name: d.senderName, address: d.senderSmtpAddress || d.sentRepresentingSmtpAddress || d.senderEmail,
      subject: d.subject, date: d.clientSubmitTime || d.messageDeliveryTime, body: d.body, bodyHtml: d.bodyHtml,
      html: d.html ? Buffer.from(d.html) : undefined, codepage: d.internetCodepage,
      rtf: d.compressedRtf ? Buffer.from(d.compressedRtf) : undefined,
    };
  }
} catch {}
parentPort.postMessage(out);
`;

/** What the worker posts back: msgreader's fields, as read. */
type MsgFields = {
  name?: string;
  address?: string;
  subject?: string;
  date?: string;
  body?: string;
  bodyHtml?: string;
  html?: Uint8Array;
  codepage?: number;
  rtf?: Uint8Array;
};

/** msgreader's fields in the worker, or undefined when it failed, ran past the deadline or out of its heap. */
function readInWorker(bytes: Buffer): Promise<MsgFields | undefined> {
  const reader = createRequire(import.meta.url).resolve('@kenjiuno/msgreader');
  return new Promise((resolve) => {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { reader, bytes },
      resourceLimits: { maxOldGenerationSizeMb: MSG_WORKER_HEAP_MB, maxYoungGenerationSizeMb: 16 },
    });
    const done = (fields: MsgFields | undefined) => {
      clearTimeout(timer);
      void worker.terminate();
      resolve(fields);
    };
    const timer = setTimeout(() => done(undefined), MSG_READ_TIMEOUT_MS);
    worker.once('message', (fields: MsgFields | null) => done(fields ?? undefined));
    worker.once('error', () => done(undefined));
    worker.once('exit', () => done(undefined));
  });
}

/** PR_HTML's bytes in the item's code page (PR_INTERNET_CPID; UTF-8 when 65001 or unknown to iconv-lite). */
function htmlOf(bytes: Uint8Array, codepage: number | undefined): string {
  const name = codepage && codepage !== 65001 ? `cp${codepage}` : 'utf-8';
  return iconv.decode(Buffer.from(bytes), iconv.encodingExists(name) ? name : 'utf-8');
}

/** The body of the read fields: plain text first, then HTML, then the compressed RTF's text or HTML. */
function bodyOf(f: MsgFields): { text?: string; html?: string } | undefined {
  if (f.body?.trim()) return { text: f.body };
  if (f.bodyHtml?.trim()) return { html: f.bodyHtml };
  if (f.html?.length) return { html: htmlOf(f.html, f.codepage) };
  return f.rtf?.length ? rtfText(Buffer.from(f.rtf)) : undefined;
}

/**
 * The mail inside an Outlook `.msg` file (`bytes`, at most MAX_MSG_BYTES): its author as `Name <address>` (an
 * Exchange-internal address without `@` is left out), subject, submit date (as msgreader writes it) and body;
 * undefined when the file cannot be read (not a .msg, damaged, too large, past the deadline) or holds no body.
 */
export async function outlookMsgOf(bytes: Buffer): Promise<OutlookMsg | undefined> {
  if (bytes.length > MAX_MSG_BYTES) return undefined;
  const fields = await readInWorker(bytes);
  const body = fields && bodyOf(fields);
  if (!fields || !body) return undefined;
  const address = fields.address?.includes('@') ? fields.address : undefined;
  const name = fields.name?.trim();
  const from = address ? (name && name !== address ? `${name} <${address}>` : address) : name || undefined;
  return { from, subject: fields.subject?.trim() || undefined, date: fields.date, ...body };
}

/** An Outlook item file: its MIME type (application/vnd.ms-outlook, x-msg) or a `.msg` name. */
export const isOutlookMsg = (type: string, name: string): boolean =>
  type === 'application/vnd.ms-outlook' || type === 'application/x-msg' || /\.msg$/i.test(name);

import { decompressRTF } from '@kenjiuno/decompressrtf';
import iconv from 'iconv-lite';
import { Tokenize, deEncapsulateSync } from 'rtf-stream-parser';
import { ToPlainText } from 'rtf-stream-parser/dist/src/ToPlainText.js';

/**
 * A file inside a TNEF stream (its attachment-level attributes, [MS-OXTNEF]): `name` is
 * PR_ATTACH_LONG_FILENAME, else attAttachTitle, else PR_ATTACH_FILENAME (8.3), else PR_DISPLAY_NAME (an embedded
 * message's subject), else `unnamed`; at most 200 characters, control characters dropped. `inline`: shown inside the
 * HTML body (PR_ATTACHMENT_HIDDEN or a PR_ATTACH_CONTENT_ID), like multipart/related's pictures; `message`: an
 * embedded Outlook item (PR_ATTACH_METHOD 5, ATTACH_EMBEDDED_MSG), which is not read.
 */
export type TnefAttachment = { name: string; inline: boolean; message: boolean };

/**
 * What a TNEF stream holds: its message text (`text`, or `html` to convert), the files attached inside it (at most
 * MAX_TNEF_ATTACHMENTS, in stream order), and `bodyUnreadable` when a body was there but could not be read (damaged
 * compressed RTF, or an attribute stream that ends in a length past its end before any body was read). An empty body
 * (RTF with no text) is not unreadable: the mail says nothing in it, like MIME mail with an empty text part.
 */
export type TnefContent = {
  text?: string;
  html?: string;
  attachments: TnefAttachment[];
  bodyUnreadable: boolean;
};

/** How many files inside one TNEF stream are named at most (a hostile stream may declare thousands of tiny ones). */
export const MAX_TNEF_ATTACHMENTS = 100;

/** Whether `data` starts with the TNEF signature (0x223E9F78 little-endian at offset 0, [MS-OXTNEF] 2.1.3.1). */
export function isTnefData(data: Buffer): boolean {
  return data.length >= 6 && data.readUInt32LE(0) === TNEF_SIGNATURE;
}

/**
 * What an Outlook TNEF attachment (`winmail.dat`, [MS-OXTNEF]) holds (TnefContent), or undefined when `data` is no
 * TNEF stream (no signature). A bounded walk over the attributes: every length is checked against the buffer, so
 * damaged data ends the walk instead of looping. (node-tnef, the TNEF package on npm, loops forever on the damaged
 * winmail.dat of the field cases, and reads no compressed RTF, so it is not used; no other TNEF reader is a
 * dependency.) The message text is read, in this order, from PR_BODY (plain text), attBody, PR_BODY_HTML,
 * PR_RTF_COMPRESSED with HTML or text encapsulated in RTF (decompressed by @kenjiuno/decompressrtf, de-encapsulated
 * by rtf-stream-parser, as Outlook writes it), or Outlook's native "Rich Text" body (RTF that encapsulates nothing:
 * its text by rtf-stream-parser's ToPlainText). The attachments' names come from their attAttachTitle and
 * attAttachment (MAPI properties) attributes; their data is not read.
 */
export function tnefContent(data: Buffer): TnefContent | undefined {
  if (!isTnefData(data)) return undefined;
  const found = readAttributes(data);
  const { damaged, ...body } = bodyOf(found);
  return { ...body, attachments: found.attachments.map(attachmentOf), bodyUnreadable: damaged };
}

/**
 * The message text the walk found (PR_BODY, attBody, PR_BODY_HTML, PR_RTF_COMPRESSED, in this order); `damaged` when
 * there is none because the compressed RTF could not be read or the stream broke off before any body.
 */
function bodyOf(found: TnefFound): { text?: string; html?: string; damaged: boolean } {
  const plain = found.body ?? (found.attBody ? decodeCodepage(found.attBody, found.codepage) : undefined);
  if (plain?.trim()) return { text: plain, damaged: false };
  if (found.html?.trim()) return { html: found.html, damaged: false };
  if (found.rtf) {
    const { damaged, ...rtf } = rtfText(found.rtf);
    return { ...rtf, damaged: !!damaged };
  }
  const noBody = found.body === undefined && !found.attBody && found.html === undefined;
  return { damaged: found.damaged && noBody };
}

/** One attachment's name and kind from what the walk gathered (TnefAttachment). */
function attachmentOf(a: AttachmentFound): TnefAttachment {
  const raw = a.longName ?? a.title ?? a.shortName ?? a.displayName ?? '';
  const name =
    raw
      .replace(/\p{Cc}+/gu, ' ')
      .trim()
      .slice(0, 200) || 'unnamed';
  return { name, inline: !!(a.hidden || a.contentId), message: a.method === ATTACH_EMBEDDED_MSG };
}

/** What the walk found about one attachment (attachment-level attributes after its attAttachRenddata). */
type AttachmentFound = {
  title?: string;
  longName?: string;
  shortName?: string;
  displayName?: string;
  method?: number;
  hidden?: boolean;
  contentId?: boolean;
};

/**
 * What the walk found: the code page (attOemCodepage, default 1252), the candidate bodies, the attachments, and
 * whether the stream ended in damage (a length past its end).
 */
type TnefFound = {
  codepage: number;
  body?: string;
  attBody?: Buffer;
  html?: string;
  rtf?: Buffer;
  attachments: AttachmentFound[];
  /** The attachment whose attributes come now (the last attAttachRenddata's), undefined past the limit. */
  current?: AttachmentFound;
  damaged: boolean;
};

/** 8-bit text in the message's code page (cp1252 when iconv has no such table), trailing NULs dropped. */
function decodeCodepage(bytes: Buffer, codepage: number): string {
  return iconv.decode(bytes, iconv.encodingExists(`cp${codepage}`) ? `cp${codepage}` : 'cp1252').replace(/\0+$/, '');
}

/**
 * The TNEF attribute stream after the 6-byte header ([MS-OXTNEF] 2.1.3): level (1 byte), id (4), length (4),
 * value, 16-bit checksum. Message-level attributes give the code page and the body; attachment-level ones the
 * attachments' names (each attachment starts with its attAttachRenddata). A length past the
 * end (damaged data) ends it.
 */
function readAttributes(data: Buffer): TnefFound {
  const found: TnefFound = { codepage: 1252, attachments: [], damaged: false };
  let offset = 6;
  while (offset + 9 <= data.length) {
    const level = data.readUInt8(offset);
    const id = data.readUInt32LE(offset + 1);
    const length = data.readUInt32LE(offset + 5);
    const start = offset + 9;
    if (start + length + 2 > data.length) {
      found.damaged = true; // a length past the end
      break;
    }
    offset = start + length + 2; // value + 16-bit checksum
    const value = data.subarray(start, start + length);
    if (level === LEVEL_MESSAGE) readMessageAttribute(id, value, found);
    else if (level === LEVEL_ATTACHMENT) readAttachmentAttribute(id, value, found);
  }
  return found;
}

/** One message-level attribute: the code page, attBody, or attMsgProps (the MAPI properties). */
function readMessageAttribute(id: number, value: Buffer, found: TnefFound): void {
  if (id === ATT_OEM_CODEPAGE && value.length >= 4) found.codepage = value.readUInt32LE(0) || found.codepage;
  else if ((id & 0xffff) === ATT_BODY) found.attBody = value;
  else if (id === ATT_MSG_PROPS)
    readMapiProperties(value, (pid, base, bytes) => keepBodyProperty(pid, base, bytes, found));
}

/**
 * One attachment-level attribute: attAttachRenddata starts an attachment (up to MAX_TNEF_ATTACHMENTS), then its
 * attAttachTitle (8-bit, the message's code page) and attAttachment (its MAPI properties) name it.
 */
function readAttachmentAttribute(id: number, value: Buffer, found: TnefFound): void {
  if (id === ATT_ATTACH_RENDDATA) {
    found.current = undefined; // past MAX_TNEF_ATTACHMENTS, the attachment's attributes are not read
    if (found.attachments.length < MAX_TNEF_ATTACHMENTS) found.attachments.push((found.current = {}));
    return;
  }
  const current = found.current;
  if (!current) return;
  if (id === ATT_ATTACH_TITLE) current.title = decodeCodepage(value, found.codepage) || undefined;
  else if (id === ATT_ATTACHMENT)
    readMapiProperties(value, (pid, base, bytes) => keepAttachmentProperty(pid, base, bytes, current, found.codepage));
}

/** The text properties of an attachment that name it, or say it is shown inside the HTML body (a Content-ID). */
const ATTACHMENT_TEXT_FIELDS: Record<number, 'longName' | 'shortName' | 'displayName' | 'contentId'> = {
  [0x3707]: 'longName', // PR_ATTACH_LONG_FILENAME
  [0x3704]: 'shortName', // PR_ATTACH_FILENAME
  [0x3001]: 'displayName', // PR_DISPLAY_NAME
  [0x3712]: 'contentId', // PR_ATTACH_CONTENT_ID
};

/** An attachment's name and kind from its MAPI properties (PR_ATTACH_LONG_FILENAME and the others, AttachmentFound). */
function keepAttachmentProperty(
  id: number,
  base: number,
  bytes: Buffer,
  into: AttachmentFound,
  codepage: number,
): void {
  const field = ATTACHMENT_TEXT_FIELDS[id];
  if (field && (base === PT_UNICODE || base === PT_STRING8)) {
    const text = base === PT_UNICODE ? bytes.toString('utf16le').replace(/\0+$/, '') : decodeCodepage(bytes, codepage);
    if (field === 'contentId') into.contentId = !!text.trim();
    else into[field] = text || undefined;
  } else if (id === PR_ATTACH_METHOD && base === PT_LONG && bytes.length >= 4) into.method = bytes.readUInt32LE(0);
  else if (id === PR_ATTACHMENT_HIDDEN && base === PT_BOOLEAN && bytes.length >= 2)
    into.hidden = bytes.readUInt16LE(0) !== 0;
}

/**
 * PR_RTF_COMPRESSED: decompressed ([MS-OXRTFCP]) and de-encapsulated ([MS-OXRTFEX]) into HTML or text; neither
 * for RTF with no text in it, `damaged` for RTF that cannot be decompressed or parsed.
 */
function rtfText(compressed: Buffer): { text?: string; html?: string; damaged?: boolean } {
  let rtf: Buffer;
  try {
    rtf = Buffer.from(decompressRTF([...compressed]));
  } catch {
    return { damaged: true }; // damaged compressed RTF: nothing we can read
  }
  try {
    const result = deEncapsulateSync(rtf, { decode, mode: 'either' });
    const out = typeof result.text === 'string' ? result.text : result.text.toString('utf8');
    if (out.trim()) return result.mode === 'html' ? { html: out } : { text: out };
  } catch {
    // RTF that is not encapsulated HTML/text (Outlook's "Rich Text" format), or damaged: read as plain RTF below
  }
  const plain = rtfPlainText(rtf);
  if (plain === undefined) return { damaged: true };
  return plain.trim() ? { text: plain } : {};
}

const decode = (buf: Buffer, enc: string) => iconv.decode(buf, enc);

/**
 * RTF destinations ([MS-RTF] 1.9.1) that are not the message's text but are not marked `\*` (ignorable) either:
 * rtf-stream-parser's ToPlainText skips only the font and colour tables, the stylesheet and `\*` groups.
 */
const NON_TEXT_DESTINATIONS = [
  'pict',
  'object',
  'info',
  'header',
  'headerl',
  'headerr',
  'headerf',
  'footer',
  'footerl',
  'footerr',
  'footerf',
  'footnote',
  'annotation',
  'revtbl',
  'filetbl',
  'xe',
  'tc',
];

/**
 * The text of RTF that encapsulates nothing (Outlook's native "Rich Text" body, [MS-OXRTFEX] 2.1.3.1 "plain RTF"):
 * rtf-stream-parser's tokenizer and ToPlainText (destinations such as the font table skipped, `\'xx` read in the
 * document's `\ansicpg`, `\uN` as Unicode, `\par`/`\line` as line breaks), with table cells (`\cell`) separated
 * by a space and rows (`\row`) ended by a line break. Undefined for damaged RTF.
 */
function rtfPlainText(rtf: Buffer): string | undefined {
  try {
    const tokens = new Tokenize();
    const toText = new ToPlainText({ decode });
    toText._featureHandlers.push({
      // Inside a picture, an embedded object, the document info, headers and footers: no text of the message.
      outputDataFilter: (g) => {
        const inside = g._state.allDestinations;
        if (inside && NON_TEXT_DESTINATIONS.some((d) => inside[d])) return true;
      },
      controlHandlers: {
        cell: (g) => (g._pushOutput(' '), true),
        row: (g) => (g._pushOutput('\r\n'), true),
      },
    });
    const chunks: string[] = [];
    const onError = (err?: Error | null) => {
      if (err) throw err;
    };
    tokens.push = (token: unknown) => (toText._transform(token as never, 'utf8', onError), true);
    toText.push = (piece: unknown) => (chunks.push(String(piece)), true);
    tokens._transform(rtf, 'utf8', onError);
    tokens._flush(onError);
    toText._flush(onError);
    return chunks.join('').replace(/\r\n?/g, '\n');
  } catch {
    return undefined;
  }
}

const TNEF_SIGNATURE = 0x223e9f78;
const LEVEL_MESSAGE = 1;
const LEVEL_ATTACHMENT = 2;
const ATT_ATTACH_RENDDATA = 0x00069002;
const ATT_ATTACH_TITLE = 0x00018010;
const ATT_ATTACHMENT = 0x00069005;
const PR_ATTACH_METHOD = 0x3705;
const PR_ATTACHMENT_HIDDEN = 0x7ffe;
/** PR_ATTACH_METHOD's value for an embedded message ([MS-OXCMSG] PidTagAttachMethod, afEmbeddedMessage). */
const ATTACH_EMBEDDED_MSG = 5;
const PT_BOOLEAN = 0x000b;
const PT_LONG = 0x0003;
const ATT_BODY = 0x800c;
const ATT_OEM_CODEPAGE = 0x00069007;
const ATT_MSG_PROPS = 0x00069003;
const PR_BODY = 0x1000;
const PR_RTF_COMPRESSED = 0x1009;
const PR_BODY_HTML = 0x1013;
const PT_STRING8 = 0x001e;
const PT_UNICODE = 0x001f;
const PT_BINARY = 0x0102;
const PT_OBJECT = 0x000d;
const MV_FLAG = 0x1000;
// Byte sizes of fixed-length MAPI property types ([MS-OXCDATA] 2.11.1); 2-byte values are padded to 4.
const FIXED_SIZE: Record<number, number> = {
  0x0002: 4,
  0x0003: 4,
  0x0004: 4,
  0x0005: 8,
  0x0006: 8,
  0x0007: 8,
  0x000a: 4,
  0x000b: 4,
  0x0014: 8,
  0x0040: 8,
  0x0048: 16,
};

const pad4 = (n: number) => (n + 3) & ~3;

const VARIABLE_TYPES = new Set([PT_STRING8, PT_UNICODE, PT_BINARY, PT_OBJECT]);

/** A read position in attMsgProps. Every read is checked against the end: the step returns false past it. */
type Cursor = { data: Buffer; p: number };

/** A named property's name ([MS-OXTNEF] 2.1.3.5): GUID, kind, then a 4-byte id or a length-prefixed name. */
function skipPropertyName(c: Cursor): boolean {
  if (c.p + 20 > c.data.length) return false;
  const kind = c.data.readUInt32LE(c.p + 16);
  c.p += 20;
  if (c.p + 4 > c.data.length) return false;
  c.p += kind === 0 ? 4 : 4 + pad4(c.data.readUInt32LE(c.p));
  return true;
}

/** Skips one fixed-length value of type `base` (FIXED_SIZE); false for a type it cannot size or past the end. */
function skipFixedValue(c: Cursor, base: number): boolean {
  const size = FIXED_SIZE[base];
  if (size === undefined || c.p + size > c.data.length) return false;
  c.p += size;
  return true;
}

/** One variable-length value: a 4-byte length, the bytes, padding to 4; undefined past the end. */
function readVariableValue(c: Cursor): Buffer | undefined {
  if (c.p + 4 > c.data.length) return undefined;
  const length = c.data.readUInt32LE(c.p);
  c.p += 4;
  if (c.p + length > c.data.length) return undefined;
  const bytes = c.data.subarray(c.p, c.p + length);
  c.p += pad4(length);
  return bytes;
}

/** Keeps a body property's first value: PR_BODY (text), PR_BODY_HTML, PR_RTF_COMPRESSED. */
function keepBodyProperty(id: number, base: number, bytes: Buffer, found: TnefFound): void {
  const text = () =>
    base === PT_UNICODE ? bytes.toString('utf16le').replace(/\0+$/, '') : decodeCodepage(bytes, found.codepage);
  if (id === PR_BODY && (base === PT_UNICODE || base === PT_STRING8)) found.body = text();
  else if (id === PR_BODY_HTML) found.html = base === PT_BINARY ? htmlBytesText(bytes, found.codepage) : text();
  else if (id === PR_RTF_COMPRESSED && base === PT_BINARY) found.rtf = bytes;
}

/**
 * PR_BODY_HTML as bytes (PT_BINARY): Outlook stores the HTML in its own code page (PR_INTERNET_CPID), which the
 * HTML's `<meta charset>` names. Read in that charset; else as UTF-8 when the bytes are valid UTF-8; else in the
 * message's code page (attOemCodepage).
 */
function htmlBytesText(bytes: Buffer, codepage: number): string {
  const head = bytes.subarray(0, 4096).toString('latin1');
  const meta = /<meta\b[^>]*charset\s*=\s*["']?([\w.:-]+)/i.exec(head)?.[1];
  if (meta && iconv.encodingExists(meta)) return iconv.decode(bytes, meta).replace(/\0+$/, '');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/\0+$/, '');
  } catch {
    return decodeCodepage(bytes, codepage);
  }
}

/** What a property walk does with each property's (first) value: its id, base type and bytes. */
type PropertyValue = (id: number, base: number, bytes: Buffer) => void;

/** Reads one fixed-length value of type `base` (FIXED_SIZE); undefined for a type it cannot size or past the end. */
function readFixedValue(c: Cursor, base: number): Buffer | undefined {
  const start = c.p;
  return skipFixedValue(c, base) ? c.data.subarray(start, c.p) : undefined;
}

/**
 * One property: type, id, (a name), then its value or a count of values, the first of which goes to `keep`; false
 * when it cannot be read whole.
 */
function readProperty(c: Cursor, keep: PropertyValue): boolean {
  const type = c.data.readUInt16LE(c.p);
  const id = c.data.readUInt16LE(c.p + 2);
  c.p += 4;
  if (id >= 0x8000 && !skipPropertyName(c)) return false;
  const base = type & ~MV_FLAG;
  const variable = VARIABLE_TYPES.has(base);
  if (!variable && !(type & MV_FLAG)) {
    const bytes = readFixedValue(c, base);
    if (bytes) keep(id, base, bytes);
    return !!bytes;
  }
  if (c.p + 4 > c.data.length) return false;
  const values = c.data.readUInt32LE(c.p);
  c.p += 4;
  for (let v = 0; v < values; v += 1) {
    if (!variable) {
      if (!skipFixedValue(c, base)) return false;
      continue;
    }
    const bytes = readVariableValue(c);
    if (!bytes) return false;
    if (v === 0) keep(id, base, bytes);
  }
  return true;
}

/** attMsgProps or attAttachment ([MS-OXTNEF]'s MAPI property list): a count, then properties; stops at anything it cannot size. */
function readMapiProperties(data: Buffer, keep: PropertyValue): void {
  if (data.length < 4) return;
  const count = data.readUInt32LE(0);
  const cursor: Cursor = { data, p: 4 };
  for (let i = 0; i < count && cursor.p + 4 <= data.length; i += 1) {
    if (!readProperty(cursor, keep)) return;
  }
}

import { decompressRTF } from '@kenjiuno/decompressrtf';
import iconv from 'iconv-lite';
import { Tokenize, deEncapsulateSync } from 'rtf-stream-parser';
import { ToPlainText } from 'rtf-stream-parser/dist/src/ToPlainText.js';

/**
 * The message text inside an Outlook TNEF attachment (`winmail.dat`, [MS-OXTNEF]), or undefined when there is
 * none we can read. A bounded walk over the attributes: every length is checked against the buffer, so damaged
 * data ends the walk instead of looping. (node-tnef, the TNEF package on npm, loops forever on the damaged
 * winmail.dat of the field cases, and reads no compressed RTF, so it is not used.) Reads, in this order:
 * PR_BODY (plain text), attBody, PR_BODY_HTML, PR_RTF_COMPRESSED with HTML or text encapsulated in RTF
 * (decompressed by @kenjiuno/decompressrtf, de-encapsulated by rtf-stream-parser, as Outlook writes it), or
 * Outlook's native "Rich Text" body (RTF that encapsulates nothing: its text by rtf-stream-parser's ToPlainText).
 */
export function tnefText(data: Buffer): { text?: string; html?: string } | undefined {
  if (data.length < 6 || data.readUInt32LE(0) !== TNEF_SIGNATURE) return undefined;
  const found = readMessageAttributes(data);
  const plain = found.body ?? (found.attBody ? decodeCodepage(found.attBody, found.codepage) : undefined);
  if (plain?.trim()) return { text: plain };
  if (found.html?.trim()) return { html: found.html };
  return found.rtf ? rtfText(found.rtf) : undefined;
}

/** What the walk found: the code page (attOemCodepage, default 1252) and the candidate bodies. */
type TnefFound = { codepage: number; body?: string; attBody?: Buffer; html?: string; rtf?: Buffer };

/** 8-bit text in the message's code page (cp1252 when iconv has no such table), trailing NULs dropped. */
function decodeCodepage(bytes: Buffer, codepage: number): string {
  return iconv.decode(bytes, iconv.encodingExists(`cp${codepage}`) ? `cp${codepage}` : 'cp1252').replace(/\0+$/, '');
}

/**
 * The TNEF attribute stream after the 6-byte header ([MS-OXTNEF] 2.1.3): level (1 byte), id (4), length (4),
 * value, 16-bit checksum; only message-level attributes are read. A length past the end (damaged data) ends it.
 */
function readMessageAttributes(data: Buffer): TnefFound {
  const found: TnefFound = { codepage: 1252 };
  let offset = 6;
  while (offset + 9 <= data.length) {
    const level = data.readUInt8(offset);
    const id = data.readUInt32LE(offset + 1);
    const length = data.readUInt32LE(offset + 5);
    const start = offset + 9;
    if (start + length + 2 > data.length) break; // damaged: a length past the end
    offset = start + length + 2; // value + 16-bit checksum
    if (level === LEVEL_MESSAGE) readMessageAttribute(id, data.subarray(start, start + length), found);
  }
  return found;
}

/** One message-level attribute: the code page, attBody, or attMsgProps (the MAPI properties). */
function readMessageAttribute(id: number, value: Buffer, found: TnefFound): void {
  if (id === ATT_OEM_CODEPAGE && value.length >= 4) found.codepage = value.readUInt32LE(0) || found.codepage;
  else if ((id & 0xffff) === ATT_BODY) found.attBody = value;
  else if (id === ATT_MSG_PROPS) readMapiProperties(value, found);
}

/**
 * PR_RTF_COMPRESSED: decompressed ([MS-OXRTFCP]) and de-encapsulated ([MS-OXRTFEX]) into HTML or text; undefined
 * for RTF that encapsulates neither, or damaged RTF.
 */
function rtfText(compressed: Buffer): { text?: string; html?: string } | undefined {
  let rtf: Buffer;
  try {
    rtf = Buffer.from(decompressRTF([...compressed]));
  } catch {
    return undefined; // damaged compressed RTF: nothing we can read
  }
  try {
    const result = deEncapsulateSync(rtf, { decode, mode: 'either' });
    const out = typeof result.text === 'string' ? result.text : result.text.toString('utf8');
    if (out.trim()) return result.mode === 'html' ? { html: out } : { text: out };
  } catch {
    // RTF that is not encapsulated HTML/text (Outlook's "Rich Text" format), or damaged: read as plain RTF below
  }
  const plain = rtfPlainText(rtf);
  return plain?.trim() ? { text: plain } : undefined;
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

/** One property: type, id, (a name), then its value or a count of values; false when it cannot be read whole. */
function readProperty(c: Cursor, found: TnefFound): boolean {
  const type = c.data.readUInt16LE(c.p);
  const id = c.data.readUInt16LE(c.p + 2);
  c.p += 4;
  if (id >= 0x8000 && !skipPropertyName(c)) return false;
  const base = type & ~MV_FLAG;
  const variable = VARIABLE_TYPES.has(base);
  if (!variable && !(type & MV_FLAG)) return skipFixedValue(c, base);
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
    if (v === 0) keepBodyProperty(id, base, bytes, found);
  }
  return true;
}

/** attMsgProps: a count, then properties; stops at anything it cannot size. */
function readMapiProperties(data: Buffer, found: TnefFound): void {
  if (data.length < 4) return;
  const count = data.readUInt32LE(0);
  const cursor: Cursor = { data, p: 4 };
  for (let i = 0; i < count && cursor.p + 4 <= data.length; i += 1) {
    if (!readProperty(cursor, found)) return;
  }
}

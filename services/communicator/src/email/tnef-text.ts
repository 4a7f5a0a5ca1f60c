import { decompressRTF } from '@kenjiuno/decompressrtf';
import iconv from 'iconv-lite';
import { deEncapsulateSync } from 'rtf-stream-parser';

/**
 * The message text inside an Outlook TNEF attachment (`winmail.dat`, [MS-OXTNEF]), or undefined when there is
 * none we can read. A bounded walk over the attributes: every length is checked against the buffer, so damaged
 * data ends the walk instead of looping. (node-tnef, the TNEF package on npm, loops forever on the damaged
 * winmail.dat of the field cases, and reads no compressed RTF, so it is not used.) Reads, in this order:
 * PR_BODY (plain text), attBody, PR_BODY_HTML, PR_RTF_COMPRESSED with HTML or text encapsulated in RTF
 * (decompressed by @kenjiuno/decompressrtf, de-encapsulated by rtf-stream-parser, as Outlook writes it).
 */
export function tnefText(data: Buffer): { text?: string; html?: string } | undefined {
  if (data.length < 6 || data.readUInt32LE(0) !== TNEF_SIGNATURE) return undefined;
  let codepage = 1252;
  const found: { body?: string; attBody?: Buffer; html?: string; rtf?: Buffer } = {};
  let offset = 6;
  while (offset + 9 <= data.length) {
    const level = data.readUInt8(offset);
    const id = data.readUInt32LE(offset + 1);
    const length = data.readUInt32LE(offset + 5);
    const start = offset + 9;
    if (start + length + 2 > data.length) break; // damaged: a length past the end
    const value = data.subarray(start, start + length);
    offset = start + length + 2; // value + 16-bit checksum
    if (level !== LEVEL_MESSAGE) continue;
    if (id === ATT_OEM_CODEPAGE && length >= 4) codepage = value.readUInt32LE(0) || codepage;
    else if ((id & 0xffff) === ATT_BODY) found.attBody = value;
    else if (id === ATT_MSG_PROPS) readMapiProperties(value, codepage, found);
  }
  const decodeCp = (bytes: Buffer) =>
    iconv.decode(bytes, iconv.encodingExists(`cp${codepage}`) ? `cp${codepage}` : 'cp1252');
  const plain = found.body ?? (found.attBody ? decodeCp(found.attBody).replace(/\0+$/, '') : undefined);
  if (plain?.trim()) return { text: plain };
  if (found.html?.trim()) return { html: found.html };
  if (found.rtf) {
    try {
      const rtf = Buffer.from(decompressRTF([...found.rtf]));
      const result = deEncapsulateSync(rtf, { decode: (buf, enc) => iconv.decode(buf, enc), mode: 'either' });
      const out = typeof result.text === 'string' ? result.text : result.text.toString('utf8');
      if (out.trim()) return result.mode === 'html' ? { html: out } : { text: out };
    } catch {
      // RTF that is not encapsulated HTML/text, or damaged: nothing we can read
    }
  }
  return undefined;
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

/** attMsgProps: a count, then properties; stops at anything it cannot size. */
function readMapiProperties(
  data: Buffer,
  codepage: number,
  found: { body?: string; html?: string; rtf?: Buffer },
): void {
  if (data.length < 4) return;
  const count = data.readUInt32LE(0);
  let p = 4;
  for (let i = 0; i < count && p + 4 <= data.length; i += 1) {
    const type = data.readUInt16LE(p);
    const id = data.readUInt16LE(p + 2);
    p += 4;
    if (id >= 0x8000) {
      // A named property: GUID, kind, then an id or a name.
      if (p + 20 > data.length) return;
      const kind = data.readUInt32LE(p + 16);
      p += 20;
      if (p + 4 > data.length) return;
      p += kind === 0 ? 4 : 4 + pad4(data.readUInt32LE(p));
    }
    const base = type & ~MV_FLAG;
    const variable = base === PT_STRING8 || base === PT_UNICODE || base === PT_BINARY || base === PT_OBJECT;
    if (!variable && !(type & MV_FLAG)) {
      const size = FIXED_SIZE[base];
      if (size === undefined || p + size > data.length) return;
      p += size;
      continue;
    }
    if (p + 4 > data.length) return;
    const values = data.readUInt32LE(p);
    p += 4;
    for (let v = 0; v < values; v += 1) {
      if (!variable) {
        const size = FIXED_SIZE[base];
        if (size === undefined || p + size > data.length) return;
        p += size;
        continue;
      }
      if (p + 4 > data.length) return;
      const length = data.readUInt32LE(p);
      p += 4;
      if (p + length > data.length) return;
      const bytes = data.subarray(p, p + length);
      p += pad4(length);
      if (v > 0) continue;
      const text = () =>
        base === PT_UNICODE
          ? bytes.toString('utf16le').replace(/\0+$/, '')
          : iconv.decode(bytes, iconv.encodingExists(`cp${codepage}`) ? `cp${codepage}` : 'cp1252').replace(/\0+$/, '');
      if (id === PR_BODY && (base === PT_UNICODE || base === PT_STRING8)) found.body = text();
      else if (id === PR_BODY_HTML) found.html = base === PT_BINARY ? bytes.toString('utf8') : text();
      else if (id === PR_RTF_COMPRESSED && base === PT_BINARY) found.rtf = bytes;
    }
  }
}

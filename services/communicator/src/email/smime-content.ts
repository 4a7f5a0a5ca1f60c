/**
 * The content of an S/MIME mail signed "opaquely" (RFC 8551 §3.5.2): the whole body is one
 * `application/pkcs7-mime; smime-type=signed-data` part (`smime.p7m`), a CMS SignedData (RFC 5652 §5) whose
 * encapsulated content (§5.2, `eContent`) is the MIME entity the author wrote: its header fields (Content-Type, …),
 * an empty line, its body. Outlook sends signed mail this way when "send clear-text signed message" is off, and so
 * do gateways that sign on the way out. Parsed with @peculiar/asn1-cms (the RFC 5652 schema) and asn1js, both
 * loaded at the first such mail, not at start (docs/operations.md, "Memory at start-up").
 *
 * The signature is not verified: who sent the mail is decided as for any mail (the trusted Authentication-Results,
 * sender-authentication.ts), and a signature would only say which certificate signed it.
 */
import { validUtf8 } from './utf8.js';

/** CMS content types (RFC 5652 §4 id-data, §5 id-signedData). */
const ID_DATA = '1.2.840.113549.1.7.1';
const ID_SIGNED_DATA = '1.2.840.113549.1.7.2';

/** The CMS schema (@peculiar/asn1-cms, its converter) and asn1js, loaded at the first S/MIME part, not at start. */
const importCms = () =>
  Promise.all([import('@peculiar/asn1-schema'), import('@peculiar/asn1-cms'), import('asn1js')]).then(
    ([schema, schemas, asn1js]) => ({
      AsnConvert: schema.AsnConvert,
      ContentInfo: schemas.ContentInfo,
      SignedData: schemas.SignedData,
      asn1js,
    }),
  );
let cms: ReturnType<typeof importCms> | undefined;
const loadCms = () => (cms ??= importCms());

/** Signed-data layers unwrapped at most (RFC 8551 §3.7: a triple-wrapped mail has two, the inner one encrypted). */
export const MAX_SMIME_LAYERS = 3;

/**
 * Whether a part's media type or file name says S/MIME pkcs7-mime (RFC 8551 §3.2: `application/pkcs7-mime`, the
 * `x-` form older clients send, or an `.p7m` file under a generic type).
 */
export function isPkcs7Mime(type: string, name: string | undefined): boolean {
  return (
    type === 'application/pkcs7-mime' ||
    type === 'application/x-pkcs7-mime' ||
    (type === 'application/octet-stream' && /\.p7m$/i.test(name ?? ''))
  );
}

/**
 * Whether the `smime-type` parameter (RFC 8551 §3.2.2) says the part is encrypted (`enveloped-data`,
 * `authEnveloped-data`): its content cannot be read without the recipient's private key. Absent or any other
 * value: false (the data itself then tells: isEncryptedCms).
 */
export function isEncryptedSmime(smimeType: string | undefined): boolean {
  return /^(auth)?enveloped-data$/i.test(smimeType?.trim() ?? '');
}

/** CMS content types of encrypted data: EnvelopedData (RFC 5652 §6), AuthEnvelopedData (RFC 5083 §2.1). */
const ENCRYPTED_CONTENT_TYPES = new Set(['1.2.840.113549.1.7.3', '1.2.840.113549.1.9.16.1.23']);

/**
 * Whether a pkcs7-mime part is encrypted: by its `smime-type` when it has one, else by the ContentInfo's content
 * type in `der` (RFC 8551 allows the parameter to be left out, as `x-pkcs7-mime` and `.p7m` senders do). False for
 * bytes that are not CMS.
 */
export async function isEncryptedCms(smimeType: string | undefined, der: Buffer): Promise<boolean> {
  if (smimeType?.trim()) return isEncryptedSmime(smimeType);
  const { AsnConvert, ContentInfo } = await loadCms();
  try {
    return ENCRYPTED_CONTENT_TYPES.has(AsnConvert.parse(der, ContentInfo).contentType);
  } catch {
    return false;
  }
}

/**
 * The MIME entity inside a CMS SignedData (`der`: the decoded bytes of the pkcs7-mime part, DER or BER, the
 * encapsulated content as one OCTET STRING or, from streaming signers such as `openssl cms -stream`, a
 * constructed one in chunks), as `entityOf` reads it: a MIME entity as is, bare text (signers run without their
 * MIME option) as a text/plain entity. Undefined when `der` is not a ContentInfo holding SignedData with id-data
 * content (enveloped or compressed data, a detached signature, damaged bytes), or the content is binary (a signed
 * PDF: it stays a named attachment).
 */
export async function signedEntityOf(der: Buffer): Promise<Buffer | undefined> {
  const content = await signedContentOf(der);
  return content && entityOf(content);
}

/** The encapsulated id-data content of a CMS SignedData (RFC 5652 §5.2); undefined for anything else. */
async function signedContentOf(der: Buffer): Promise<Buffer | undefined> {
  const { AsnConvert, ContentInfo, SignedData, asn1js } = await loadCms();
  try {
    const info = AsnConvert.parse(der, ContentInfo);
    if (info.contentType !== ID_SIGNED_DATA) return undefined;
    const { eContentType, eContent: content } = AsnConvert.parse(info.content, SignedData).encapContentInfo;
    if (eContentType !== ID_DATA) return undefined;
    if (content?.single) return Buffer.from(content.single.buffer);
    if (!content?.any) return undefined;
    // A constructed OCTET STRING (BER, RFC 5652 §5.2 allows it): asn1js joins its chunks.
    const parsed = asn1js.fromBER(content.any);
    if (parsed.offset === -1 || !(parsed.result instanceof asn1js.OctetString)) return undefined;
    return Buffer.from(parsed.result.getValue());
  } catch {
    return undefined; // not CMS, or damaged
  }
}

/** A message's or entity's header fields (unfolded lines kept as written) and the offset where its body starts. */
function headerFieldsOf(latin1: string): { fields: string[]; bodyAt: number } {
  const blank = /\r?\n\r?\n/.exec(latin1);
  if (latin1.startsWith('\r\n') || latin1.startsWith('\n')) return { fields: [], bodyAt: 0 };
  if (!blank) return { fields: latin1.split(/\r?\n(?![ \t])/), bodyAt: latin1.length };
  // A line that does not start with white space opens a field; folded lines belong to it (RFC 5322 §2.2.3).
  return { fields: latin1.slice(0, blank.index).split(/\r?\n(?![ \t])/), bodyAt: blank.index + blank[0].length };
}

const isContentField = (field: string): boolean => /^content-/i.test(field);

/** A header field line (RFC 5322 §2.2: printable ASCII but ':' up to the first ':'), or a folded continuation. */
const isFieldLine = (field: string): boolean => /^[!-9;-~]+:/.test(field);

/**
 * Signed content as a MIME entity: as is when it opens with a header of fields, at least one of them Content-*
 * (RFC 8551 §3.1: the signed content is a MIME entity); else, when it is text (no NUL, few control characters), that
 * text as a text/plain entity (UTF-8 when it decodes as such; else without a charset, for the mail's charset
 * guessing); else (binary) undefined.
 */
function entityOf(content: Buffer): Buffer | undefined {
  const { fields } = headerFieldsOf(content.toString('latin1'));
  if (fields.length && fields.every(isFieldLine) && fields.some(isContentField)) return content;
  if (!isText(content)) return undefined;
  const charset = validUtf8(content) ? '; charset=utf-8' : '';
  return Buffer.concat([Buffer.from(`Content-Type: text/plain${charset}\r\n\r\n`, 'latin1'), content]);
}

/** Text, not binary: no NUL and at most 1 % other control characters (tab, line breaks and form feed allowed). */
function isText(content: Buffer): boolean {
  let control = 0;
  for (const byte of content) {
    if (byte === 0) return false;
    if (byte < 0x20 && byte !== 0x09 && byte !== 0x0a && byte !== 0x0d && byte !== 0x0c) control += 1;
  }
  return control <= content.length / 100;
}

/**
 * A mail rebuilt around the entity its signed-data body carries: `source`'s header fields except its Content-*
 * fields (RFC 2045 §3: they described the pkcs7-mime body), then the entity's Content-* fields, an empty line and
 * the entity's body. Any other field in the entity's header (From, Subject, Message-ID …: "protected headers")
 * is dropped: whoever made the blob wrote them, and the mail's sender, subject and identity are the outer ones that
 * the receiving server authenticated. The result reads like the mail the author wrote.
 */
export function withEntityAsBody(source: Buffer, entity: Buffer): Buffer {
  const outer = headerFieldsOf(source.toString('latin1'));
  const inner = headerFieldsOf(entity.toString('latin1'));
  const head = [...outer.fields.filter((field) => !isContentField(field)), ...inner.fields.filter(isContentField)];
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), entity.subarray(inner.bodyAt)]);
}

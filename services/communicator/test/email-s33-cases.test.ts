// Session 33: S/MIME mail signed "opaquely" (RFC 8551 §3.5.2; the M09 kind: the body exists only in a part we did
// not read). The whole mail is one `smime.p7m` (application/pkcs7-mime or x-pkcs7-mime, smime-type=signed-data):
// Outlook sends signed mail so when "clear-text signed" is off. Its text was lost: the secretary got the subject and
// "[Вложения (не переданы): smime.p7m]". The fixtures were signed with `openssl cms -sign -nodetach` (a test
// certificate): DER (S1), streamed BER with the content in chunks (S2), forwarded as an attachment (S3), signed twice
// (S5). S4 (encrypted for the recipient: enveloped-data) cannot be read: the sender is asked for text, no secretary
// call. S6 (a damaged blob) and S9 (a signed PDF) are named as attachments under the subject, as before the reader.
// S1, S2, S3, S5 and S4 failed before the change. S7: the signed entity's own From, Subject, Message-ID and Reply-To
// lines are not the mail's, and S8: bare signed text is read whole (the reader's first version let the inner header
// override the authenticated one, and took bare text's first paragraph for a header).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../src/email/mail-parsing.js';
import { describeMailReplay, holds, type ExpectedRequest } from './mail-replay.js';

const REQUEST = 'Нужен доступ на чтение к Grafana для отдела платежей.';

const EXPECTED: Record<string, ExpectedRequest> = {
  // Outlook: application/pkcs7-mime, DER, the signed entity text/plain in quoted-printable UTF-8, signature under it.
  's33-cases/S1-outlook-opaque-signed.eml': holds(['Доступ к Grafana', REQUEST], ['smime.p7m', 'С уважением']),
  // x-pkcs7-mime, BER of a streaming signer; inside: multipart/alternative in windows-1251 and a .txt attached.
  's33-cases/S2-streamed-ber-x-pkcs7.eml': holds(
    ['Выгрузите, пожалуйста, реестр возвратов за ноябрь.', '[Вложение: params.txt]\nterminal_id=7781\nperiod=2026-11'],
    ['smime.p7m', 'Content-Type', '<p>'],
  ),
  // A colleague forwards the signed mail as an attachment: the forwarded mail's text is read.
  's33-cases/S3-forwarded-opaque.eml': holds(
    [
      'Посмотрите, пожалуйста, это письмо.',
      '[Пересланное письмо]\nОт: Иван Петров <ivan.petrov@example.test>\nТема: Доступ к Grafana',
      REQUEST,
    ],
    ['smime.p7m'],
  ),
  's33-cases/S4-encrypted-enveloped.eml': null,
  // Encrypted, x-pkcs7-mime without smime-type (RFC 8551 allows it): known by its CMS content type, unreadable too.
  's33-cases/S11-encrypted-no-smime-type.eml': null,
  // Signed, and the signed entity is itself an opaque signed mail.
  's33-cases/S5-signed-twice.eml': holds(['Доступ к Grafana', REQUEST], ['smime.p7m', 'pkcs7']),
  // A damaged signed blob cannot be opened: named like any attachment, under the subject (as before the reader).
  's33-cases/S6-damaged-signed.eml': 'Доступ к Grafana\n\n[Вложения (не переданы): smime.p7m]',
  // The signed entity names another sender, subject, Message-ID and Reply-To in its own header: ignored.
  's33-cases/S7-inner-headers-ignored.eml': holds(['Доступ к Grafana', REQUEST], ['Срочно', 'переведите']),
  // Bare text signed without a MIME header (openssl without -text): read as text/plain, in full.
  's33-cases/S8-bare-text-signed.eml': holds(['Доступ к Grafana', 'Добрый день!', REQUEST], ['Content-Type']),
  // A signed document (a PDF, binary) is no text: named, never passed on as characters.
  // Four layers: past MAX_SMIME_LAYERS (3 per mail, forwards included) the blob is only named — a bound on the
  // parsing one mail can cause.
  's33-cases/S10-signed-four-times.eml': 'Доступ к Grafana\n\n[Вложения (не переданы): smime.p7m]',
  's33-cases/S9-signed-document-only.eml':
    'Договор с банком-партнёром на согласование\n\n[Вложения (не переданы): contract.pdf.p7m]',
};

describeMailReplay('s33: S/MIME opaque-signed mail', ['s33-cases'], EXPECTED);

describe('s33: the signed entity cannot speak for the mail', () => {
  it('keeps the outer From, Message-ID, subject and no Reply-To of the entity (the authenticated header)', async () => {
    const raw = readFileSync(new URL('./fixtures/s33-cases/S7-inner-headers-ignored.eml', import.meta.url));
    const mail = await parseInboundMail(raw, { ownAddresses: ['bot@example.test'] });
    expect(mail.from).toBe('ivan.petrov@example.test');
    expect(mail.messageId).toBe('<s33-inner-headers@example.test>');
    expect(mail.subject).toBe('Доступ к Grafana');
    expect(mail.replyTo).toBeUndefined();
    expect(mail.text).toBe(REQUEST);
  });
});

// Session 37: mail bodies still misread after session 36 (the body tester's zz-body mails), replayed through Dovecot
// and the SMTP sink (docs/communicator.md, "decide": TNEF; "MAX_MAIL_BYTES": long bodies). Field-report kinds:
// M09a (the body only inside Outlook's winmail.dat) and M12b (a long pasted log). Each T01b, T03–T06 and L06 file
// failed before its change; T01, T02, T05b and T07 passed before and are kept as the TNEF kind's neighbours.
// - T01b, T06: Exchange sends the text part and a winmail.dat with the same body: the request said it twice. A TNEF
//   body the text part already says is dropped (mail-parsing.ts repeatsText).
// - T03, T06: the files inside winmail.dat were never named (tnef-text.ts read message-level attributes only).
// - T04: a request in the Subject, a winmail.dat with an empty RTF body and a PDF inside: the "unreadable" reply;
//   now read like the same mail as MIME (the subject, the PDF named).
// - T05: TNEF sent as application/octet-stream `ATT00001.dat` was only named; now known by its signature.
// - L06: a 165 KB log, the question, then 65 KB of Outlook's quoted thread: the 200,000-character cut fell inside
//   the history's header block, so the question was lost and a colleague's quoted words were passed on as the
//   author's. The cut now knows where the history starts (mail-parsing.ts boundedBodyText).
// The unit tests below: the cap on files named per winmail.dat, a stream broken off before its body, and the cut.
import { describe, expect, it } from 'vitest';
import { describeMailReplay, type ExpectedRequest } from './mail-replay.js';
import { CUT_MARKER } from '../src/email/mail-request.js';
import { MAX_BODY_TEXT_CHARS, boundedBodyText } from '../src/email/mail-parsing.js';
import { MAX_TNEF_ATTACHMENTS, tnefContent } from '../src/email/tnef-text.js';

const D = 's37-body/';

const L06_QUESTION =
  'Вопрос к Workemon: почему расчёт по кошельку 4471 падает с TIMEOUT каждую ночь и как это исправить?';

const EXPECTED: Record<string, ExpectedRequest> = {
  [`${D}T01-exchange-ru-plain-plus-tnef-fromtext-rtf.eml`]: [
    'Реестр возвратов',
    '',
    'Добрый день!',
    '',
    'Прошу выгрузить реестр возвратов по кошельку 4471 за ноябрь, по дням.',
  ].join('\n'),
  [`${D}T01b-exchange-ru-plain-plus-tnef-no-signature.eml`]: [
    'Блокировка доступа',
    '',
    'Добрый день!',
    '',
    'Прошу заблокировать доступ к CRM для уволенного сотрудника Лаптева Е.Н. с 23.11.2026.',
  ].join('\n'),
  [`${D}T02-outlook-ru-tnef-native-rtf-lzfu-only.eml`]: [
    'Оплата картой',
    '',
    'Коллеги, добрый день!',
    '',
    'Не проходит оплата картой МИР на кассе № 3, ошибка «Операция отклонена, код 05». Проверьте, пожалуйста, ' +
      'лимиты терминала 10447812.',
  ].join('\n'),
  [`${D}T03-outlook-ru-tnef-rtf-xlsx-inside.eml`]: [
    'Сверка за ноябрь',
    '',
    'Добрый день!',
    '',
    'Проверьте, пожалуйста, вложенный отчёт: суммы за 12 и 13 ноября не сходятся с банком.',
    '',
    '[Вложения (не переданы): Сверка ноябрь.xlsx]',
  ].join('\n'),
  [`${D}T04-outlook-ru-tnef-empty-rtf-pdf-inside-subject-request.eml`]: [
    'Акт № 118 на подпись до пятницы',
    '',
    '[Вложения (не переданы): Акт 118.pdf]',
  ].join('\n'),
  [`${D}T05-tnef-octet-stream-att00001-dat.eml`]: [
    'Доступ к VPN',
    '',
    'Добрый день!',
    '',
    'Прошу продлить доступ к VPN для Иванова С.П. до 31.12.2026.',
  ].join('\n'),
  [`${D}T05b-tnef-ms-tnef-named-att00001-dat.eml`]: [
    'Доступ к VPN',
    '',
    'Добрый день!',
    '',
    'Прошу продлить доступ к VPN для Иванова С.П. до 31.12.2026.',
  ].join('\n'),
  [`${D}T06-exchange-ru-plain-plus-tnef-body-w-rtf-pdf-inside.eml`]: [
    'Возврат платежа 88123',
    '',
    'Добрый день!',
    '',
    'Прошу вернуть платёж 88123 на 1 500 ₽, клиент ошибся реквизитами. Заявление во вложении.',
    '',
    '[Вложения (не переданы): Заявление.pdf]',
  ].join('\n'),
  [`${D}T07-tnef-vnd-ms-tnef-winmail.eml`]: 'Оригиналы\n\nПрошу подтвердить получение оригиналов.',
  // 232,000 characters of text: the request is the log's head and tail with the question, cut to the secretary's
  // 20,000, and none of the quoted thread (its header block, a colleague's words, their signature).
  [`${D}L06-outlook-reply-long-log-question-then-long-history.eml`]: (request) => {
    expect(request.length).toBeLessThanOrEqual(20_000);
    expect(request.startsWith('Коллеги, добрый день!\n\nЛог за ночь:\n\n2026-11-20 09:00:00.362 ERROR')).toBe(true);
    expect(
      request.endsWith(`${L06_QUESTION}\n\n[…письмо было слишком большим и прочитано не полностью]${CUT_MARKER}`),
    ).toBe(true);
    for (const quoted of ['Проверяю вместе с банком', 'Сидоров', 'Отправлено:', 'Группа расчётов', '_____'])
      expect(request).not.toContain(quoted);
  },
};

describeMailReplay('s37: mail bodies inside winmail.dat, and a long log above a long history', ['s37-body'], EXPECTED);

/** One TNEF attribute ([MS-OXTNEF]): level, id, length, value, checksum (not checked by the reader). */
const attribute = (level: number, id: number, value: Buffer, length = value.length): Buffer => {
  const head = Buffer.alloc(9);
  head.writeUInt8(level, 0);
  head.writeUInt32LE(id, 1);
  head.writeUInt32LE(length, 5);
  return Buffer.concat([head, value, Buffer.alloc(2)]);
};
const TNEF_HEAD = Buffer.from([0x78, 0x9f, 0x3e, 0x22, 0x01, 0x00]);
const attachment = (title: string): Buffer =>
  Buffer.concat([
    attribute(2, 0x00069002, Buffer.alloc(14)), // attAttachRenddata
    attribute(2, 0x00018010, Buffer.from(`${title}\0`, 'latin1')), // attAttachTitle
  ]);

describe('s37: the files inside winmail.dat and the history-aware cut', () => {
  it('names at most MAX_TNEF_ATTACHMENTS files of a stream that declares more', () => {
    const files = Array.from({ length: MAX_TNEF_ATTACHMENTS + 50 }, (_, i) => attachment(`f${i}.pdf`));
    const tnef = tnefContent(Buffer.concat([TNEF_HEAD, ...files]))!;
    expect(tnef.attachments.map((a) => a.name)).toEqual(
      Array.from({ length: MAX_TNEF_ATTACHMENTS }, (_, i) => `f${i}.pdf`),
    );
    expect(tnef.bodyUnreadable).toBe(false);
  });

  it('a stream that breaks off before any body has an unreadable body, its files still named', () => {
    const broken = attribute(1, 0x00069003, Buffer.alloc(8), 1_000_000); // attMsgProps longer than the stream
    const tnef = tnefContent(Buffer.concat([TNEF_HEAD, attachment('act.pdf'), broken]))!;
    expect(tnef.attachments.map((a) => a.name)).toEqual(['act.pdf']);
    expect(tnef.bodyUnreadable).toBe(true);
  });

  it('cuts a long log apart from the history under it: the question kept, the header block whole', () => {
    const log = Array.from({ length: 3000 }, (_, i) => `2026-11-20 09:00:${i} ERROR settlement failed op=${i}`);
    const question = 'Почему расчёт падает с TIMEOUT?';
    const history = [
      '________________________________',
      'От: Сидоров Пётр <petr.sidorov@example.test>',
      'Отправлено: 19 ноября 2026 г. 10:00',
      'Кому: Группа расчётов <settlement@example.test>',
      'Тема: RE: Расчёты',
      '',
      ...Array.from({ length: 1500 }, (_, i) => `Строка истории ${i}: проверяю вместе с банком.`),
    ];
    const text = [...log, ...log, ...log, '', question, '', ...history].join('\r\n');
    expect(text.length).toBeGreaterThan(MAX_BODY_TEXT_CHARS);
    const { text: cut, cut: wasCut } = boundedBodyText(text);
    expect(wasCut).toBe(true);
    expect(cut.length).toBeLessThanOrEqual(MAX_BODY_TEXT_CHARS + 20);
    expect(cut).toContain(`${question}\n\n________________________________\nОт: Сидоров Пётр`);
  });
});

// Adversarial members of each mail kind (test/fixtures/adv-cases): inputs a real client, gateway or attacker
// produces that the field-case fixes did not cover — subjects behind a gateway tag or with a full-width colon,
// encoded words in an unknown charset; Yandex (EN), Mail.ru and Outlook RU (`ПЕРЕСЛ:`, `-----Исходное
// сообщение-----`) forwards, an Outlook forward under a changed subject, Thunderbird's "Original Message" form;
// a forward as attachment with its own attachments; the author's own lines that look like attribution or header
// lines; phone and webmail footers in Russian; a pasted screenshot as the only content; Russian text under a wrong
// single-byte charset label, UTF-8 under a windows-1251 one; a reply with nothing new under its `Re:` subject, a
// body of zero-width characters, TNEF as application/vnd.ms-tnef without a name; HTML nested 2,000 deep. Each goes
// through the real communicator: IMAP APPEND into Dovecot, the fake secretary records the request it received,
// the SMTP sink the reply sent.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink, type ReceivedMail, type SmtpSink } from '@workemon/testkit/smtp-sink';
import { USER_MESSAGES } from '../src/email/mail-request.js';
import { startFakeSecretary, type FakeSecretary } from './fake-secretary.js';
import { startCommunicator, waitUntil, type Running } from './harness.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);
const USER = { user: 'bot@example.test', password: 'secret' };

/** What the secretary must receive for each mail (exact text), or `null`: no call, the "send text" reply. */
const EXPECTED: Record<string, string | null> = {
  'adv-cases/B11-bottom-ru-gmail.eml': 'За октябрь.',
  'adv-cases/B14-apple-ru.eml': 'Нужны отказы.',
  'adv-cases/B20-yahoo.eml': 'Only October.',
  'adv-cases/C11-wrong-label-koi8.eml': ['Доступ', '', 'Нужен доступ к VPN на месяц.'].join('\n'),
  'adv-cases/C17-latin1-label-cp1251.eml': ['Доступ', '', 'Нужен доступ к VPN на месяц.'].join('\n'),
  'adv-cases/F21-outlook-fw-no-prefix.eml': [
    'Помогите с доступом',
    '',
    'Коллеги, помогите.',
    '',
    '[Пересланное письмо]',
    'От: Sidorov Petr <sidorov@example.test>',
    'Тема: Access',
    'Нужен доступ к Grafana на чтение.',
  ].join('\n'),
  'adv-cases/F22-yandex-en.eml': [
    'See below.',
    '',
    '[Пересланное письмо]',
    'От: Sidorov Petr <sidorov@example.test>',
    'Нужна выгрузка возвратов.',
  ].join('\n'),
  'adv-cases/F25-gmail-ru.eml': [
    'Посмотри.',
    '',
    '[Пересланное письмо]',
    'От: Пётр Сидоров <sidorov@example.test>',
    'Тема: Отчёт',
    'Нужен отчёт по возвратам.',
  ].join('\n'),
  'adv-cases/F27-thunderbird-ru.eml': [
    'Ниже.',
    '',
    '[Пересланное письмо]',
    'От: Petr Sidorov <sidorov@example.test>',
    'Тема: Реестр',
    'Нужен реестр отказов.',
  ].join('\n'),
  'adv-cases/F28-outlook-ru-isxodnoe.eml': [
    'Помогите.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к CRM.',
  ].join('\n'),
  'adv-cases/F32-mailru-new-format.eml': [
    'Помогите.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Нужен доступ к Kibana.',
  ].join('\n'),
  'adv-cases/F40-pereslat-no-sep.eml': [
    'Помогите.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к CRM.',
  ].join('\n'),
  'adv-cases/F41-thunderbird-original.eml': [
    'See below.',
    '',
    '[Пересланное письмо]',
    'От: Petr Sidorov <sidorov@example.test>',
    'Тема: Access',
    'Нужен доступ к Sentry.',
  ].join('\n'),
  'adv-cases/F42-outlook-html-ru-fwd.eml': [
    'Коллеги, помогите.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к Confluence.',
  ].join('\n'),
  'adv-cases/F47-two-forwards.eml': [
    'Два письма ниже.',
    '',
    '[Пересланное письмо]',
    'От: A <a@example.test>',
    'Тема: Доступ',
    'Нужен доступ к Sentry.',
    '',
    '[Пересланное письмо]',
    'От: B <b@example.test>',
    'Тема: Доступ 2',
    'Нужен доступ к Jira.',
  ].join('\n'),
  'adv-cases/F49-mailru-fwd-otkogo-new.eml': [
    'Помогите.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к Kibana.',
  ].join('\n'),
  'adv-cases/G11-yandex-mobile.eml': ['Доступ', '', 'Нужен доступ к VPN.'].join('\n'),
  'adv-cases/G16-protonmail.eml': ['Доступ', '', 'Нужен доступ к VPN.'].join('\n'),
  'adv-cases/G17-thanks-newline-name.eml': ['Доступ', '', 'Нужен доступ к VPN.'].join('\n'),
  'adv-cases/G18-ipad-ru.eml': ['Доступ', '', 'Нужен доступ к VPN.'].join('\n'),
  'adv-cases/H10-script-style-body.eml': ['Доступ', '', 'Нужен доступ к Jira — проект PAY.'].join('\n'),
  'adv-cases/H11-outlook-html-reply.eml': 'Только возвраты.',
  'adv-cases/H16-outlook-screenshot.eml': null,
  'adv-cases/J02-time-and-address-colon.eml': [
    'Выгрузка',
    '',
    'Добрый день!',
    'Прошу к 10:00 прислать выгрузку на адрес petrov@example.test:',
    '- авторизации',
    '- возвраты',
  ].join('\n'),
  'adv-cases/J03-memo-header.eml': [
    'Командировка',
    '',
    'Прошу оформить командировку.',
    'От: отдел продаж',
    'Кому: бухгалтерия',
    'Дата: 25.11.2026',
    'Цель: встреча с банком.',
  ].join('\n'),
  'adv-cases/J04-route-from-to.eml': [
    'Билеты',
    '',
    'Нужны билеты.',
    'From: Moscow',
    'To: Kazan',
    'Date: 25.11.2026',
  ].join('\n'),
  'adv-cases/J06-closing-prefix.eml': [
    'VPN',
    '',
    'Добрый день.',
    'С уважением к срокам прошу ускорить выдачу доступа к VPN.',
  ].join('\n'),
  'adv-cases/R10-eml-octet-stream.eml': [
    'Помогите.',
    '',
    '[Пересланное письмо]',
    'От: Sidorov <sidorov@example.test>',
    'Тема: Access',
    'Нужен доступ к Vault.',
  ].join('\n'),
  'adv-cases/R12-rfc822-nested.eml': [
    'Цепочка.',
    '',
    '[Пересланное письмо]',
    'От: Anna <anna@example.test>',
    'Тема: Fwd: Access',
    'Анна: срочно.',
    '',
    '[Пересланное письмо]',
    'От: Sidorov <sidorov@example.test>',
    'Тема: Access',
    'Нужен доступ к Vault.',
  ].join('\n'),
  'adv-cases/R13-rfc822-html1251-attach.eml': [
    'См. ниже.',
    '',
    '[Пересланное письмо]',
    'От: Anna <anna@example.test>',
    'Тема: Report',
    'Нужен отчёт по возвратам, файл во вложении.',
    '',
    '[Вложения (не переданы): r.pdf]',
  ].join('\n'),
  'adv-cases/S10-ext-tag-re.eml': 'Только за ноябрь.',
  'adv-cases/S12-fullwidth-colon.eml': 'Только за ноябрь.',
  'adv-cases/S13-encoded-split.eml': 'Нужен доступ к Jira',
  'adv-cases/S14-encoded-1251.eml': 'Нужен доступ к Confluence',
  'adv-cases/X03-gmail-html-interleaved.eml': ['Октябрь.', 'По дням.'].join('\n'),
  'adv-cases/X04-outlook-wrapped-from.eml': 'Только возвраты.',
  'adv-cases/X06-unknown-encoded-word.eml': 'Нужен доступ к VPN',
  'adv-cases/X07-html-cp1251-label-koi8.eml': ['Доступ', '', 'Нужен доступ к отчётам по продажам.'].join('\n'),
  'adv-cases/X08-alt-mislabel.eml': ['Доступ', '', 'Нужен доступ к отчётам по продажам.'].join('\n'),
  'adv-cases/X09-german-latin1.eml': [
    'Zugang',
    '',
    'Bitte um Zugang für die Größenübersicht, danke schön. Grüße aus Köln.',
  ].join('\n'),
  'adv-cases/X10-rfc822-inner-attachment.eml': [
    'См. ниже.',
    '',
    '[Пересланное письмо]',
    'От: Anna <anna@example.test>',
    'Тема: Report',
    'Нужен отчёт по возвратам.',
    '',
    '[Вложения (не переданы): a.png]',
  ].join('\n'),
  'adv-cases/X11-screenshot-with-reply-history.eml': null,
  'adv-cases/X12-logo-with-text.eml': ['Доступ', '', 'Нужен доступ к VPN.'].join('\n'),
  'adv-cases/X13-outlook-new-mail-with-3rd-party-block.eml': [
    'Помогите',
    '',
    'Коллеги, нужно помочь клиенту.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к базе клиентов.',
  ].join('\n'),
  'adv-cases/S16-re-only-quote.eml': null,
  'adv-cases/Y01-zwsp-body.eml': null,
  'adv-cases/Y02-tnef-vnd-noname.eml': null,
  'adv-cases/Y03-picture-octet.eml': null,
  'adv-cases/Y04-utf8-labelled-cp1251.eml': 'Доступ\n\nНужен доступ к отчётам по продажам.',
  'adv-cases/Y07-outlook-in-gmail-fwd.eml': [
    'Гляньте.',
    '',
    '[Пересланное письмо]',
    'От: Anna <anna@example.test>',
    'Тема: FW: Доступ',
    'Анна: срочно.',
    '',
    '[Пересланное письмо]',
    'От: Petr Sidorov <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к CRM.',
  ].join('\n'),
  'adv-cases/Y08-outlook-signature-html.eml': 'Доступ\n\nНужен доступ к Grafana.',
  'adv-cases/Y10-koi8-all-caps.eml': 'Доступ\n\nСРОЧНО НУЖЕН ДОСТУП К ОТЧЁТАМ ПО ПРОДАЖАМ',
  'adv-cases/Y15-html-nesting-2000.eml': 'Доступ\n\nНужен доступ к Grafana.',
  'adv-cases/Z01-long-signature.eml': 'Доступ\n\nНужен доступ к VPN.',
  'adv-cases/Z02-thanks-ps.eml': 'Доступ\n\nНужен доступ к VPN.\nСпасибо!\nP.S. И ещё доступ к Jira, пожалуйста.',
  'adv-cases/Z03-thanks-question.eml': 'Доступ\n\nНужен доступ к VPN.\nСпасибо!\nА к Jira можно тоже?',
  'adv-cases/Z04-vs-prefix.eml': 'Vain lokakuu.',
  'adv-cases/Z05-raw-subject-mislabel.eml': 'Отчёты по продажам\n\nНужен доступ к отчётам по продажам.',
  'adv-cases/Z06-outlook-mac-ru-fwd.eml': [
    'Помогите.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к Metabase.',
  ].join('\n'),
  'adv-cases/W01-ios-fwd-quoted-headers.eml':
    '[Пересланное письмо]\nОт: Petr Sidorov <sidorov@example.test>\nТема: Доступ\nНужен доступ к Superset.',
  'adv-cases/W03-yandex-in-gmail.eml': [
    'Гляньте цепочку.',
    '',
    '[Пересланное письмо]',
    'От: Anna <anna@example.test>',
    'Тема: Fwd: Выгрузка',
    'Анна: срочно.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Нужна выгрузка отказов.',
  ].join('\n'),
};

const files = readdirSync(new URL('adv-cases/', FIXTURES))
  .filter((f) => f.endsWith('.eml'))
  .map((f) => `adv-cases/${f}`);
const messageIdOf = (raw: Buffer) => /^Message-ID:\s*(<[^>]+>)/im.exec(raw.toString('latin1'))![1]!;

let dovecot: DovecotServer;
let sink: SmtpSink;
let secretary: FakeSecretary;
let communicator: Running;
const raws = new Map<string, Buffer>();

beforeAll(async () => {
  dovecot = await startDovecot([USER]);
  sink = await startSmtpSink();
  secretary = await startFakeSecretary();
  communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    dovecot,
    sink,
    env: { RATE_LIMIT_PER_HOUR: '100' },
  });
  for (const file of files) {
    const raw = readFileSync(new URL(file, FIXTURES));
    raws.set(file, raw);
    await dovecot.append(raw);
  }
  await sink.waitForMails(files.length, 60_000);
}, 120_000);

afterAll(async () => {
  await communicator?.stop();
  await sink?.close();
  await secretary?.close();
  await dovecot?.destroy();
});

describe('adversarial members of each mail kind', () => {
  it('covers every fixture and answers each mail exactly once', async () => {
    expect(Object.keys(EXPECTED).sort()).toEqual([...files].sort());
    // A moment for any stray second reply to arrive before counting.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sink.mails).toHaveLength(files.length);
    await waitUntil(
      async () => (await dovecot.messages()).every((m) => m.flags.includes('\\Answered')),
      'every mail flagged answered',
    );
  });

  for (const file of files) {
    it(`${file}: the secretary's request and the reply`, () => {
      const id = messageIdOf(raws.get(file)!);
      const calls = secretary.calls.filter((c) => c.message_id === id);
      const replies: ReceivedMail[] = sink.mails.filter((m) => m.header('in-reply-to') === id);
      expect(replies).toHaveLength(1);
      const expected = EXPECTED[file];
      if (expected === null) {
        // Nothing readable: no secretary (and so no LLM) call, one polite Russian request for text.
        expect(calls).toHaveLength(0);
        expect(replies[0]!.parsed.text?.trim()).toBe(USER_MESSAGES.unreadable);
        return;
      }
      expect(calls).toHaveLength(1);
      expect(calls[0]!.request).toBe(expected);
      expect(replies[0]!.parsed.text?.trim()).toBe(`Ответ на: ${calls[0]!.request}`.trim());
      // No attribution or header line with our own address reaches the secretary.
      expect(calls[0]!.request).not.toContain('bot@example.test');
    });
  }
});

// Further members of each field-case kind (test/fixtures/s27-cases), written as the external harness does: other
// mail clients and locales (Outlook desktop/web/mobile RU+EN, Apple Mail "Начало переадресованного письма:",
// Thunderbird, Gmail, Yandex, Mail.ru, MyOffice "Пересланное сообщение", Lotus Notes "Forwarded by … on …", Zimbra,
// Roundcube "<name> писал <date>:", K-9, FairEmail), other encodings (base64, quoted-printable, windows-1251,
// koi8-r, UTF-8 with a BOM), a three-level forward chain whose outer level is an Outlook header block, a note below
// the forward, bottom posts with signatures, HTML-only mail laid out with <div>/<br>/<p>/<table>/<pre> and
// `<blockquote type=cite>`, TNEF with only a native RTF body or a windows-1251 HTML body, picture-only mail (inline
// cid image with Gmail's `[image: …]` or Outlook's `[cid:…]` placeholder, an HEIC sent as octet-stream), long
// bodies in HTML and quoted-printable windows-1251. Each goes through the real communicator: IMAP APPEND into
// Dovecot, the fake secretary records the request it received, the SMTP sink the reply sent (mail-replay.ts).
import { createServer, connect, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startDovecot, type DovecotServer } from '@workemon/testkit/dovecot';
import { startSmtpSink } from '@workemon/testkit/smtp-sink';
import { CUT_MARKER } from '../src/email/mail-request.js';
import { secretaryRequestMaxLength } from '../src/request-limit.js';
import { startFakeSecretary } from './fake-secretary.js';
import { buildEmail, startCommunicator, waitUntil } from './harness.js';
import { describeMailReplay, type ExpectedRequest } from './mail-replay.js';

/** A request with the author's note and one forwarded mail (its author, subject and text). */
const withForward = (note: string, from: string, subject: string | undefined, text: string) =>
  [note, '', '[Пересланное письмо]', `От: ${from}`, ...(subject ? [`Тема: ${subject}`] : []), text].join('\n');

/** A long body cut to the secretary's limit: its start kept, the cut marked, never over the limit. */
const cutLong = (start: string) => (request: string) => {
  expect(request.length).toBeLessThanOrEqual(secretaryRequestMaxLength());
  expect(request.length).toBeGreaterThan(secretaryRequestMaxLength() - 200);
  expect(request.startsWith(start)).toBe(true);
  expect(request.endsWith(CUT_MARKER)).toBe(true);
  // Never a half of a surrogate pair at the cut.
  expect(request).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
};

/** What the secretary must receive for each mail (mail-replay.ts ExpectedRequest). */
const EXPECTED: Record<string, ExpectedRequest> = {
  // M01: the request is the subject (behind `Fwd:`/`FW:`/`Пересл:`, in windows-1251 or koi8-r encoded words);
  // a reply's `Re[2]:` subject with nothing new says nothing.
  's27-cases/S01-fwd-subject-only.eml': 'Нужен доступ к Tableau',
  's27-cases/S02-fw-subject-signature.eml': 'Нужен отчёт по возвратам за ноябрь',
  's27-cases/S03-pereslat-subject-only.eml': 'Прошу доступ к Metabase',
  's27-cases/S04-re2-subject-only.eml': null,
  's27-cases/S05-cp1251-subject-bom.eml': 'Нужен доступ к Superset',
  's27-cases/S06-gmail-alt-empty-koi8-subject.eml': 'Нужна выгрузка чеков за неделю',
  's27-cases/S07-iphone-subject-only.eml': 'Нужен доступ к Looker',
  's27-cases/S08-yandex-mobile-subject-only.eml': 'Нужен пропуск на парковку',
  's27-cases/S09-plain-bom-subject-only-fw.eml': 'Нужен доступ к Jenkins',
  's27-cases/S10-outlook-empty-alt-signature.eml': 'Нужен доступ к Power BI',
  // M04a: every client's inline forward; the separator line never reaches the secretary.
  's27-cases/F01-apple-ru-pismo.eml': withForward(
    'Гляньте, пожалуйста.',
    'Пётр Сидоров <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Grafana на запись.',
  ),
  's27-cases/F02-outlook-web-ru-underscores.eml': withForward(
    'Коллеги, помогите.',
    'Сидоров Пётр <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Airflow.',
  ),
  's27-cases/F03-zimbra-ru.eml': withForward(
    'Посмотрите.',
    '"Сидоров Пётр" <sidorov@example.test>',
    'Реестр',
    'Нужен реестр возвратов за октябрь.',
  ),
  's27-cases/F04-zimbra-en.eml': withForward(
    'FYI, please help.',
    '"Petr Sidorov" <sidorov@example.test>',
    'Access',
    'Нужен доступ к Vault.',
  ),
  's27-cases/F05-lotus-notes-en.eml': withForward(
    'Помогите.',
    'Petr Sidorov <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к SAP.',
  ),
  's27-cases/F06-roundcube-ru.eml': withForward(
    'Гляньте.',
    'Сидоров Пётр <sidorov@example.test>',
    'Отчёт',
    'Нужен отчёт по чекам.',
  ),
  's27-cases/F07-k9-ru.eml': withForward(
    'Помоги.',
    'Сидоров Пётр <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к ClickHouse.',
  ),
  's27-cases/F08-fairemail-en.eml': withForward(
    'See below.',
    'Petr Sidorov <sidorov@example.test>',
    'Access',
    'Нужен доступ к Redash.',
  ),
  's27-cases/F09-outlook-mobile.eml': withForward(
    'Смотри ниже.',
    'Petr Sidorov <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Jenkins.',
  ),
  's27-cases/F10-myoffice.eml': withForward(
    'Коллеги, прошу помочь.',
    'Сидоров Пётр <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к GitLab.',
  ),
  // The note written below the forward's end line still reaches the secretary.
  's27-cases/F11-note-below-yandex.eml': withForward(
    'Коллеги, это срочно, к понедельнику.',
    'Сидоров Пётр <sidorov@example.test>',
    undefined,
    'Нужна выгрузка отказов по картам.',
  ),
  // Outlook (header block, no separator) forwarding a Gmail forward of a Yandex forward: every level kept.
  's27-cases/F12-nested-three.eml': [
    withForward('Ещё раз пересылаю.', 'Анна <anna@example.test>', 'Fwd: Пересл: Доступ', 'Анна: смотри ниже.'),
    '',
    '[Пересланное письмо]',
    'От: Борис <boris@example.test>',
    'Тема: Пересл: Доступ',
    'Борис: надо сделать.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Нужен доступ к Kafka UI.',
  ].join('\n'),
  's27-cases/F13-gmail-fwd-cp1251-qp.eml': withForward(
    'Посмотри, пожалуйста.',
    'Пётр Сидоров <sidorov@example.test>',
    'Отчёт',
    'Нужен отчёт по возвратам за декабрь.',
  ),
  's27-cases/F14-mailru-koi8-base64.eml': withForward(
    'Помогите.',
    'Сидоров Пётр <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Zabbix на чтение.',
  ),
  's27-cases/F15-outlook-en-sent-bom-base64.eml': withForward(
    'Please help.',
    'Petr Sidorov <sidorov@example.test>',
    'Access',
    'Нужен доступ к Sentry на запись.',
  ),
  // Apple Mail's HTML forward: the whole forward inside <blockquote type="cite">, one <div> per header line.
  's27-cases/F16-apple-ru-pismo-html.eml': withForward(
    'Посмотрите ниже.',
    'Пётр Сидоров <sidorov@example.test>',
    'Реестр',
    'Нужен реестр платежей за ноябрь.',
  ),
  // Header blocks with the fields some clients add (Importance/"Важность:", Attachments/"Вложения:", Reply-To,
  // Organization) and To/Cc lists wrapped over two lines: none of it is the forwarded mail's text.
  's27-cases/F17-outlook-ru-importance-attachments.eml': withForward(
    'Коллеги, посмотрите договор.',
    'Сидоров Пётр <sidorov@example.test>',
    'Договор',
    'Нужно согласовать договор до пятницы.',
  ),
  's27-cases/F18-outlook-en-wrapped-to.eml': withForward(
    'Please help.',
    'Petr Sidorov <sidorov@example.test>',
    'Access',
    'Нужен доступ к Looker Studio.',
  ),
  's27-cases/F19-thunderbird-en-replyto-org.eml': withForward(
    'See below.',
    'Petr Sidorov <sidorov@example.test>',
    'Access',
    'Нужен доступ к Mattermost.',
  ),
  's27-cases/F20-apple-en-replyto.eml': withForward(
    'Смотрите ниже.',
    'Petr Sidorov <sidorov@example.test>',
    'Реестр',
    'Нужен реестр отказов за ноябрь.',
  ),
  // Thunderbird's HTML forward puts the header block in a <table> with <th> labels.
  's27-cases/F21-thunderbird-html-headers-table.eml': withForward(
    'Помогите, пожалуйста.',
    'Petr Sidorov <sidorov@example.test>',
    'Access',
    'Нужен доступ к Nexus.',
  ),
  's27-cases/F22-outlook-ru-mailto-2010.eml': withForward(
    'Помогите.',
    'Сидоров Пётр <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Bitbucket.',
  ),
  's27-cases/F23-yandex-html-forward.eml': withForward(
    'Коллеги, срочно.',
    'Сидоров Пётр <sidorov@example.test>',
    undefined,
    'Нужна выгрузка чарджбэков за ноябрь.',
  ),
  's27-cases/F24-mailru-html-forward-nbsp.eml': withForward(
    'Помогите.',
    'Сидоров Пётр <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Superset на запись.',
  ),
  // Outlook's FW of a FW: two header blocks, no separator line; the inner block is a forward too (its subject).
  's27-cases/F25-outlook-fw-of-fw-ru.eml': [
    withForward('Ещё раз, помогите.', 'Анна <anna@example.test>', 'FW: Доступ', 'Анна: срочно.'),
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к Harbor.',
  ].join('\n'),
  // Gmail's plain-text part of a forwarded Outlook mail: bold labels as `*From:*`.
  's27-cases/F26-gmail-plain-bold-outlook-block.eml': withForward(
    'Посмотри.',
    'Petr Sidorov <sidorov@example.test>',
    'Access',
    'Нужен доступ к Argo CD.',
  ),
  // What the fixes above must leave alone: the author's own "Клиент писал <date> <time>:" above the client's words
  // (no quote follows), a "Важность: …" sentence opening the forwarded text (a blank line after the header block),
  // a reply quoting an earlier forward (history, however its separator is quoted).
  's27-cases/J01-own-line-pisal-date.eml': [
    'Жалоба',
    '',
    'Добрый день!',
    'Клиент писал 20.11.2026 в 10:05:',
    'Оплата картой не проходит третий день.',
    'Проверьте, пожалуйста.',
  ].join('\n'),
  's27-cases/J02-own-line-pisal-iso.eml': [
    'Жалоба',
    '',
    'Добрый день!',
    'Клиент писал 2026-11-20 10:05:',
    'Оплата картой не проходит третий день.',
    'Проверьте, пожалуйста.',
  ].join('\n'),
  's27-cases/J03-own-line-to-after-fwd.eml': withForward(
    'Помогите.',
    'Petr Sidorov <sidorov@example.test>',
    'Доступ',
    'Важность: высокая, нужно сегодня.\nНужен доступ к Kibana.',
  ),
  // A link to a picture in angle brackets is the author's text, not Outlook for Mac's `<image001.png>` placeholder.
  's27-cases/J06-own-link-to-png.eml':
    'Wiki\n\nВот схема:\n<https://wiki.example.test/schema.png>\nНужен доступ к wiki на запись.',
  's27-cases/J04-reply-quoting-a-forward.eml': 'Спасибо, доступ появился.',
  's27-cases/J05-reply-quoting-forward-first.eml': 'Уже не нужно, спасибо.',
  // M05: forward as message/rfc822 (or message/global, RFC 6532), the inner mail in other encodings.
  's27-cases/R05-message-global.eml': withForward(
    'Пересылаю.',
    'Пётр Сидоров <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Graylog.',
  ),
  's27-cases/R01-rfc822-inner-cp1251-base64.eml': withForward(
    'Пересылаю, помогите.',
    'Сидоров Пётр <sidorov@example.test>',
    'Доступ к Kibana',
    'Нужен доступ к Kibana на чтение.',
  ),
  's27-cases/R02-rfc822-base64-wrapped.eml': withForward(
    'См. вложение.',
    'Petr Sidorov <sidorov@example.test>',
    'Access',
    'Нужен доступ к Vault на запись.',
  ),
  's27-cases/R03-rfc822-inner-html-table.eml':
    '[Пересланное письмо]\nОт: Anna <anna@example.test>\nТема: Report\nНужен отчёт:\n\nПериод Ноябрь\nРазрез по дням',
  's27-cases/R04-rfc822-outlook-item-note-below.eml': withForward(
    'Это срочно, помогите.',
    'Сидоров <sidorov@example.test>',
    'Доступ',
    'Нужен доступ к Confluence.',
  ),
  // M06: the answer below the quoted question, signatures below it dropped.
  's27-cases/B01-thunderbird-ru-bottom-sig.eml': 'За ноябрь, по неделям.',
  's27-cases/B02-k9-bottom.eml': 'Только возвраты по картам.',
  's27-cases/B03-mailru-bottom-sig.eml': 'Да, по дням.',
  's27-cases/B04-thunderbird-html-bottom.eml': 'Альфа и Тинькофф.',
  's27-cases/B05-roundcube-ru-bottom.eml': 'Нет, только успешные.',
  's27-cases/B06-roundcube-html-bottom.eml': 'CSV, пожалуйста.',
  's27-cases/B07-outlook-interleaved-ru.eml': 'Ответы ниже.',
  's27-cases/B08-gmail-bottom-ru-wrapped.eml': 'Только b2c.',
  's27-cases/B09-bottom-two-levels.eml': 'За октябрь и ноябрь.',
  // M07: every client's attribution form (wrapped over two or three lines too) and unmarked history.
  's27-cases/A01-gmail-en-three-lines.eml': 'Нужны только отказы.',
  's27-cases/A02-yandex-wrapped.eml': 'Только переводы.',
  's27-cases/A03-outlook-mac-en.eml': 'Only refunds.',
  's27-cases/A04-german-am-schrieb.eml': 'Nur Rückerstattungen.',
  's27-cases/A05-roundcube-en.eml': 'Only card payments.',
  's27-cases/A06-roundcube-ru-top.eml': 'Только по картам Мир.',
  's27-cases/A07-myoffice-attribution.eml': 'За последнюю неделю.',
  // Lotus Notes puts the author's name above its history block; the name is the author's own text.
  's27-cases/A08-lotus-notes-ru-history.eml': 'Только возвраты.\n\nИван Петров',
  's27-cases/A09-outlook-mobile-reply.eml': 'Только возвраты.',
  's27-cases/A10-zimbra-reply-ru.eml': 'Только переводы между кошельками.',
  's27-cases/A11-outlook-mailto-history-ru.eml': 'Только возвраты.',
  's27-cases/A12-french-a-ecrit.eml': 'Seulement les remboursements.',
  's27-cases/A13-outlook-ios-attribution.eml': 'Только по кошелькам.',
  // M08: HTML-only mail: cells apart, entities decoded, quotes and signatures removed.
  's27-cases/H01-gmail-divs-quote.eml': 'Добрый день!\n\nНужны возвраты по картам,\nза ноябрь.',
  's27-cases/H02-apple-blockquote-cite.eml': 'Только переводы.',
  's27-cases/H03-outlook-cp1251-qp-table.eml':
    'Заявка\n\nПрошу выдать доступ:\n\nСистема Роль\nJira читатель\nConfluence редактор',
  's27-cases/H04-mailru-layout-table-koi8-base64.eml': 'Доступ\n\nНужен доступ к BI-отчётам.',
  's27-cases/H05-yandex-divs-br.eml': 'Выгрузка\n\nДобрый день!\n\nНужна выгрузка:\n— платежей;\n— возвратов.',
  's27-cases/H06-table-th-multiline-cells.eml':
    'Отчёт\n\nНужен отчёт в таком виде:\n\nПериод Метрика\nОктябрь 2026 Число отказов\nНоябрь 2026 Сумма «возвратов»',
  's27-cases/H07-outlook-web-reply-html.eml': 'Только по кошелькам b2c.',
  's27-cases/H08-roundcube-html-top.eml': 'Только успешные операции.',
  's27-cases/H09-html-pre-log.eml': [
    'Ошибка',
    '',
    'Выгрузка падает:',
    '',
    '2026-11-20 10:00:00 ERROR auth-export timeout',
    '2026-11-20 10:00:01 ERROR auth-export timeout',
    '',
    'Помогите.',
  ].join('\n'),
  's27-cases/H11-html-ol-list.eml': 'Доступы\n\nНужны доступы:\n 1. Jira\n 2. Confluence',
  's27-cases/H12-html-br-only-yandex.eml': 'Доступ\n\nДобрый день!\n\nНужен доступ к Sentry.',
  's27-cases/H13-mailru-html-bottom.eml': 'Только Сбер.',
  's27-cases/H14-gmail-html-bottom.eml': 'Только Альфа.',
  's27-cases/H10-html-utf8-bom-base64.eml': 'Доступ\n\nНужен доступ к Kibana.\n\nИван',
  // M09: TNEF whose only body is Outlook's native RTF, Unicode PR_BODY, windows-1251 PR_BODY_HTML, encapsulated HTML.
  's27-cases/T01-tnef-native-rtf-cp1251.eml': 'Отчёт\n\nДобрый день!\n\nНужен отчёт по отказам за неделю.',
  's27-cases/T02-tnef-native-rtf-unicode.eml': 'Доступ\n\nНужен доступ:\nJira читатель',
  's27-cases/T03-tnef-body-unicode.eml': 'Возвраты\n\nНужна выгрузка возвратов за декабрь.',
  's27-cases/T04-tnef-html-cp1251.eml': 'Доступ\n\nНужен доступ к Grafana на чтение.',
  's27-cases/T05-tnef-fromhtml-cp1251.eml': 'Реестр\n\nНужен реестр чеков за ноябрь.',
  // LZFu-compressed native RTF (as Outlook writes it) with a table, beside a PR_BODY of only a line break.
  's27-cases/T06-tnef-lzfu-native-rtf-table.eml': 'Выгрузка\n\nПрошу выгрузку:\nПериод Ноябрь 2026\nРазрез по дням',
  // Native RTF whose only content is a picture (a pasted screenshot in Outlook's Rich Text mode): unreadable; with
  // text, the picture data, the document info and the page header are no part of it.
  's27-cases/T07-tnef-native-rtf-picture-only.eml': null,
  's27-cases/T08-tnef-native-rtf-text-picture-header.eml':
    'Ошибка входа\n\nПри входе в CRM ошибка:\n\nПомогите, пожалуйста.',
  // M09: a picture is all the mail says: no secretary call, the polite request for text.
  's27-cases/P01-inline-cid-only.eml': null,
  's27-cases/P02-heic-octet.eml': null,
  's27-cases/P03-heic-iphone-footer.eml': null,
  's27-cases/P04-reply-picture-history.eml': null,
  's27-cases/P05-alt-inline-gmail.eml': null,
  's27-cases/P06-outlook-alt-inline.eml': null,
  // Outlook for Mac's `<image001.png>` placeholder; Apple's U+FFFC where the picture was.
  's27-cases/P08-outlook-mac-image-placeholder.eml': null,
  's27-cases/P09-apple-object-replacement.eml': null,
  // A picture beside text: the text is the request, the placeholder line is not.
  's27-cases/P07-outlook-cid-placeholder-with-text.eml':
    'Ошибка входа\n\nПри входе в CRM вот такая ошибка:\n\nПомогите, пожалуйста.',
  // M12: long bodies in HTML and quoted-printable windows-1251 are cut to the limit and answered.
  's27-cases/L01-long-html-table.eml': cutLong(
    'Ошибка выгрузки\n\nВыгрузка падает, лог ниже.\n\n2026-11-20 10:00:00 ERROR auth-export wallet=0 timeout\n',
  ),
  's27-cases/L02-long-cp1251-qp.eml': cutLong(
    'Ошибка выгрузки\n\nВыгрузка падает, лог ниже.\n2026-11-20 10:00:00 ОШИБКА выгрузка кошелёк=0 таймаут\n',
  ),
  // A 13,000-character subject and nothing else: the subject is the request, whole (it is under the limit).
  's27-cases/L04-long-subject-only.eml': `Нужна выгрузка ${'по кошелькам и картам '.repeat(600)}`.trim(),
  's27-cases/L05-long-rfc822-forward.eml': cutLong(
    'Смотрите лог во вложении.\n\n[Пересланное письмо]\nОт: ops@example.test\nТема: Log\n' +
      '2026-11-20 10:00:00 ERROR payments wallet=0 declined\n',
  ),
  's27-cases/L03-long-html-divs-emoji.eml': cutLong('Лог ниже 👇\n2026-11-20 10:00:00 ERROR 😀 wallet=0\n'),
};

describeMailReplay('s27: further members of each mail kind', ['s27-cases'], EXPECTED);

/**
 * A TCP proxy to Dovecot that goes silent like a dead middlebox (no FIN, no RST, nothing forwarded either way) on
 * the first connection whose client sends a command matching `trigger`: the command reaches the server, and of
 * the server's answer only what `pass` lets through: `{ until }` passes server data up to and including a chunk
 * matching it (IDLE's `+ idling`), `{ bytes }` the first bytes (an answer cut inside its literal). Later
 * connections are forwarded normally.
 */
async function startSilencingProxy(targetPort: number, trigger: RegExp, pass: { until?: RegExp; bytes?: number } = {}) {
  const held: Socket[] = [];
  let count = 0;
  let fired = false;
  const server = createServer((client) => {
    count += 1;
    const upstream = connect(targetPort, '127.0.0.1');
    held.push(client, upstream);
    let state: 'open' | 'passing' | 'frozen' = 'open';
    let budget = pass.bytes ?? 0;
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    client.on('data', (d: Buffer) => {
      if (state === 'frozen') return;
      upstream.write(d);
      if (fired || !trigger.test(d.toString('latin1'))) return;
      fired = true;
      state = pass.until || pass.bytes ? 'passing' : 'frozen';
    });
    upstream.on('data', (d: Buffer) => {
      if (state === 'frozen') return;
      if (state === 'open') {
        client.write(d);
        return;
      }
      if (pass.until) {
        client.write(d);
        if (pass.until.test(d.toString('latin1'))) state = 'frozen';
        return;
      }
      client.write(d.subarray(0, budget));
      budget -= Math.min(budget, d.length);
      if (budget === 0) state = 'frozen';
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => count,
    fired: () => fired,
    close: async () => {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// M14: the IMAP connection dies silently at other moments than the field case (which froze it between commands):
// while IDLE is running, while the body is being fetched (no answer, or an answer cut inside its literal), and
// while the reply's \Seen is being stored. Each time the mail is answered once, within a few sweep intervals (2 s
// here; the socket's own timeout is 5 minutes), on a new connection.
describe('s27: the IMAP connection goes silent at other moments (M14)', () => {
  const USERS = Array.from({ length: 8 }, (_, i) => ({ user: `drop${i}@example.test`, password: `pw-drop-${i}` }));
  let dovecot: DovecotServer;
  let nextUser = 0;
  const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];

  beforeAll(async () => {
    dovecot = await startDovecot(USERS);
  }, 60_000);
  afterEach(async () => {
    for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
  });
  afterAll(async () => {
    await dovecot?.destroy();
  });

  // `opening`: the silence hits the first session while it opens (no session before it, so no reconnect counted).
  const cases: Array<{ name: string; trigger: RegExp; pass?: { until?: RegExp; bytes?: number }; opening?: true }> = [
    { name: 'during the SELECT of the first session', trigger: /^\S+ SELECT /im, opening: true },
    { name: 'during the LOGIN of the first session', trigger: /^\S+ (LOGIN|AUTHENTICATE) /im, opening: true },
    { name: 'during IDLE (after the server said "+ idling")', trigger: /^\S+ IDLE\r?$/m, pass: { until: /^\+ /m } },
    { name: 'during the FETCH of the body (no answer at all)', trigger: /^\S+ UID FETCH .*BODY\.PEEK\[\]/im },
    {
      name: 'during the FETCH of the body (answer cut inside the literal)',
      trigger: /^\S+ UID FETCH .*BODY\.PEEK\[\]/im,
      pass: { bytes: 120 },
    },
    { name: "during the STORE of the reply's \\Seen", trigger: /^\S+ UID STORE .*\\Seen/im },
  ];

  for (const { name, trigger, pass, opening } of cases) {
    it(`answers once on a new connection when the server stops answering ${name}`, async () => {
      const user = USERS[nextUser++]!.user;
      const messageId = `<s27-drop-${nextUser}@example.test>`;
      const body = `Нужна статистика отказов, вариант ${nextUser}.\n${'Подробности запроса. '.repeat(20)}`;
      const mail = buildEmail({ from: 'idle3@example.test', subject: 'drop', messageId, body });
      // A session that hangs while it opens: the mail waits in the mailbox from the start.
      if (opening) await dovecot.append(mail, { user });
      const proxy = await startSilencingProxy(dovecot.port, trigger, pass);
      const sink = await startSmtpSink();
      const secretary = await startFakeSecretary();
      open.push(sink, secretary, proxy);
      const c = await startCommunicator({
        secretaryUrl: secretary.url,
        dovecot: { ...dovecot, port: proxy.port },
        user,
        sink,
        env: { IMAP_SWEEP_INTERVAL_S: '2' },
      });
      open.push(c);
      if (!opening) {
        await waitUntil(() => c.email!.health().lastSweepAt !== undefined, 'first sweep');
        await dovecot.append(mail, { user });
      }
      const [reply] = await sink.waitForMails(1, 20_000);
      // The reply's \Seen is stored after the reply is sent: the trigger may fire a moment after it arrives.
      await waitUntil(() => proxy.fired(), 'the server silenced at the trigger');
      expect(reply!.header('in-reply-to')).toBe(messageId);
      expect(secretary.calls).toHaveLength(1);
      expect(secretary.calls[0]!.request).toContain(`Нужна статистика отказов, вариант ${nextUser}.`);
      // The mail ends flagged answered on the server (a lost flag write is applied after the reconnect) ...
      await waitUntil(
        async () => (await dovecot.messages({ user })).every((m) => m.flags.includes('\\Answered')),
        'the mail flagged answered',
      );
      // ... and is not answered again by the sweeps that follow.
      const sweeps = c.email!.health().lastSweepAt!;
      await waitUntil(() => c.email!.health().lastSweepAt! > sweeps + 2000, 'two more sweeps');
      expect(sink.mails).toHaveLength(1);
      expect(proxy.connections()).toBeGreaterThanOrEqual(2);
      expect(
        await c.metric('workemon_channel_poll_errors_total', { channel: 'email', kind: 'timeout' }),
      ).toBeGreaterThanOrEqual(1);
      expect(await c.metric('workemon_imap_reconnects_total')).toBeGreaterThanOrEqual(opening ? 0 : 1);
      expect(c.email!.health().connected).toBe(true);
    }, 60_000);
  }
});

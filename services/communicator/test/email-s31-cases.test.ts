// Session 31's break attempts: more members of the mail field-case kinds (test/fixtures/s31-cases), replayed through
// the real communicator (mail-replay.ts: IMAP APPEND into Dovecot, the fake secretary records the request, the SMTP
// sink the reply). The cases marked "failed before" went wrong before the fixes they came with; the others passed and
// stay as members of their kinds.
import { describeMailReplay, holds, type ExpectedRequest } from './mail-replay.js';

const OUR_QUESTION = 'Уточните, пожалуйста';

const EXPECTED: Record<string, ExpectedRequest> = {
  // M06/M07, failed before: The Bat! quotes with the author's initials ("W> "), not '>'.
  's31-cases/A01-thebat-initials-quote-bottom.eml': holds(
    ['За октябрь 2026, по дням.'],
    ['W>', 'Вы писали', OUR_QUESTION],
  ),
  // M07, failed before: Gmail's attribution in Ukrainian ("… <bot@example.test> пише:").
  's31-cases/A02-gmail-uk-locale-pyshe.eml': 'Только возвраты по картам, без переводов.',
  // M07/M06, failed before: Outlook's unmarked header block in Ukrainian ("Від:/Надіслано:/Кому:/Тема:").
  's31-cases/A03-outlook-uk-locale-vid-nadislano.eml': holds(
    ['Тільки повернення по картках, за жовтень.'],
    ['Від:', 'Уточните'],
  ),
  // M06 ("never lose new text"), failed before: a dated sentence of a new mail ending in an address and a colon is
  // the author's text, not an attribution.
  's31-cases/B01-new-mail-dated-address-colon.eml': holds([
    'Пересылка почты отдела продаж',
    'прошу перенаправлять входящую почту с sales@example.test:',
    'заявки с сайта на ivan.petrov@example.test',
    'Старую пересылку на olga@example.test отключить.',
  ]),
  's31-cases/B02-thunderbird-html-interleaved.eml': holds(
    ['С 1 по 20 ноября.', 'Нет, только успешные.', 'CSV, разделитель — точка с запятой.'],
    [OUR_QUESTION],
  ),
  // Non-UTF-8 charsets, C01 failed before: Apple Mail's `x-mac-cyrillic` label (iconv-lite knows it as maccyrillic).
  's31-cases/C01-apple-mail-x-mac-cyrillic.eml': holds([
    'Выгрузка эквайринга по MCC',
    'Добрый день!',
    'Подскажите, пожалуйста, как получить выгрузку эквайринга за ноябрь по всем ТСП в разрезе MCC.',
  ]),
  's31-cases/C02-cp866-plain.eml': holds(['Сброс пароля', 'Прошу сбросить пароль к кассовому модулю для кассы №3']),
  // M04a, F01 failed before: Outlook forwards a colleague of the organisation by name alone, under a subject the
  // forwarder wrote.
  's31-cases/F01-outlook-ru-fwd-subject-rewritten-name-only.eml': holds([
    'Коллеги, Пётр просит выгрузку, сделайте, пожалуйста.',
    'От: Сидоров Пётр Андреевич',
    'Нужна выгрузка возвратов по картам за октябрь с разбивкой по дням.',
  ]),
  's31-cases/F02-zimbra-ru-html-forward-otpravlennye.eml': holds(
    ['Посмотрите, пожалуйста, это к вам.', 'Нужен реестр отказов по картам Мир за ноябрь'],
    ['Отправленные:'],
  ),
  's31-cases/F03-outlook-en-fw-lastname-comma-no-address.eml': holds([
    'FYI, please handle.',
    'Could you get me the card refunds report for October',
  ]),
  // M05: a forward attached two levels deep, with a picture and a spreadsheet beside it.
  's31-cases/F04-rfc822-nested-multipart-two-levels.eml': holds([
    'Пересылаю цепочку, помогите с доступом.',
    'Ниже письмо Ольги, нужно дать доступ до понедельника.',
    'Прошу открыть доступ к отчёту "Авторизации b2c" в Tableau для отдела рисков.',
    'staff.xlsx',
  ]),
  's31-cases/F05-thunderbird-en-fwd-of-outlook-ru-fw-koi8.eml': holds([
    'Forwarding what Sergey sent me, see the request at the bottom.',
    'Иван, это тебе.',
    'Нужен доступ на чтение к ClickHouse, база payments_dwh',
  ]),
  's31-cases/F06-roundcube-en-html-forward.eml': holds([
    'Please see below, this came to me by mistake.',
    'I need the list of merchant chargebacks for November, with amounts and reason codes.',
  ]),
  // M08: HTML-only mail from other clients (Outlook's conditional comments and lists, a charset in <meta> only,
  // Zimbra's reply, numeric character references).
  's31-cases/H01-outlook-html-msolist-conditionals-1251.eml': holds(
    ['1. Возвраты по картам — по дням;', '3. Чарджбэки — с кодами причин.', 'Срок — до 25.11.'],
    ['mso', '<!--', 'supportLists'],
  ),
  's31-cases/H02-html-meta-charset-only-base64.eml': holds([
    'Прошу выгрузить список терминалов, по которым в ноябре не было ни одной операции.',
    'Регион Москва и МО',
  ]),
  's31-cases/H03-zimbra-ru-html-reply.eml': 'Только по картам Мир, за октябрь.',
  's31-cases/H04-outlook-html-usascii-ncr-table.eml': holds([
    'Коллеги, нужна сверка:',
    'Период 01.11–20.11',
    'Расхождения больше 1 000 ₽ — отдельным списком.',
  ]),
  // M12, failed before: a log line ending in "to <address>:" cut the pasted log away silently; now the log is cut at
  // the secretary's limit, with the marker.
  's31-cases/L01-long-log-address-colon-line.eml': holds([
    'Лог сервиса рассылки ниже, посмотрите, пожалуйста.',
    'javax.mail.MessagingException',
    '[…письмо обрезано',
  ]),
  // M09: a picture alone (a .jfif sent as application/octet-stream) in a reply: unreadable, no secretary call.
  's31-cases/P01-reply-photo-jfif-octet-stream.eml': null,
  // M01: the subject is the request; a body that is only a signature (Outlook's automatic one, a '-- ' block) adds
  // nothing to it.
  's31-cases/S01-subject-only-outlook-html-auto-signature.eml': 'Нужен доступ к Zabbix на чтение',
  's31-cases/S02-subject-only-thunderbird-koi8-sig.eml': 'Выгрузка СБП-переводов за ноябрь',
};

describeMailReplay('s31: more members of the mail field-case kinds', ['s31-cases'], EXPECTED);

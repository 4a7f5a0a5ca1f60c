// Session 37: mail kinds still mishandled after session 36, replayed through Dovecot and the SMTP sink
// (docs/communicator.md, "What the request text keeps"). Each file failed before its change.
// - A files: attribution lines of clients the patterns did not know, each naming our address, reached the LLM above
//   or below the answer: Mutt's and LKML's `* Name <addr> [date]:`, Gnus' and Mutt's `Name <addr> writes:`, Sup's
//   and alot's `Excerpts from Name's message of date:`, and Gmail's attribution wrapped over three lines by a long
//   display name (s37 reply review).
// - F files: forwards of a client the splitter did not know, and fields it read as text or text it read as fields:
//   The Bat!'s "This is a forwarded message" and `===8<===` lines, Yandex's "Кому: …;" / "Тема: …;" lines under the
//   author line (our own address among the recipients, F39), and an Outlook forward of a memo whose text opens with
//   "Кому:" / "Дата:" below the blank line that ends the header block (s37 forward review).
// - H files: text the reader never sees (a web form's `display:none` block holding a forged instruction to the model)
//   reached the secretary (mail-html-s37.test.ts has the other spellings of hidden).
// - P files: the author's own lines that look like a header block ("From: accounting / Sent: every Monday" as an
//   answer; a colleague's mail header pasted with no line introducing it, the request under it) were taken for the
//   quoted history: cut with the request, or the whole mail read as "no text". Outlook's Sent field always holds a
//   date; in a mail that answers ours, a block of someone else above our mail's head is one the author pasted.
// - V files: the s37 review of the changes above, each right before them and wrong after their first version: the
//   author quoting "This is a forwarded message" (a separator only above a From line), three unformatted phones under
//   a bare rule (a signature), a Yandex forward of a memo opening "Кому: отдел кадров;" (Yandex's recipient line
//   names an address).
// - N files: a list of bare numbers (operations, accounts, cards) under a bare rule was read as a signature's phone
//   numbers and cut with the rule. Three or more bare numbers, or two of which one is not shaped like a phone, are
//   data; two unformatted phones under a rule are still a signature (N03).
import { describeMailReplay, type ExpectedRequest } from './mail-replay.js';

const D = 's37-cases/';

const EXPECTED: Record<string, ExpectedRequest> = {
  [`${D}P-G08-gmail-ru-top-from-header-as-content.eml`]: [
    'За октябрь 2026, CSV. Письмо с выгрузкой пусть приходит так, чтобы его поймал наш фильтр',
    'From: accounting@example.test',
    'Subject: Выгрузка операций',
    'и без архива, файл отдельным вложением.',
  ].join('\n'),
  [`${D}P-G09-gmail-en-top-from-accounting-content.eml`]: [
    'From: accounting',
    'Sent: every Monday',
    'Period: October 2026, CSV.',
  ].join('\n'),
  [`${D}P-G15-gmail-ru-pasted-header-no-intro-request-below.eml`]: [
    'За октябрь 2026, CSV. И вот это письмо бухгалтерии до нас не дошло',
    'From: accounting@example.test',
    'Sent: Thursday, November 19, 2026 6:12 PM',
    'Subject: Реестр операций за октябрь',
    'проверьте, пожалуйста, почему.',
  ].join('\n'),
  [`${D}P-O08-outlook-en-new-text-looks-like-header.eml`]: [
    'From: accounting',
    'Sent: to treasury every Monday',
    'Period: October 2026, CSV.',
  ].join('\n'),
  [`${D}A-B06-mutt-star-attribution-interleaved.eml`]: 'За октябрь 2026.\nCSV.',
  [`${D}A-B07-gnus-writes-bottom.eml`]: 'За октябрь 2026, CSV.',
  [`${D}A-B08-mutt-writes-attribution-top.eml`]: 'За октябрь 2026, CSV.',
  [`${D}A-C02-lkml-star-attribution-bottom.eml`]: 'За октябрь 2026, CSV.',
  [`${D}A-C03-sup-excerpts-from-bottom.eml`]: 'За октябрь 2026, CSV.',
  [`${D}A-G14-gmail-ru-attribution-three-lines.eml`]: 'За октябрь 2026, CSV.',
  [`${D}F-F18-thebat-en-forwarded-message-1251.eml`]: [
    'Здравствуйте, коллеги.',
    '',
    'Помогите, пожалуйста, с письмом ниже.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Отчёт по чарджбэкам',
    'Иван, добрый вечер.',
    '',
    'Нужен отчёт по чарджбэкам за ноябрь по всем мерчантам с суммой больше',
    '10 000 руб., в разрезе кодов причин.',
  ].join('\n'),
  [`${D}F-F33-thebat-en-forward-no-inner-signature.eml`]: [
    'Добрый день.',
    '',
    'Перешлите, пожалуйста, в эквайринг.',
    '',
    '[Пересланное письмо]',
    'От: Орлова Мария <orlova.m@example.test>',
    'Тема: Возврат по терминалу 20041177',
    'Прошу сделать возврат 3 500 руб. по операции RRN 532418776120 от 19.11.2026,',
    'терминал 20041177, покупатель отказался от товара.',
  ].join('\n'),
  [`${D}F-F36-outlook-ru-plain-memo-body-starts-with-fields.eml`]: [
    'Коллеги, прошу исполнить.',
    '',
    '[Пересланное письмо]',
    'От: Канцелярия <office@example.test>',
    'Тема: Служебная записка 1187',
    'Кому: отдел сопровождения',
    'Дата: 20.11.2026',
    'Срок: 25.11.2026',
    '',
    'Прошу заблокировать доступ в личный кабинет для уволенного сотрудника Смирнова А. В. (логин asmirnov) и отозвать его API-ключи.',
    '',
    'Канцелярия',
  ].join('\n'),
  [`${D}F-F38-yandex-web-author-line-then-to-subject-lines.eml`]: [
    'Коллеги, помогите, пожалуйста, с запросом ниже.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Тема: Выгрузка',
    'Нужна выгрузка авторизаций по кошелькам b2c за октябрь с разбивкой по дням.',
  ].join('\n'),
  [`${D}F-F39-yandex-web-forwarded-mail-was-to-bot.eml`]: [
    'Ответа так и не было, посмотрите, пожалуйста.',
    '',
    '[Пересланное письмо]',
    'От: Орлова Мария <orlova.m@customer.example>',
    'Тема: Акт сверки за октябрь',
    'Добрый день! Пришлите, пожалуйста, акт сверки за октябрь по договору 118/25.',
  ].join('\n'),
  [`${D}H-H03-webform-html-display-none-script.eml`]: [
    'Сброс пароля',
    '',
    'Здравствуйте!',
    'Прошу сбросить пароль от личного кабинета.',
  ].join('\n'),
  [`${D}N01-thunderbird-ru-rule-operation-numbers.eml`]: [
    'Не прошли операции',
    '',
    'Добрый день!',
    '',
    'Проверьте, пожалуйста, операции, они не прошли:',
    '---',
    '100200300400',
    '100200300401',
    '100200300402',
  ].join('\n'),
  [`${D}N02-thunderbird-ru-dashdash-card-numbers-question.eml`]: [
    'Счета',
    '',
    'Добрый день!',
    '',
    'Не прошли операции по двум счетам',
    '',
    '--',
    '4081781000001234',
    '4081781000001299',
    '',
    'Что с ними?',
  ].join('\n'),
  [`${D}N03-thunderbird-ru-dashdash-two-bare-phones-signature.eml`]: [
    'Отчёт по лимитам',
    '',
    'Нужен отчёт по лимитам за ноябрь.',
  ].join('\n'),
  [`${D}V-b1-tb-en-author-line-this-is-a-forwarded-message.eml`]: [
    'Question',
    '',
    'Hi,',
    '',
    "When a customer's mail reaches us with the line",
    '',
    'This is a forwarded message',
    '',
    'at the top, our filter drops it. Please check the filter rules and tell me how to fix it.',
    '',
    'Mark',
  ].join('\n'),
  [`${D}V-n3-tb-dashdash-no-space-three-phones.eml`]: [
    'Отчёт',
    '',
    'Добрый день!',
    '',
    'Пришлите, пожалуйста, отчёт по продажам за октябрь.',
  ].join('\n'),
  [`${D}V-y1-yandex-fwd-memo-lines-with-semicolons.eml`]: [
    'Коллеги, обработайте, пожалуйста.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Кому: отдел кадров;',
    'Тема: отпуск Сидорова П. с 01.12.2026;',
    '',
    'Прошу оформить отпуск на 14 дней.',
  ].join('\n'),
};

describeMailReplay('session 37 mail cases', ['s37-cases'], EXPECTED);

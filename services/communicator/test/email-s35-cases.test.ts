// Session 35: the holes the s34 mail reviews left open (their A, D, M, Q and TG files), each as a kind, replayed
// through Dovecot and the SMTP sink (docs/communicator.md, "What the request text keeps"). Every file here failed
// before the change. By kind:
// - M01 — a reply's subject as a client changed it was read as a new request, so the old request ran again: The
//   Bat! writing KOI8-R turns «»/— into "/- (D01), Outlook cuts a subject to 255 characters (D02), windows-1251
//   turns … into ... above new text in the body (D03: the old subject was put on top of it); stacked list tags hid
//   the `Re:` (D04 "[support][срочно] Re:", D05 "[support] [#4521] RE:"), and an edited subject behind them came
//   with its tags (D06). Our subject digest now covers the first 120 letters and digits of the subject's core,
//   without marks; a run of tags before `Re:` is taken off.
// - M09 — a text log that is only named `.msg` is no Outlook item (no Compound File signature): the request in the
//   subject is answered (M01), as before the .msg rule.
// - M07 false positive — an author relaying a client's words under a dated head with a time or an address
//   ("Клиент 20.11 в 14:30 написал:", "On 20.11 at 14:30 the customer wrote:", a pasted "… <addr> пишет:") above
//   the client's marked quote of our mail: everything below the head was cut (R01–R04). History is quoted newest
//   first, so such a head above the quote of the mail being answered is the author's text.
// - M06 — an interleaved answer ending in a backslash (a Windows path, Q01, Q03) or with `<<Word>>` (Q02) was taken
//   for a shell continuation or a here-document, so the quoted questions under it reached the secretary (Q02 with
//   an archive password).
// - V files: the third review's mails that the first version of these fixes made worse (below).
import { describeMailReplay, type ExpectedRequest } from './mail-replay.js';

const D = 's35-cases/';

const EXPECTED: Record<string, ExpectedRequest> = {
  // M01: the subject as a client changed it.
  [`${D}D01-thebat-koi8r-bestfit-guillemets-dash-nothing-new.eml`]: null,
  [`${D}D02-outlook-subject-cut-at-255-nothing-new.eml`]: null,
  [`${D}D03-outlook-cp1251-dash-ellipsis-new-text-in-body.eml`]: 'А за ноябрь можно такую же сверку?',
  [`${D}D04-mailman-stacked-tags-nothing-new.eml`]: null,
  [`${D}D05-list-and-ticket-tags-spaced-nothing-new.eml`]: null,
  [`${D}D06-stacked-tags-edited-subject.eml`]: 'Выгрузка авторизаций за октябрь и ноябрь',
  // M09: a text file named .msg.
  [`${D}M01-yandex-text-log-named-msg-request-in-subject.eml`]:
    'Ошибка выгрузки, лог очереди во вложении\n\n[Вложения (не переданы): export-queue.msg]',
  // M07 false positive: relayed words above the quote of our mail.
  [`${D}R01-gmail-ru-relay-client-with-time.eml`]: [
    'Добрый день!',
    'Клиент 20.11 в 14:30 написал:',
    'Не могу оплатить покупку кошельком 40817810000012345678, приходит ошибка 51.',
    '',
    'Проверьте, пожалуйста, его авторизации за 20.11 и причину отказа.',
  ].join('\n'),
  [`${D}R02-yandex-ru-relay-client-with-address.eml`]: [
    'Добрый день!',
    'Клиент ivan.sidorov@mail.example 20.11 написал:',
    'Деньги списались, а покупка не прошла.',
    '',
    'Посмотрите, пожалуйста, его операции за 20.11.',
  ].join('\n'),
  [`${D}R03-gmail-en-relay-customer-on-time.eml`]: [
    'Добрый день!',
    'On 20.11 at 14:30 the customer wrote:',
    'I cannot pay with my wallet 40817810000012345678, error 51.',
    '',
    'Please check his authorizations for 20.11.',
  ].join('\n'),
  [`${D}R04-thunderbird-ru-relay-client-mail-header.eml`]: [
    'Добрый день!',
    '20.11.2026 14:30, Сидоров Иван <ivan.sidorov@mail.example> пишет:',
    'Верните деньги за заказ 1182, покупка не прошла.',
    '',
    'Проверьте, пожалуйста, был ли возврат по этому заказу.',
  ].join('\n'),
  // M06: interleaved answers that only look like shell.
  [`${D}Q01-gmail-interleaved-windows-path-backslash.eml`]:
    'Файл лежит в \\\\fs01\\exports\\\nXLSX, разделитель не важен.',
  [`${D}Q02-thunderbird-interleaved-ascii-guillemets.eml`]: 'Мерчант <<Romashka>>\nОктябрь.',
  [`${D}Q03-outlook-en-interleaved-drive-path-backslash.eml`]: 'It is in C:\\exports\\2026-10\\\nCSV.',
  // The third review of the above (V files, each better before the first version of these fixes): a colleague's
  // unmarked quoted reply carrying its own marked quote, in a mail that answers the colleague (not us), kept its
  // head and words (passwords included); subject edits that only change an ASCII mark, move a dash or a dot, or sit
  // past the 120th letter were missed; `cat <<EOF>file` and a `\` typed without its space lost the command.
  [`${D}VC01-ru-unmarked-reply-to-colleague-nested-marked.eml`]:
    'Коллеги, подключаю бота.\nНужна выгрузка отказов по мерчанту «Ромашка» за ноябрь.',
  [`${D}VC02-mailru-head-unmarked-nested-marked.eml`]: 'Нужна выгрузка отказов по мерчанту Ромашка за ноябрь.',
  [`${D}VC04-ru-unmarked-over-outlook-over-gmail.eml`]: 'Нужна выгрузка отказов по мерчанту Ромашка за ноябрь.',
  [`${D}VC05-ru-unmarked-over-colleague-gmail-quoting-ours.eml`]: 'А за ноябрь такую же выгрузку можно?',
  [`${D}VC15-ru-unmarked-nested-marked-wrapped-head.eml`]: 'Нужна выгрузка отказов по мерчанту Ромашка за ноябрь.',
  [`${D}VC17-ru-gmail-ru-head-unmarked-nested-marked.eml`]: 'Нужна выгрузка отказов по мерчанту Ромашка за ноябрь.',
  [`${D}VS01-sign-gt-to-lt.eml`]: 'Платежи < 10 000 ₽ за октябрь',
  [`${D}VS03-plus-to-minus.eml`]: 'Корректировка баланса -5 000 ₽',
  [`${D}VS04-csharp-to-cplusplus.eml`]: 'Пример интеграции на C++',
  [`${D}VS05-ip-dots-moved.eml`]: 'Доступ к API с IP 10.0.11.2',
  [`${D}VS09-long-subject-edit-at-end.eml`]:
    'Прошу предоставить выгрузку всех авторизаций по корпоративным картам сотрудников подразделения продаж Северо-Западного региона с разбивкой по мерчантам за ноябрь',
  [`${D}VS13-range-dash-dot.eml`]: 'Отчёт за 11-5.11',
  [`${D}VS14-percent-to-rub.eml`]: 'Комиссия 3 ₽ по тарифу',
  [`${D}VS15-same-marks-changed-nothing-new.eml`]: null,
  [`${D}VS16-outlook-cut-255-nothing-new.eml`]: null,
  [`${D}VD01-reply-heredoc-redirect-no-space.eml`]:
    'Выгрузку через API не получается запустить, делаю так:\n\n$ cat <<EOF>/tmp/export.json\n> {"wallet_type": "b2c", "period": "2026-11", "format": "csv"}\n> EOF\n$ curl -s -X POST https://api.example.test/v1/exports -d @/tmp/export.json\n{"error":"invalid_period"}\n\nКакой формат периода нужен?',
  [`${D}VD02-reply-heredoc-append-no-space.eml`]:
    'Добавил переменные так, как в инструкции:\n$ cat <<EOF>>~/.workemon.env\n> EXPORT_TOKEN=abc\n> EXPORT_FORMAT=csv\n> EOF\nПосле этого выгрузка пустая. Почему?',
  [`${D}VD03-reply-continuation-no-space.eml`]:
    'Запрос падает:\n$ curl -s -X POST https://api.example.test/v1/exports\\\n> -H \'Content-Type: application/json\'\\\n> -d \'{"period":"2026-11"}\'\n{"error":"unauthorized"}\nЧто не так с запросом?',
  // The fourth review (W files, each worse with the third version of these fixes): a path or a name that ends in
  // a backslash or sits in typed guillemets pulled the next quoted line (a password) into the request; a reply to
  // our mail under the older Message-ID form lost the relayed words.
  [`${D}WA2-relay-old-form-id.eml`]:
    'Добрый день!\nКлиент 20.11 в 14:30 написал:\nНе могу оплатить покупку кошельком 40817810000012345678, приходит ошибка 51.\n\nПроверьте, пожалуйста, его авторизации за 20.11 и причину отказа.',
  [`${D}WQ1-drive-root-single-backslash.eml`]: 'Уточнение по выгрузке\n\nВ корень диска D:\\\nОктябрь.',
  [`${D}WQ2-guillemets-period.eml`]: 'Уточнение по выгрузке\n\nМерчант <<Romashka>>.\nОктябрь.',
  [`${D}WQ3-guillemets-slash.eml`]: 'Уточнение по выгрузке\n\nМерчанты <<Romashka>>/<<Vasilek>>\nОктябрь.',
  [`${D}WQ4-share-trailing-backslash.eml`]: 'Уточнение по выгрузке\n\nВ папку exports\\\nОктябрь.',
  [`${D}WQ5-heredoc-gt-word.eml`]: 'Уточнение по выгрузке\n\nКак в шаблоне <<Report>>_v2\nОктябрь.',
};

describeMailReplay('s35: the s34 reviews’ open mail holes, each as a kind', ['s35-cases'], EXPECTED);

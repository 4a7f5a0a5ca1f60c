// Session 36: pasted content under a bare rule line (s34 review P01–P03, still open after s35), as a kind, replayed
// through Dovecot and the SMTP sink (docs/communicator.md, "What the request text keeps"). `--`, `---`, `___` and
// `====` without RFC 3676's trailing space were taken for a signature separator whenever the next line looked like
// a name or a contact, so a YAML config, a Markdown rule above a summary, SQL comments above a query or an env block,
// and the request written under them, were cut (B files; every one lost its request before the change). A
// signature asks nothing and holds no code: a question, a request (not a disclaimer's "please notify") or a line of
// code or data below the rule keeps the block as the author's, unless the block shows a signature (a name or a
// closing first, a contact, a site, a legal or footer line). Signatures under a bare rule, with a disclaimer or an
// eco footer that say "please", are still cut (G files). The review's mails are the R files (below).
import { describeMailReplay, type ExpectedRequest } from './mail-replay.js';

const D = 's36-cases/';

const EXPECTED: Record<string, ExpectedRequest> = {
  [`${D}B01-gmail-ru-flat-yaml-pasted.eml`]: [
    'Перезапуск выгрузки',
    '',
    'Добрый день!',
    '',
    'Конфиг задания выгрузки:',
    '',
    '---',
    'export: wallets_b2c',
    'period: 2026-10',
    'format: csv',
    'timezone: Europe/Moscow',
    '',
    'Перезапустите, пожалуйста, выгрузку за 20.11.2026 с этим конфигом',
  ].join('\n'),
  [`${D}B02-thunderbird-ru-md-rule-heading.eml`]: [
    'Сверка за октябрь',
    '',
    'Добрый день!',
    '',
    'Ниже итог по сверке за октябрь.',
    '',
    '---',
    'Итог',
    'Расхождение 3 операции',
    'Кошелёк 40817810000012345678',
    'Сумма 2970 руб',
    '',
    'Проверьте, пожалуйста, откуда расхождение и пришлите список операций',
  ].join('\n'),
  [`${D}B03-apple-en-sql-comment-block.eml`]: [
    'Query returns nothing',
    '',
    'Hi,',
    '',
    'The query we run:',
    '',
    '--',
    '-- monthly wallet totals',
    '--',
    "SELECT wallet_id, sum(amount) FROM payments WHERE created_at >= '2026-10-01' GROUP BY wallet_id",
    '',
    'It returns nothing since the migration. Can you check the table grants?',
  ].join('\n'),
  [`${D}B04-outlook-ru-dashdash-login-role-request.eml`]: [
    'Доступ к Jira',
    '',
    'Добрый день!',
    '',
    'Данные для доступа:',
    '--',
    'Логин: ivanov_p',
    'Роль: оператор',
    '',
    'Дайте, пожалуйста, доступ к проекту PAY в Jira',
  ].join('\n'),
  [`${D}B05-gmail-en-md-rule-summary-please.eml`]: [
    'October reconciliation',
    '',
    'Hi team,',
    '',
    'Summary of the October reconciliation below.',
    '',
    '---',
    'Summary',
    '3 mismatched payments',
    'Wallet 40817810000012345678',
    'Total 2970 RUB',
    '',
    'Please check where the mismatch comes from and send us the list of operations',
  ].join('\n'),
  [`${D}B06-thunderbird-ru-underscores-env-block-question.eml`]: [
    'Пустая выгрузка',
    '',
    'Коллеги, настройки сервиса выгрузки:',
    '___',
    'EXPORT_MODE=full',
    'EXPORT_TZ=Europe/Moscow',
    '',
    'Почему выгрузка пустая после обновления?',
  ].join('\n'),
  [`${D}B07-yandex-ru-sql-one-liner-between-dashes.eml`]: [
    'Запрос к payments',
    '',
    'Здравствуйте!',
    '',
    'Запрос:',
    '--',
    'select * from payments where wallet_id = 42',
    '--',
    'Возвращает пусто с 20.11, хотя операции есть. Посмотрите, что с правами на таблицу.',
  ].join('\n'),
  [`${D}B08-mailru-equals-rule-then-question.eml`]: [
    'Ошибка 51',
    '',
    'Добрый день.',
    '',
    '====',
    'Ошибка 51 при оплате кошельком 40817810000012345678',
    'Клиент Сидоров',
    '',
    'Как проверить причину отказа?',
  ].join('\n'),
  // Signatures under a bare rule: cut, disclaimer and footer with them.
  [`${D}G01-outlook-ru-bare-dashdash-sig-disclaimer-please.eml`]: 'Доступ к Jira\n\nНужен доступ к Jira, проект PAY.',
  [`${D}G02-gmail-en-bare-dashes-sig-eco-footer.eml`]:
    'Wallet limits\n\nHi,\n\nWhat is the daily limit for B2C wallets?',
  [`${D}G03-thunderbird-ru-bare-dashdash-name-title.eml`]: 'Сверка\n\nПришлите, пожалуйста, сверку за ноябрь.',
  // The review of the first version (R files): signatures with labels, courtesy lines, slogans, bank and legal
  // lines or a line of dashes under a bare rule leaked (R-L: cut again); logs, tables, JSON, properties, INI, curl,
  // multi-line SQL and requests in other words under one were still cut (R-C: kept).
  [`${D}R-C01-gmail-ru-data-block-nuzhna-vygruzka.eml`]:
    'Двойное списание\n\nДобрый день!\n\nКлиент жалуется на двойное списание.\n\n---\nКошелёк 40817810000012345678\nОперация 8812345, 20.11.2026\nСумма 1500 руб\n\nНужна выгрузка всех операций по этому кошельку за ноябрь.',
  [`${D}R-C02-outlook-ru-cyrillic-key-value-vernite.eml`]:
    'Возврат клиенту\n\nДобрый день!\n\n--\nКлиент: Иван Петров\nКошелёк: 40817810000012345678\nОперация: 8812345\nСумма: 1500 руб\n\nВерните деньги клиенту, операция отменена магазином.',
  [`${D}R-C04-thunderbird-ru-log-posmotrite.eml`]:
    'Выплаты не уходят с 12:00, в логе:\n\n--\n2026-11-30 12:00:01 ERROR PayoutClient: timeout 30000 ms\n2026-11-30 12:00:31 ERROR PayoutClient: timeout 30000 ms\n--\n\nПосмотрите, что со шлюзом.',
  [`${D}R-C05-gmail-en-json-single-line.eml`]:
    '400 on payouts\n\nHi,\n\nThe payouts endpoint returns 400 for this body:\n\n---\n{"wallet_id": "W-10442", "amount": 1500, "currency": "RUB"}\n---\n\nCheck what is wrong with the request, the docs say it is valid.',
  [`${D}R-C05b-gmail-en-json-single-line-no-closing-rule.eml`]:
    '400 on payouts\n\nHi,\n\nThe payouts endpoint returns 400 for this body:\n\n---\n{"wallet_id": "W-10442", "amount": 1500, "currency": "RUB"}\n\nCheck what is wrong with the request, the docs say it is valid.',
  [`${D}R-C06-outlook-en-java-properties.eml`]:
    'Connection settings\n\nHi,\n\nOur connector settings:\n\n--\npayout.api.url=https://api.example.test/v2\npayout.api.timeout.ms=30000\npayout.retry.max=5\n\nWe keep getting timeouts. Let me know which timeout you recommend.',
  [`${D}R-C07-apple-ru-excel-tsv-paste.eml`]:
    'Расхождение\n\nДобрый день,\n\n---\n8812345\t1500.00\t20.11.2026\tdeclined\n8812346\t990.00\t20.11.2026\tdeclined\n\nЭти операции у нас успешные, а у вас отклонены. Разберитесь, почему так.',
  [`${D}R-C08-mailru-ru-short-request-pozhaluysta.eml`]:
    'Кошелёк\n\nДобрый день.\n\n---\nКошелёк 40817810000012345678\nСтатус blocked\n\nРазблокируйте, пожалуйста.',
  [`${D}R-C09-gmail-ru-question-with-bang.eml`]:
    'Вывод средств\n\nДобрый день!\n\n---\nЗаявка 5512\nСумма 250 000 руб\n\nПодскажите, что делать?!',
  [`${D}R-C10-outlook-en-curl-command.eml`]:
    '401 from API\n\nHi,\n\n---\ncurl -X POST https://api.example.test/v2/payouts -H "Authorization: Bearer sk_live_x"\nHTTP/1.1 401 Unauthorized\n\nWe rotated the key yesterday. I need the new key activated today.',
  [`${D}R-C10b-outlook-en-curl-short.eml`]:
    '401 from API\n\nHi,\n\n---\ncurl -X POST https://api.example.test/v2/payouts\nHTTP/1.1 401 Unauthorized\n\nWe rotated the key yesterday. I need the new key activated today.',
  [`${D}R-C11-thunderbird-en-multiline-sql-no-semicolon.eml`]:
    "Report query\n\nHi,\n\n---\nSELECT wallet_id, amount\nFROM payouts\nWHERE status = 'failed'\nORDER BY created_at DESC\n\nThis returns 0 rows on the replica but 14 on the primary. Kindly check the replication lag.",
  [`${D}R-C12-yandex-ru-md-table.eml`]:
    'Комиссии\n\nДобрый день!\n\n---\n| Тариф | Комиссия |\n| B2C | 1,5% |\n| B2B | 0,9% |\n\nХочу перейти на тариф B2B с 1 января.',
  [`${D}R-C13-outlook-en-ini-spaces.eml`]:
    "SFTP settings\n\nHello,\n\n---\n[sftp]\nhost = sftp.example.test\nport = 2222\nuser = northwind\n\nNeed the port changed back to 22 before Friday's run.",
  [`${D}R-C14-gmail-ru-nado-prodlit.eml`]:
    'Доступ\n\nКоллеги, добрый день!\n\n---\nАнна Смирнова, доступ в админку до 30.11.2026\n\nНадо продлить до 31.12.2026, срок вышел.',
  [`${D}R-L01-outlook-en-sig-M-T-E-W-labels.eml`]:
    "Settlement report missing\n\nHi team,\n\nThe settlement report for 30 November hasn't arrived in our SFTP folder. Could you resend it?",
  [`${D}R-L02-gmail-ru-sig-ostalis-voprosy.eml`]:
    'Возврат по операции 8812345\n\nДобрый день!\n\nНе проходит возврат по операции 8812345, клиент ждёт деньги третий день.',
  [`${D}R-L03-outlook-en-sig-dont-hesitate.eml`]:
    'API rate limit\n\nHello,\n\nWe need the API rate limit for merchant 10442 raised to 50 rps from Monday.',
  [`${D}R-L04-yandex-ru-sig-prosba-dokumenty.eml`]:
    'Акт сверки\n\nЗдравствуйте!\n\nАкт сверки за III квартал подписан, скан во вложении не прикрепился, отправлю отдельно.',
  [`${D}R-L05-mailru-ru-sig-esli-voprosy-pozhaluysta.eml`]:
    'Не приходят уведомления\n\nДобрый день. С 28.11 не приходят вебхуки об успешных платежах на наш URL.',
  [`${D}R-L06-apple-en-sig-website-telephone-linkedin.eml`]:
    'Payout delays\n\nHi,\n\nPayouts to Revolut accounts have been delayed by 2 days since Friday. Is this on your side?',
  [`${D}R-L07-outlook-en-sig-bank-details-iban-vat.eml`]:
    'Invoice 2026-118\n\nHello,\n\nInvoice 2026-118 was paid twice on 27 Nov. We need one payment refunded to the account below.',
  [`${D}R-L08-outlook-en-sig-disclaimer-label.eml`]:
    'Chargeback 55120\n\nHi,\n\nChargeback 55120 was opened for a transaction we already refunded on 12 Nov. We need it disputed.',
  [`${D}R-L09-thunderbird-en-sig-wrapped-disclaimer-delete-from.eml`]:
    'KYC documents\n\nHello,\n\nThe KYC documents for merchant 10442 were uploaded yesterday, we are waiting for the review.',
  [`${D}R-L10-gmail-ru-sig-slogan-nuzhna-pomosh.eml`]:
    'Платёж завис\n\nЗдравствуйте, платёж 99120 висит в статусе processing с утра.',
  [`${D}R-L11-outlook-en-sig-slogan-with-as-and-drop-us.eml`]:
    'Refund status\n\nHello,\n\nRefund R-2231 has shown "pending" for a week now.',
  [`${D}R-L12-yandex-ru-sig-inn-ogrn-latin.eml`]:
    'Реквизиты\n\nДобрый день! Сменились реквизиты нашей компании, новые — в карточке во вложении.',
  [`${D}R-L13-outlook-ru-sig-pozhaluysta-obratite-vnimanie.eml`]:
    'Доступ к кабинету\n\nДобрый день!\n\nНе можем войти в личный кабинет мерчанта, пишет «учётная запись заблокирована».',
  [`${D}R-L14-outlook-en-sig-please-note-hours-ooo.eml`]:
    'Settlement currency\n\nHi,\n\nFrom January we want settlements in EUR instead of GBP for merchant 20117.',
  [`${D}R-L15-gmail-en-sig-have-a-question.eml`]:
    'Webhook signature\n\nHello,\n\nThe webhook signature header is missing on events since the 29th.',
  [`${D}R-L16-outlook-ru-sig-dashes-line-before-disclaimer.eml`]:
    'Лимиты\n\nДобрый день!\n\nПросим увеличить дневной лимит выплат для мерчанта 20117 до 5 млн руб.',
};

describeMailReplay('s36: pasted content and requests under a bare rule line', ['s36-cases'], EXPECTED);

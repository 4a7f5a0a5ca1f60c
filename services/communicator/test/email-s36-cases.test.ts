// Session 36: pasted content under a bare rule line (s34 review P01–P03, still open after s35), as a kind, replayed
// through Dovecot and the SMTP sink (docs/communicator.md, "What the request text keeps"). `--`, `---`, `___` and
// `====` without RFC 3676's trailing space were taken for a signature separator whenever the next line looked like
// a name or a contact, so a YAML config, a Markdown rule above a summary, SQL comments above a query or an env block,
// and the request written under them, were cut (B files; every one lost its request before the change). A
// signature asks nothing and holds no code: a question, a request (not a disclaimer's "please notify") or a line of
// code or configuration below the rule keeps the block as the author's. Signatures under a bare rule, with a
// disclaimer or an eco footer that say "please", are still cut (G files).
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
};

describeMailReplay('s36: pasted content and requests under a bare rule line', ['s36-cases'], EXPECTED);

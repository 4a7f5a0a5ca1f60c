// Session 34: mail the communicator mishandled, seven causes (docs/communicator.md, "What the request text keeps").
// The files named after the probe report (A, C, H, L, P, R, S, U) all failed before the change; the K files are
// further members of the same kinds, other clients and languages. By kind:
// - sig / M06 — a thanks line ("Спасибо!", "Благодарю!", "Thanks!") above a new request was taken for the closing
//   formula and everything below it dropped: C01 Gmail, C02 Outlook, C04 Yandex, C05 Mail.ru bottom-post, H01
//   Outlook on the web HTML-only with a list; K01 Thunderbird EN, K02 Gmail RU with a regards signature below.
// - M12 / sig — separator-like lines in pasted content ("--" of pg_dump, YAML's "---", "====", a sentence starting
//   "Sent from …") were taken for a signature and the rest of the mail cut: P01, P02, P03; K03 (a traceback between
//   "--" lines, an iPhone footer under it), K04 ("====" around a table, a real "-- " signature).
// - M07 — Horde IMP's attribution "Quoting Name <addr>:" reached the secretary with our address: A01 top, A02
//   bottom; K05 its German form "Zitat von …:".
// - M01 — a request written in an edited `Re:` subject of a reply with nothing typed in the body (clients that send
//   no Thread-Topic): S01 Thunderbird, S02 Gmail, K08 Yandex. Our Message-ID now carries the digest of our subject,
//   so the thread's subject is known for every client: the S files reply to a Message-ID of ours (their In-Reply-To
//   was a made-up `<wk-reply-1001@…>` in the probe, which names no subject; a reply to us always names ours). K09:
//   the thread's own subject with nothing new still says nothing.
// - M07 false positive / M06 — the author relaying a client's words under "Клиент 20.11 в чате написал:" (a date,
//   no time, no address) was cut as unmarked history: R01; K06 "On 20.11 the customer wrote in the chat:".
// - M06 — a shell command's continuation lines (PS2 `> `) in a bottom-posted reply were dropped as quotes: R02
//   (`\` continuations), K07 (a here-document).
// - M09 — the text only inside an attached Outlook .msg (U01; K11 a damaged one): no secretary call, the polite
//   request for text, as for a winmail.dat whose text cannot be read. Before, the secretary got the subject and the
//   file's name. The .msg is not read: the kept reader (@kenjiuno/msgreader) allocated what a 20 KB hostile file
//   declares, outside any heap limit (about 2 GB for 3 s in a review), enough to kill a service's container.
// - M12 — a question under a long paste was cut off at the secretary's limit (only the head was kept): L01 log,
//   L03 base64 blob; K10 an English gateway log. Now the head and the tail are kept, the middle marked.
import { describe, expect, it } from 'vitest';
import { CUT_MARKER, fitToLimit } from '../src/email/mail-request.js';
import { secretaryRequestMaxLength } from '../src/request-limit.js';
import { describeMailReplay, holds, type ExpectedRequest } from './mail-replay.js';

const D = 's34-cases/';

/** A request cut to the secretary's limit that keeps its start and the question at its end, the middle marked. */
const headAndTail = (start: string, end: string) => (request: string) => {
  expect(request.length).toBeLessThanOrEqual(secretaryRequestMaxLength());
  expect(request.startsWith(start)).toBe(true);
  expect(request).toContain('\n\n[…]\n\n');
  expect(request.endsWith(`${end}${CUT_MARKER}`)).toBe(true);
};

const EXPECTED: Record<string, ExpectedRequest> = {
  // sig / M06: thanks above the next request.
  [`${D}C01-gmail-ru-thanks-then-new-request.eml`]:
    'Добрый день!\n\nСпасибо!\nТеперь нужна такая же выгрузка по возвратам за ноябрь.\n\nИван',
  [`${D}C02-outlook-ru-thanks-then-request-signature.eml`]:
    'Добрый день!\n\nСпасибо!\nЕщё нужна выгрузка по кошелькам b2b за тот же период.',
  [`${D}C04-yandex-ru-spasibo-then-request.eml`]:
    'Здравствуйте!\n\nСпасибо.\nПришлите, пожалуйста, ещё такую же выгрузку за сентябрь.',
  [`${D}C05-mailru-bottom-spasibo-then-request.eml`]:
    'Добрый день!\nСпасибо!\nТеперь нужна выгрузка по возвратам за ноябрь.',
  [`${D}H01-outlook-web-ru-html-only-spasibo-list.eml`]:
    'Коллеги, добрый день!\nСпасибо!\nЕщё нужно:\n * то же самое за сентябрь;\n * отдельно кошельки b2b.',
  [`${D}K01-thunderbird-en-thanks-then-request.eml`]:
    'Hi,\n\nThanks!\nNow I need the same export for refunds in November.\n\nJohn',
  [`${D}K02-gmail-ru-blagodaryu-then-request-regards.eml`]:
    'Добрый день!\nБлагодарю!\nПрошу ещё выгрузку по кошелькам b2b за тот же период.',
  // M12 / sig: separator-like lines of pasted content.
  [`${D}P01-thunderbird-ru-pgdump-schema-pasted.eml`]: holds(
    [
      'Схема таблицы (из pg_dump):\n\n--\n-- Name: auth_log; Type: TABLE; Schema: public; Owner: payments\n--',
      'CREATE TABLE public.auth_log (',
      'Считать только статус APPROVED, время в created_at — UTC, день нужен по Москве.',
    ],
    ['Иван Петров', 'Ведущий аналитик'],
  ),
  [`${D}P02-gmail-ru-yaml-config-pasted.eml`]: holds([
    'Конфиг задания:\n\n---\nexport:\n  name: auth-b2c-daily',
    'group_by: [day, wallet_type]',
    'Посмотрите, пожалуйста, что в нём не так, и перезапустите выгрузку за 20.11.2026.',
  ]),
  [`${D}P03-outlook-en-sent-from-the-app-line.eml`]: [
    'Failed wallet top-ups',
    '',
    'Hi,',
    '',
    'A customer reports that wallet top-ups fail since yesterday.',
    'Sent from the Android app (version 5.2.1), every top-up is declined with code 51; from the web it works.',
    'Please export his authorizations for 19-20 November, wallet 40817810000012345678.',
  ].join('\n'),
  [`${D}K03-apple-en-traceback-after-dashes.eml`]: holds(
    ['ValueError: period not allowed', 'Can you rerun the export for October 2026?'],
    ['Sent from my iPhone'],
  ),
  [`${D}K04-thunderbird-ru-markdown-rule-then-request.eml`]: holds(
    ['====\n  7781  ООО Ромашка', 'Нужна выгрузка отказов по этим терминалам за ноябрь.'],
    ['Иван Петров'],
  ),
  // M07: Horde's attribution.
  [`${D}A01-horde-quoting-attribution-top.eml`]: 'Октябрь 2026, разрез по дням.',
  [`${D}A02-horde-quoting-attribution-bottom.eml`]: 'Октябрь 2026, разрез по дням.',
  [`${D}K05-horde-de-zitat-von.eml`]: 'Октябрь 2026, по дням.',
  // M01: the request in an edited subject.
  [`${D}S01-thunderbird-ru-reply-request-in-edited-subject.eml`]: 'Такая же выгрузка по возвратам за ноябрь',
  [`${D}S02-gmail-en-reply-request-in-edited-subject.eml`]: 'и за сентябрь тоже, пожалуйста',
  [`${D}K08-yandex-reply-request-in-edited-subject.eml`]: 'И по кошелькам b2b тоже',
  [`${D}K09-gmail-reply-unedited-subject-nothing-new.eml`]: null,
  // M07 false positive: the author relays a client's words.
  [`${D}R01-gmail-ru-reply-relays-client-words-dated-napisal.eml`]: [
    'Добрый день!',
    'Клиент 20.11 в чате написал:',
    'Не могу оплатить покупку кошельком 40817810000012345678, приходит ошибка 51.',
    '',
    'Проверьте, пожалуйста, его авторизации за 20.11 и причину отказа.',
    '',
    'Иван',
  ].join('\n'),
  [`${D}K06-gmail-en-relays-customer-words.eml`]: [
    'Hi,',
    'On 20.11 the customer wrote in the chat:',
    'I cannot pay with my wallet, error 51.',
    '',
    'Please check his authorizations for 20.11.',
    '',
    'Ivan',
  ].join('\n'),
  // M06: shell continuation lines below the quote.
  [`${D}R02-thunderbird-ru-bottom-shell-continuation-lines.eml`]: [
    'Вот так вызываю:',
    '',
    '$ curl -s -X POST https://export.example.test/api/v2/exports \\',
    "> -H 'Content-Type: application/json' \\",
    '> -d \'{"type":"authorizations","period":"2026-10","group_by":"day"}\'',
    '{"error":"period_not_allowed"}',
    '',
    'Почему период не разрешён?',
  ].join('\n'),
  [`${D}K07-thunderbird-ru-bottom-heredoc.eml`]: holds(
    ['$ cat <<EOF > req.json\n> {"type":"refunds","period":"2026-11"}\n> EOF\n$ curl', 'Почему ноябрь не разрешён?'],
    ['Выгрузка авторизаций по кошелькам b2c'],
  ),
  // M09: an Outlook .msg attached as a file.
  // Not read (see the header): unreadable like a winmail.dat without text, so the polite request for text.
  [`${D}U01-yandex-web-saved-msg-attached-empty-body.eml`]: null,
  [`${D}K11-thunderbird-damaged-msg-attached.eml`]: null,
  // M12: the question under a long paste.
  [`${D}L01-gmail-ru-long-log-request-at-bottom.eml`]: headAndTail(
    'Упала ночная выгрузка\n\nДобрый день!\n\nНочная выгрузка авторизаций упала, лог ниже.\n\n2026-11-20 10:00:00.331 ERROR',
    'Вопрос: перезапустите, пожалуйста, выгрузку за 20.11.2026 и пришлите файл мне, причина таймаутов — потом.\n\nИван',
  ),
  [`${D}L03-yandex-ru-base64-blob-pasted.eml`]: headAndTail(
    'Не открывается реестр\n\nДобрый день!\nСистема банка-партнёра прислала реестр в base64',
    'Расшифруйте, пожалуйста, и скажите, за какую дату этот реестр и сколько в нём операций.',
  ),
  [`${D}K10-outlook-en-long-log-question-at-bottom.eml`]: headAndTail(
    'Terminal 7781 declines\n\nHi,\n\nTerminal 7781 declines everything since this morning, gateway log:',
    'Question: is code 05 coming from the issuer or from our gateway? Please export the declines for 20.11.',
  ),
  // The review of the fixes above (s34, second round): each failed with the first version of them.
  // Thanks above a request written without a full stop is the author's (the first version kept only sentences).
  [`${D}RT01-gmail-ru-spasibo-request-no-period.eml`]: holds([
    'Спасибо!\nТеперь нужна такая же выгрузка по возвратам за ноябрь',
  ]),
  [`${D}RT04-thunderbird-en-thanks-request-no-period.eml`]: holds(['Thanks!\nNow the same for refunds in November']),
  // Thanks, a name, a title and a printing notice: the signature, notice and all (the first version kept the notice).
  [`${D}RG01-outlook-en-thanks-sig-eco-footer.eml`]: holds(
    ['Please send the same export for November, split by day.'],
    ['John Smith', 'environment', '+44'],
  ),
  // "-- " (RFC 3676 §4.3) starts the signature whatever follows it (a disclaimer; a list's footer: a list's own mail
  // gets no reply, so that kind is checked in mail-steps).
  [`${D}RG05-thunderbird-ru-dashdash-corp-sig-disclaimer.eml`]: holds(
    ['Пришлите, пожалуйста, выгрузку авторизаций за ноябрь.'],
    ['Ведущий аналитик', 'конфиденциальны'],
  ),
  // A phone app's footer with a tracking link is a footer, not a sentence of nine words.
  [`${D}RS02-yahoo-android-footer.eml`]: holds(['Same for November please, split by day.'], ['Yahoo', 'onelink']),
  // A question between a long log and a forwarded client mail: the forward gives way, the question stays.
  [`${D}RF01-outlook-ru-log-question-then-attached-client-mail.eml`]: holds([
    'Вопрос: почему пополнения кошелька 40817810000012345678 отклоняются с кодом 51',
    '[Пересланное письмо]',
    CUT_MARKER,
  ]),
};

describeMailReplay('s34: seven causes of mishandled mail, each as a kind', ['s34-cases'], EXPECTED);

describe('s34: fitToLimit keeps the head and the tail', () => {
  it('never exceeds the limit, marks the middle and the cut, keeps surrogate pairs whole', () => {
    const text = `Вопрос сверху\n${'😀 строка лога\n'.repeat(3000)}Вопрос снизу?`;
    for (const max of [200, 1000, 20_000]) {
      const cut = fitToLimit(text, max);
      expect(cut.length).toBeLessThanOrEqual(max);
      expect(cut.startsWith('Вопрос сверху')).toBe(true);
      expect(cut.endsWith(`Вопрос снизу?${CUT_MARKER}`)).toBe(true);
      expect(cut).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/);
    }
    expect(fitToLimit('короткий', 200)).toBe('короткий');
  });
});

// Session 31's second break round: more members of the mail field-case kinds (test/fixtures/s31b-cases), replayed
// through the real communicator (mail-replay.ts: IMAP APPEND into Dovecot, the fake secretary records the request, the
// SMTP sink the reply), and automatic mail that must get no answer (s31b-skip). The cases marked "failed before" went
// wrong before the fixes they came with; the others passed and stay as members of their kinds.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../src/email/mail-parsing.js';
import { classifyMail } from '../src/email/mail-pipeline.js';
import { describeMailReplay, holds, type ExpectedRequest } from './mail-replay.js';

const OUR_QUESTION = 'Уточните, пожалуйста';

const EXPECTED: Record<string, ExpectedRequest> = {
  // M07/M08: Outlook for Mac, HTML only, its bold "Дата:" label in the quoted header block.
  's31b-cases/A01-outlook-mac-ru-html-only-data-label.eml':
    'Только по картам Мир, за октябрь 2026, по дням. Отмены не нужны.',
  // Failed before: the author pasted the header of the mail they ask about ("Вот это письмо:" and a From/Sent/To/
  // Subject block); it was taken for the start of the quoted history and everything below it was lost.
  's31b-cases/A02-new-outlook-ru-pasted-header-block-answer.eml': holds(
    ['Вот это письмо:', 'Тема: Договор №15 на подпись', 'Посмотрите, пожалуйста, логи.'],
    [OUR_QUESTION, 'Workemon'],
  ),
  's31b-cases/H01-gmail-ru-reply-pasted-suspicious-mail-headers.eml': holds(
    ['Вот что пришло, заголовки скопировал:', 'От: Банк-Партнёр', 'Это фишинг? Можно ли по ней переходить?'],
    [OUR_QUESTION, 'bot@example.test'],
  ),
  // M07: Gmail web and Android attributions wrapped over two lines; Apple Mail iOS format=flowed DelSp=yes; a
  // Thunderbird flowed bottom post; a top note with interleaved answers; our answer quoted twice (nested).
  's31b-cases/A03-gmail-web-ru-attribution-wrapped-angle.eml':
    'Только возвраты, без отмен. И добавьте, пожалуйста, колонку с MCC.',
  's31b-cases/A04-gmail-android-ru-polzovatel-napisal-wrapped.eml': 'Нужно за последние 3 месяца, помесячно.',
  's31b-cases/A05-apple-ios-ru-flowed-delsp-qp.eml': holds(
    ['Да, по дням, только успешные операции, формат CSV с разделителем точка с запятой.'],
    [OUR_QUESTION],
  ),
  's31b-cases/A06-thunderbird-ru-flowed-bottom.eml': holds(
    ['За период с 1 по 20 ноября 2026 года, в разрезе по дням и по типам операций'],
    [OUR_QUESTION, '>'],
  ),
  's31b-cases/A07-gmail-top-note-and-interleaved.eml':
    'Добрый день! Ответил ниже по пунктам.\n\nС 1 по 20 ноября.\nНет, только успешные.\nCSV, разделитель — точка с запятой.',
  's31b-cases/A08-thunderbird-ru-nested-own-answer.eml':
    'И ещё, пожалуйста, добавьте в выгрузку колонку с кодом авторизации.',
  // A link alone is an answer (Outlook on the web, with its link-preview block).
  's31b-cases/A09-outlook-web-ru-link-only-answer.eml': 'https://jira.example.test/browse/PAY-4821',
  // Failed before: the request written in an attached .txt (the body empty) reached the secretary as a file name only.
  's31b-cases/B01-thunderbird-request-in-attached-txt.eml': holds([
    'Заявка на доступ',
    '[Вложение: zayavka.txt]',
    'Прошу предоставить доступ на чтение к базе payments_dwh (ClickHouse)',
  ]),
  // An Outlook meeting request: its plain-text part carries the description.
  's31b-cases/B03-outlook-meeting-request-alt-calendar.eml': holds([
    'Сверка возвратов',
    'подготовь, пожалуйста, список расхождений по возвратам за октябрь',
  ]),
  // Failed before (noise): a signed mail's signature and key were named as attachments the secretary did not get;
  // an inline OpenPGP signature's frame and dash-escaping (RFC 4880 §7) were passed on.
  's31b-cases/C01-outlook-smime-clear-signed.eml': holds(
    ['Прошу выдать сертификат для доступа к личному кабинету банка-партнёра'],
    ['smime.p7s', 'Вложения'],
  ),
  's31b-cases/C03-thunderbird-pgp-mime-signed.eml': holds(
    ['Не приходят СМС с кодом подтверждения при входе в VPN'],
    ['Вложения', 'OpenPGP', '.asc'],
  ),
  's31b-cases/C04-inline-pgp-clearsigned-new.eml': holds(
    ['Нужна выгрузка отказов по картам Мир за ноябрь, по дням.', '\n- Только отказы эмитента (коды 05, 51, 61).'],
    ['BEGIN PGP', 'Hash:', '- - '],
  ),
  // Charsets: 8bit UTF-8 with no charset label (and a raw UTF-8 subject); KOI8-R with no MIME header at all.
  's31b-cases/D01-8bit-no-charset-utf8-raw-subject.eml': holds([
    'Ночная выгрузка в DWH упала второй день подряд, задание etl_payments_daily.',
  ]),
  's31b-cases/D02-no-mime-headers-koi8-raw.eml': holds([
    'Пароль от стенда',
    'Сбросьте, пожалуйста, пароль от тестового стенда процессинга (pc-test-02)',
  ]),
  // Failed before ("unreadable"): the answer written into the subject ("RE: Выгрузка возвратов - за октябрь, по
  // дням"), the body only the quoted history; Thread-Topic says the thread's own subject.
  's31b-cases/E01-outlook-ru-answer-in-edited-subject.eml': 'Выгрузка возвратов - за октябрь, по дням',
  // A Lotus Notes "Ответ:" with nothing new: unreadable, no secretary call.
  's31b-cases/E02-notes-ru-otvet-nothing-new.eml': null,
  // M12: a 400 KB single-line HTML table, cut to the limit with the marker.
  's31b-cases/G01-long-single-line-html-table.eml': holds([
    'Отклонения по терминалам в ноябре',
    'TID100001 37.00 Отклонено',
    '[…письмо обрезано',
  ]),
};

describeMailReplay('s31b: more members of the mail field-case kinds', ['s31b-cases'], EXPECTED);

describe('s31b: automatic mail gets no answer (RFC 3834)', () => {
  const classify = async (file: string) =>
    classifyMail(
      await parseInboundMail(readFileSync(new URL(`fixtures/s31b-skip/${file}`, import.meta.url)), {
        ownAddresses: ['bot@example.test'],
      }),
      { companyDomains: ['example.test'], maxRequestChars: 20_000 },
    );
  it('an Exchange out-of-office reply in Russian is skipped', async () => {
    expect(await classify('F01-exchange-ru-oof.eml')).toEqual({ kind: 'skip', reason: 'auto_submitted' });
  });
  it('an Exchange non-delivery report (multipart/report) is skipped', async () => {
    expect(await classify('F02-exchange-ru-ndr-report.eml')).toEqual({ kind: 'skip', reason: 'delivery_report' });
  });
});

// Session 42: members of the field-case kinds (shared/field-cases/README.md, email/) that the text extraction still
// misread, each run through the parse and build-request steps (what the secretary would receive). Each test failed
// before its change in src/email/:
// - signatures (M07's and M06's neighbours: only the author's words reach the model): closing formulas the
//   signature rule did not know ("С уважением и наилучшими пожеланиями,", "С ув.,", "Sincerely,", "Thanks in
//   advance,", "With best regards,"), a wish over a name under an answer above a quote (mail-text.ts
//   CLOSING_FORMULA, isAppendedParagraph);
// - M04a (every client's forward): an Outlook forward (header block, no separator line) of a mail written only in
//   its subject lost that subject: the forwarded mail had no text (mail-text.ts libraryForward);
// - M08 (HTML only): a soft hyphen (&shy;) split a word in two (mail-text.ts htmlToText);
// - M05 (a forward as an attachment): a saved .eml attached as text/plain reached the secretary as a text file of raw
//   header lines (mail-parsing.ts isSavedMail);
// - M01 (the request in the subject): "Re: <request>" with an empty body and no thread named (no In-Reply-To, no
//   References) got the "could not read your mail" reply (mail-parsing.ts MailContent.subjectOnly).
// The tests named "keeps …", "still says nothing …" and "a text file that only has the name …" are neighbours that
// guard the changes: a review of a first version found it cut requests that read like a disclaimer or end with the
// name and title of the person they are about, and a "BR" in a list of country codes; those stay the author's.
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../src/email/mail-parsing.js';
import { buildRequestText } from '../src/email/mail-request.js';
import { buildEmail } from './harness.js';

const OWN = { ownAddresses: ['Workemon <bot@example.test>'] };

/** The request text the secretary receives for a mail (parse step, then build-request step). */
async function requestFor(o: {
  subject: string;
  body: string;
  inReplyTo?: string;
  contentType?: string;
}): Promise<string | undefined> {
  const raw = buildEmail({
    subject: o.subject,
    inReplyTo: o.inReplyTo,
    references: o.inReplyTo,
    contentType: o.contentType,
    body: o.body.replace(/\n/g, '\r\n'),
  });
  return buildRequestText(await parseInboundMail(raw, OWN), 20_000);
}

const REQUEST = 'Прошу выгрузить авторизации по кошелькам b2c за октябрь, с разбивкой по дням.';
const REQUEST_EN = 'Please export card authorizations for October, split by day.';
const GMAIL_QUOTE = ['сб, 21 нояб. 2026 г. в 10:05, Workemon <bot@example.test>:', '> Уточните период?'];

describe('signatures the rule did not know', () => {
  const closings: [string, string][] = [
    ['С уважением и наилучшими пожеланиями,\nИван Петров', REQUEST],
    ['С уважением и благодарностью,\nИван', REQUEST],
    ['С ув., Иван', REQUEST],
    ['С благодарностью,\nИван Петров', REQUEST],
    ['Sincerely,\nJohn Smith', REQUEST_EN],
    ['Thanks in advance,\nJohn Smith', REQUEST_EN],
    ['With best regards,\nJohn Smith\nSenior Analyst', REQUEST_EN],
  ];
  it.each(closings)('a new mail closed with "%s" passes only the request', async (signature, request) => {
    expect(await requestFor({ subject: 'Выгрузка', body: `Добрый день!\n\n${request}\n\n${signature}` })).toBe(
      `Выгрузка\n\nДобрый день!\n\n${request}`,
    );
  });

  it.each(closings)('a top-posted answer closed with "%s" passes only the answer', async (signature, request) => {
    const body = [request, '', signature, '', ...GMAIL_QUOTE].join('\n');
    expect(await requestFor({ subject: 'Re: Выгрузка', inReplyTo: '<q1@example.test>', body })).toBe(request);
  });

  it('cuts a wish over a name under an answer above a quote', async () => {
    const wish = [REQUEST, '', 'Хорошего дня!', 'Иван', '', ...GMAIL_QUOTE].join('\n');
    expect(await requestFor({ subject: 'Re: Выгрузка', inReplyTo: '<q1@example.test>', body: wish })).toBe(REQUEST);
  });

  it('keeps a name and a title that are all the author wrote or that a line introduces, and a postscript', async () => {
    const answer = ['Анна Петрова', 'ведущий аналитик', '', ...GMAIL_QUOTE].join('\n');
    expect(await requestFor({ subject: 'Re: Получатель', inReplyTo: '<q1@example.test>', body: answer })).toBe(
      'Анна Петрова\nведущий аналитик',
    );
    const greeted = ['Добрый день!', '', 'Анна Петрова', 'ведущий аналитик', '', ...GMAIL_QUOTE].join('\n');
    expect(await requestFor({ subject: 'Re: Получатель', inReplyTo: '<q1@example.test>', body: greeted })).toBe(
      'Добрый день!\n\nАнна Петрова\nведущий аналитик',
    );
    const introduced = 'Прошу завести учётную запись новому сотруднику:\n\nПетрова Анна Сергеевна\nВедущий аналитик';
    expect(await requestFor({ subject: 'Доступ', body: `${introduced}\n\nС уважением,\nИван Петров` })).toBe(
      `Доступ\n\n${introduced}`,
    );
    const postscript = `${REQUEST}\n\nС уважением,\nИван\n\nP.S. И за сентябрь тоже, если можно.`;
    expect(await requestFor({ subject: 'Выгрузка', body: postscript })).toContain('P.S. И за сентябрь тоже');
  });
});

describe('an Outlook forward of a mail written only in its subject', () => {
  const SUBJECT = 'Нужна выгрузка авторизаций кошельков за октябрь';
  const blocks = {
    'Outlook EN': [
      'From: Сидоров Пётр <sidorov@bank.test>',
      'Sent: Friday, November 20, 2026 6:12 PM',
      'To: Ivan Petrov <ivan@client.test>',
      `Subject: ${SUBJECT}`,
    ],
    'Outlook RU with its rule': [
      '________________________________',
      'От: Сидоров Пётр <sidorov@bank.test>',
      'Отправлено: 20 ноября 2026 г. 18:12',
      'Кому: Иван Петров <ivan@client.test>',
      `Тема: ${SUBJECT}`,
    ],
    'Outlook -----Original Message-----': [
      '-----Original Message-----',
      'From: Сидоров Пётр <sidorov@bank.test>',
      'Sent: Friday, November 20, 2026 6:12 PM',
      'To: Ivan Petrov <ivan@client.test>',
      `Subject: ${SUBJECT}`,
    ],
  };
  const forwarded = `[Пересланное письмо]\nОт: Сидоров Пётр <sidorov@bank.test>\nТема: ${SUBJECT}`;

  it.each(Object.entries(blocks))('%s: the forwarded subject reaches the secretary', async (_client, block) => {
    expect(
      await requestFor({ subject: 'FW: просьба', body: ['Помогите, пожалуйста.', '', ...block, ''].join('\n') }),
    ).toBe(`Помогите, пожалуйста.\n\n${forwarded}`);
    expect(
      await requestFor({ subject: `FW: ${SUBJECT}`, body: ['Помогите, пожалуйста.', '', ...block].join('\n') }),
    ).toBe(`Помогите, пожалуйста.\n\n${forwarded}`);
    expect(await requestFor({ subject: 'FW: просьба', body: block.join('\n') })).toBe(forwarded);
  });
});

describe('HTML only', () => {
  it('drops soft hyphens, which split a word for the reader of the text', async () => {
    const body = '<p>Нужна выгрузка авто&shy;ризаций по&nbsp;кошелькам за октябрь</p>';
    expect(await requestFor({ subject: 'Выгрузка', contentType: 'text/html; charset=utf-8', body })).toBe(
      'Выгрузка\n\nНужна выгрузка авторизаций по кошелькам за октябрь',
    );
  });
});

describe('a forward attached as a saved .eml file', () => {
  const inner = [
    'From: Сидоров Пётр <sidorov@bank.test>',
    'To: ivan@client.test',
    'Subject: Выгрузка',
    'Date: Fri, 20 Nov 2026 18:12:00 +0300',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 8bit',
    '',
    'Нужна выгрузка авторизаций по кошелькам b2c за октябрь с разбивкой по дням.',
  ].join('\n');
  const mail = (part: string) =>
    [
      '--BB',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Коллеги, помогите, пожалуйста, с запросом ниже.',
      '--BB',
      part,
      '--BB--',
      '',
    ].join('\n');

  it('typed text/plain by its client: read like message/rfc822, not passed on as a text file of headers', async () => {
    const body = mail(
      `Content-Type: text/plain; charset=utf-8; name="Vygruzka.eml"\nContent-Disposition: attachment; filename="Vygruzka.eml"\n\n${inner}`,
    );
    expect(await requestFor({ subject: 'Fwd: Выгрузка', contentType: 'multipart/mixed; boundary="BB"', body })).toBe(
      'Коллеги, помогите, пожалуйста, с запросом ниже.\n\n[Пересланное письмо]\nОт: Сидоров Пётр <sidorov@bank.test>\n' +
        'Тема: Выгрузка\nНужна выгрузка авторизаций по кошелькам b2c за октябрь с разбивкой по дням.',
    );
  });

  it('a text file that only has the name stays a text file', async () => {
    const body = mail(
      'Content-Type: text/plain; charset=utf-8; name="notes.eml"\nContent-Disposition: attachment; filename="notes.eml"\n\n' +
        'Список счетов: 40817810099910004312, 40817810099910004313',
    );
    const request = await requestFor({ subject: 'Счета', contentType: 'multipart/mixed; boundary="BB"', body });
    expect(request).toContain('Список счетов: 40817810099910004312');
    expect(request).not.toContain('[Пересланное письмо]');
  });
});

describe('a request written only in a reply-prefixed subject', () => {
  const SUBJECT = 'Нужна выгрузка авторизаций кошельков за октябрь';

  it('"Re:"/"RE:"/"AW:" with an empty body and no thread named (no In-Reply-To, no References) is the request', async () => {
    for (const prefix of ['Re: ', 'RE: ', 'AW: ', 'Ответ: '])
      expect(await requestFor({ subject: `${prefix}${SUBJECT}`, body: '' })).toBe(SUBJECT);
  });

  it('still says nothing when it answers a thread, or when its body is only a quote', async () => {
    expect(await requestFor({ subject: `Re: ${SUBJECT}`, inReplyTo: '<q1@example.test>', body: '' })).toBeUndefined();
    expect(await requestFor({ subject: `Re: ${SUBJECT}`, body: GMAIL_QUOTE.join('\n') })).toBeUndefined();
  });
});

// A review of the first version of these changes (cuts on any text, "BR" as a closing) found requests lost; each of
// these lost text then, and must keep it.
describe('requests that look like a signature or a footer stay the author’s', () => {
  it('a request worded like a disclaimer, alone or above a signature, is the request', async () => {
    const payment =
      'Прошу уведомить получателя, что платёж № 5521 от 19.11 на сумму 150 000 руб. отправлен по ошибке на счёт ' +
      '40817810099910004312, и вернуть средства отправителю.';
    expect(await requestFor({ subject: 'Возврат', body: payment })).toBe(`Возврат\n\n${payment}`);
    const en =
      'Please note that the payment 5521 went to the wrong recipient in error. Please recall it and notify the ' +
      'intended recipient that it will arrive tomorrow.';
    expect(await requestFor({ subject: 'Recall', body: `Hi team,\n\nWe made a mistake yesterday.\n\n${en}` })).toBe(
      `Recall\n\nHi team,\n\nWe made a mistake yesterday.\n\n${en}`,
    );
  });

  it('the name and title of the person a request is about, and the approver of a request, stay', async () => {
    const access = 'Прошу предоставить доступ к CRM новому сотруднику.\n\nПетрова Анна Сергеевна\nВедущий аналитик';
    expect(await requestFor({ subject: 'Доступ', body: `${access}\n\nС уважением,\nИван Петров` })).toBe(
      `Доступ\n\n${access}`,
    );
    const approved = `${REQUEST}\n\nЗаявка согласована руководителем\n\nИванов Иван Иванович\nДиректор департамента`;
    expect(await requestFor({ subject: 'Выгрузка', body: approved })).toBe(`Выгрузка\n\n${approved}`);
  });

  it('"BR" in a list of country codes, and "С благодарностью!" opening a text, are no closing', async () => {
    const countries = 'Please enable payouts for these countries:\nUS\nGB\nBR\nMX\nAR';
    expect(await requestFor({ subject: 'Payouts', body: countries })).toBe(`Payouts\n\n${countries}`);
    const thanks = 'С благодарностью!\nВыгрузка пришла, всё верно.\nТеперь нужна такая же за ноябрь.';
    expect(await requestFor({ subject: 'Выгрузка', body: thanks })).toBe(`Выгрузка\n\n${thanks}`);
  });

  it('a header block pasted at the end of a new mail keeps its Sent and To lines', async () => {
    const body = [
      'Не доходят письма от контрагента, вот заголовок последнего:',
      '',
      'From: Сидоров Пётр <sidorov@bank.test>',
      'Sent: Friday, November 20, 2026 6:12 PM',
      'To: Ivan Petrov <ivan@client.test>',
      'Subject: Акт сверки',
    ].join('\n');
    const request = await requestFor({ subject: 'Письма не доходят', body });
    expect(request).toContain('Sent: Friday, November 20, 2026 6:12 PM');
    expect(request).toContain('To: Ivan Petrov <ivan@client.test>');
  });

  it('a .eml-named text note with a "Date:" line is read as text, not as a mail', async () => {
    const note = 'Date: 20.11.2026\nСумма: 15000\nСчёт: 40817810099910004312';
    const body = [
      '--BB',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Проверьте, пожалуйста, платёж из файла.',
      '--BB',
      'Content-Type: text/plain; charset=utf-8; name="platezh.eml"',
      'Content-Disposition: attachment; filename="platezh.eml"',
      '',
      note,
      '--BB--',
      '',
    ].join('\n');
    const request = await requestFor({ subject: 'Платёж', contentType: 'multipart/mixed; boundary="BB"', body });
    expect(request).toContain('Сумма: 15000');
    expect(request).not.toContain('[Пересланное письмо]');
  });
});

// The pure steps session 30 added or changed in mail-text.ts, at their edges: a forwarded thread's history
// (forwardedText), addresses in a line (addressesIn), attributions wrapped above a quote, phone footers and gateway
// tags. The same kinds through Dovecot and the SMTP sink: email-s30-cases.test.ts. Below them, whole mails through the
// parse and build-request steps: a reply whose quoted history holds a forward ("Re: Fwd:"), and a note typed below a
// Gmail or Outlook forward.
import { describe, expect, it } from 'vitest';
import { parseInboundMail } from '../src/email/mail-parsing.js';
import { buildRequestText } from '../src/email/mail-request.js';
import {
  addressesIn,
  bareSubject,
  extractNewText,
  forwardedText,
  isForwardSubject,
  isReplySubject,
} from '../src/email/mail-text.js';
import { buildEmail } from './harness.js';

const ours = (from: string) => from.includes('bot@example.test') || /\bWorkemon\b/.test(from);

describe('forwardedText: what a forwarded thread passes on', () => {
  it('keeps the quoted request with its attribution, a quoted line ending with an address and a colon included', () => {
    const forwarded = [
      'Иван, передай в поддержку.',
      '',
      'On Fri, Nov 20, 2026 at 6:12 PM Petr Sidorov <sidorov@example.test> wrote:',
      '> Прошу к 10:00 прислать выгрузку на petrov@corp.test:',
      '> - платежи за ноябрь',
      '> - возвраты',
    ].join('\n');
    expect(forwardedText(forwarded, ours)).toBe(
      'Иван, передай в поддержку.\n\n' +
        'On Fri, Nov 20, 2026 at 6:12 PM Petr Sidorov <sidorov@example.test> wrote:\n' +
        'Прошу к 10:00 прислать выгрузку на petrov@corp.test:\n- платежи за ноябрь\n- возвраты',
    );
  });

  it('ends at a message of ours: an attribution wrapped over two lines, or an Outlook block naming us by name only', () => {
    const gmail = [
      'Передаю.',
      '',
      'On Sat, Nov 21, 2026 at 10:05 AM Workemon Support <bot@example.test>',
      'wrote:',
      '> Здравствуйте! Доступ к Kafka UI выдан.',
      '>',
      '> On Fri, Nov 20, 2026 at 6:12 PM Petr <petr@example.test> wrote:',
      '>> Нужен доступ к Kafka UI.',
    ].join('\n');
    expect(forwardedText(gmail, ours)).toBe('Передаю.');
    const outlook = [
      'Анна, посмотри.',
      '',
      '________________________________',
      'From: Петров Иван <ivan@example.test>',
      'Sent: Saturday, November 21, 2026 10:40 AM',
      'Subject: RE: Доступ',
      '',
      'Доступ так и не появился.',
      '',
      'From: Workemon Support',
      'Sent: Saturday, November 21, 2026 10:05 AM',
      'Subject: Доступ',
      '',
      'Здравствуйте! Доступ выдан.',
    ].join('\n');
    const passed = forwardedText(outlook, ours);
    expect(passed).toContain('Доступ так и не появился.');
    expect(passed).not.toContain('Доступ выдан');
    expect(passed).not.toContain('Workemon');
  });
});

describe('addressesIn, in linear time', () => {
  it('finds bare, bracketed and mailto: addresses, a full stop after one not included', () => {
    expect(addressesIn('From: Anna <anna@x.test>; b@c.d, [mailto:e@f.g] пишите на h@i.j.')).toEqual([
      'anna@x.test',
      'b@c.d',
      'e@f.g',
      'h@i.j',
    ]);
    expect(addressesIn('x@@y a@b@c @lead')).toEqual(['a@b']);
    // A 200,000-character token is one pass (the global regex it replaced rescanned it from every position).
    expect(addressesIn(`From: ${'ы'.repeat(200_000)}`)).toEqual([]);
  });
});

describe('attributions wrapped over two lines above a quote', () => {
  it("joins a client's head (with a date or an address), never the author's own sentence", () => {
    const evolution =
      'Только по кошелькам.\n\nВ Сб, 21/11/2026 в 10:05 +0300, Служба поддержки аналитики\nпишет:\n> Уточните?';
    expect(extractNewText(evolution)).toBe('Только по кошелькам.');
    const own = 'Привет! Нужен доступ к 1С для Петрова, он\nнаписал:\n> не могу войти в 1С\nСделайте к понедельнику.';
    expect(extractNewText(own)).toContain('Привет! Нужен доступ к 1С для Петрова, он');
  });
});

describe('footers and gateway tags', () => {
  it('a phone footer names its device; the author\'s "отправлено с устройства учёта" is their text', () => {
    expect(extractNewText('Нужен доступ.\n\nОтправлено с устройства Galaxy')).toBe('Нужен доступ.');
    const own = 'Не работает выгрузка.\nОтправлено с устройства учёта 12.11 в 10:00, но показаний нет.';
    expect(extractNewText(own)).toBe(own);
  });

  it("drops known gateway tags, stacked or with a colon, and keeps the author's own words", () => {
    expect(bareSubject('[Ext]: доступ к Jira')).toBe('доступ к Jira');
    expect(bareSubject('[CAUTION] [EXT] Re: доступ')).toBe('доступ');
    expect(isReplySubject('[CAUTION] [EXT] Re: доступ')).toBe(true);
    expect(bareSubject('**Внешний** контур VPN не работает')).toBe('**Внешний** контур VPN не работает');
    expect(bareSubject('[Срочно] касса 3')).toBe('[Срочно] касса 3');
  });
});

// ---- forwards and replies through the whole parse and build-request steps ------------------------------------------
// M04a's kind (field-cases/README.md: "every mail client's forward format"): what the secretary receives for a reply
// whose quoted history holds a forward, and for a forward with the author's note typed below it.

const OWN = { ownAddresses: ['Workemon <bot@example.test>'] };
/** The request text the secretary receives for a plain-text mail (parse step, then build-request step). */
async function requestFor(o: { subject: string; body: string; inReplyTo?: string }): Promise<string | undefined> {
  const raw = buildEmail({
    subject: o.subject,
    inReplyTo: o.inReplyTo,
    references: o.inReplyTo,
    body: o.body.replace(/\n/g, '\r\n'),
  });
  return buildRequestText(await parseInboundMail(raw, OWN), 20_000);
}

const GMAIL_FORWARD = [
  '---------- Forwarded message ---------',
  'From: Petr Sidorov <sidorov@example.test>',
  'Date: Fri, Nov 20, 2026 at 5:00 PM',
  'Subject: Доступ к Kibana',
  'To: Anna Smirnova <anna@client.test>',
  '',
  'Нужен доступ к Kibana на чтение.',
];
const quoted = (lines: string[]) => lines.map((l) => (l ? `> ${l}` : '>'));

describe('"Re: Fwd:": a reply whose quoted history holds a forward is a reply', () => {
  it('reads only the prefix that comes first: "Re: Fwd:" and "RE: FW:" are replies, "Fwd: Re:" a forward', () => {
    expect(isForwardSubject('Re: Fwd: Доступ')).toBe(false);
    expect(isForwardSubject('RE: FW: Доступ')).toBe(false);
    expect(isForwardSubject('[EXT] Re: Fwd: Доступ')).toBe(false);
    expect(isForwardSubject('Fwd: Re: Доступ')).toBe(true);
    expect(isForwardSubject('[EXT] FW: RE: Доступ')).toBe(true);
  });

  it('passes on only the new text when the quote opens with the forward (no attribution above it)', async () => {
    const body = ['Спасибо, а можно ещё доступ к Grafana?', '', ...quoted(GMAIL_FORWARD)].join('\n');
    const request = await requestFor({ subject: 'Re: Fwd: Доступ к Kibana', body, inReplyTo: '<a1@client.test>' });
    expect(request).toBe('Спасибо, а можно ещё доступ к Grafana?');
  });

  it('passes on only the new text under an unmarked history; the author\'s forwards and "Fwd: Re:" stay forwards', async () => {
    const body = [
      'Спасибо, а можно ещё доступ к Grafana?',
      '',
      'On Fri, Nov 20, 2026 at 6:12 PM Anna Smirnova <anna@client.test> wrote:',
      '',
      'Посмотри, пожалуйста.',
      '',
      ...GMAIL_FORWARD,
    ].join('\n');
    const request = await requestFor({ subject: 'Re: Fwd: Доступ к Kibana', body, inReplyTo: '<a2@client.test>' });
    expect(request).toBe('Спасибо, а можно ещё доступ к Grafana?');
    const forward = await requestFor({
      subject: 'Fwd: Re: Доступ',
      inReplyTo: '<a4@client.test>',
      body: [
        'Посмотрите, пожалуйста.',
        '',
        ...GMAIL_FORWARD.map((l) => l.replace('Subject: Доступ к Kibana', 'Subject: Re: Доступ')),
        '',
        'On Fri, Nov 20, 2026 at 4:00 PM Anna Smirnova <anna@client.test> wrote:',
        '> Какой доступ нужен?',
      ].join('\n'),
    });
    expect(forward).toBe(
      [
        'Посмотрите, пожалуйста.',
        '',
        '[Пересланное письмо]',
        'От: Petr Sidorov <sidorov@example.test>',
        'Тема: Re: Доступ',
        'Нужен доступ к Kibana на чтение.',
        '',
        'On Fri, Nov 20, 2026 at 4:00 PM Anna Smirnova <anna@client.test> wrote:',
        'Какой доступ нужен?',
      ].join('\n'),
    );
    // In a reply, a forward the author put above the quoted history is theirs; the quoted forward below is not.
    const reply = await requestFor({
      subject: 'Re: Fwd: Доступ к Kibana',
      inReplyTo: '<a5@client.test>',
      body: [
        'Вот ещё письмо от Петра.',
        '',
        '-------- Пересылаемое сообщение --------',
        '21.11.2026, 09:00, "Сидоров Пётр" <sidorov@example.test>:',
        '',
        'И к Grafana тоже, пожалуйста.',
        '',
        '-------- Конец пересылаемого сообщения --------',
        '',
        'On Fri, Nov 20, 2026 at 6:12 PM Anna Smirnova <anna@client.test> wrote:',
        ...quoted(GMAIL_FORWARD),
      ].join('\n'),
    });
    expect(reply).toBe(
      'Вот ещё письмо от Петра.\n\n[Пересланное письмо]\nОт: Сидоров Пётр <sidorov@example.test>\nИ к Grafana тоже, пожалуйста.',
    );
    // A forward the author put below a marked quote (bottom-posting) is theirs.
    const below = await requestFor({
      subject: 'Re: Доступ',
      inReplyTo: '<a6@client.test>',
      body: [
        'On Fri, Nov 20, 2026 at 6:12 PM Workemon <bot@example.test> wrote:',
        '> Какой доступ нужен?',
        '',
        'Вот что пишет Петров, помогите, пожалуйста.',
        '',
        ...GMAIL_FORWARD,
      ].join('\n'),
    });
    expect(below).toBe(
      'Вот что пишет Петров, помогите, пожалуйста.\n\n[Пересланное письмо]\nОт: Petr Sidorov <sidorov@example.test>\nТема: Доступ к Kibana\nНужен доступ к Kibana на чтение.',
    );
  });

  it('passes on only the new text of Outlook\'s "RE: FW:" (header blocks, no separator), with or without In-Reply-To', async () => {
    const body = [
      'Спасибо, а можно ещё доступ к Grafana?',
      '',
      '________________________________',
      'From: Anna Smirnova <anna@client.test>',
      'Sent: Friday, November 20, 2026 6:12 PM',
      'To: Ivan Petrov <ivan@client.test>',
      'Subject: FW: Доступ',
      '',
      'Посмотри, пожалуйста.',
      '',
      '________________________________',
      'От: Сидоров Пётр <sidorov@example.test>',
      'Отправлено: 20 ноября 2026 г. 17:00',
      'Кому: Смирнова Анна <anna@client.test>',
      'Тема: Доступ',
      '',
      'Нужен доступ к Kibana на чтение.',
    ].join('\n');
    for (const inReplyTo of ['<a3@client.test>', undefined]) {
      expect(await requestFor({ subject: 'RE: FW: Доступ', body, inReplyTo })).toBe(
        'Спасибо, а можно ещё доступ к Grafana?',
      );
    }
    // A forward of that reply ("FW: RE: FW:") passes the whole thread on.
    const forward = await requestFor({ subject: 'FW: RE: FW: Доступ', body: `Коллеги, помогите.\n\n${body}` });
    expect(forward).toContain('Коллеги, помогите.');
    expect(forward).toContain('[Пересланное письмо]');
    expect(forward).toContain('Нужен доступ к Kibana на чтение.');
  });
});

describe('a note typed below a Gmail or Outlook forward', () => {
  const NOTE = 'Иван, сделай, пожалуйста, сегодня: это для аудита.';

  it("reaches the secretary under the forwarded mail's RFC 3676 signature (Gmail), with the note above too; with no note the signature goes", async () => {
    const body = [
      'Коллеги, помогите.',
      '',
      ...GMAIL_FORWARD,
      '',
      '-- ',
      'Пётр Сидоров',
      'Ведущий аналитик',
      '+7 495 123-45-67',
      '',
      NOTE,
    ].join('\n');
    const request = await requestFor({ subject: 'Fwd: Доступ к Kibana', body });
    expect(request).toBe(
      [
        'Коллеги, помогите.',
        '',
        '[Пересланное письмо]',
        'От: Petr Sidorov <sidorov@example.test>',
        'Тема: Доступ к Kibana',
        'Нужен доступ к Kibana на чтение.',
        '',
        NOTE,
      ].join('\n'),
    );
    // Nothing typed below: the signature, contacts and disclaimer are cut as before.
    const signed = [
      ...GMAIL_FORWARD,
      '',
      '--',
      'Пётр Сидоров',
      'Ведущий аналитик',
      '',
      'ООО «Ромашка», ИНН 7701234567',
      'www.romashka.example',
      '',
      'Это письмо и вложения к нему конфиденциальны. Если вы получили его по ошибке, уведомите отправителя.',
    ].join('\n');
    const alone = await requestFor({ subject: 'Fwd: Доступ к Kibana', body: signed });
    expect(alone).toBe(
      '[Пересланное письмо]\nОт: Petr Sidorov <sidorov@example.test>\nТема: Доступ к Kibana\nНужен доступ к Kibana на чтение.',
    );
  });

  it("reaches the secretary from a Gmail HTML forward: the note's <div> right under the forwarded signature", async () => {
    const html =
      '<div dir="ltr"><div class="gmail_quote"><div dir="ltr" class="gmail_attr">---------- Forwarded message ---------<br>' +
      'From: <b>Petr Sidorov</b> &lt;sidorov@example.test&gt;<br>Date: Fri, Nov 20, 2026 at 5:00 PM<br>' +
      'Subject: Доступ к Kibana<br>To: Anna Smirnova &lt;anna@client.test&gt;<br></div><br><br>' +
      '<div dir="ltr">Нужен доступ к Kibana на чтение.<br><br>С уважением,<br>Пётр Сидоров</div></div>' +
      `<div>${NOTE}</div></div>`;
    const raw = buildEmail({ subject: 'Fwd: Доступ к Kibana', contentType: 'text/html; charset=utf-8', body: html });
    expect(buildRequestText(await parseInboundMail(raw, OWN), 20_000)).toBe(
      [
        '[Пересланное письмо]',
        'От: Petr Sidorov <sidorov@example.test>',
        'Тема: Доступ к Kibana',
        'Нужен доступ к Kibana на чтение.',
        '',
        NOTE,
      ].join('\n'),
    );
  });

  it('reaches the secretary under a closing formula of an Outlook RU forward, its own signature left out', async () => {
    const body = [
      'От: Сидоров Пётр <sidorov@example.test>',
      'Отправлено: 20 ноября 2026 г. 17:00',
      'Кому: Смирнова Анна <anna@client.test>',
      'Тема: Доступ к Kibana',
      '',
      'Нужен доступ к Kibana на чтение.',
      '',
      'С уважением,',
      'Пётр Сидоров',
      '',
      NOTE,
      'Срок — до пятницы?',
      '',
      'С уважением,',
      'Анна Смирнова',
    ].join('\n');
    const request = await requestFor({ subject: 'FW: Доступ к Kibana', body });
    expect(request).toBe(
      [
        '[Пересланное письмо]',
        'От: Сидоров Пётр <sidorov@example.test>',
        'Тема: Доступ к Kibana',
        'Нужен доступ к Kibana на чтение.',
        '',
        NOTE,
        'Срок — до пятницы?',
      ].join('\n'),
    );
  });

  it("reaches the secretary under Outlook EN's separator, a closing formula and a disclaimer; the disclaimer does not", async () => {
    const body = [
      'Please help.',
      '',
      '________________________________',
      'From: Petr Sidorov <sidorov@example.test>',
      'Sent: Friday, November 20, 2026 5:00 PM',
      'To: Anna Smirnova <anna@client.test>',
      'Subject: Access to Kibana',
      '',
      'We need read access to Kibana.',
      '',
      'Best regards,',
      'Petr Sidorov',
      'Senior Analyst',
      '',
      'This e-mail is confidential and intended solely for the addressee. If you received it in error, please notify the sender.',
      '',
      'Ivan, could you do it today, please?',
    ].join('\n');
    const request = await requestFor({ subject: 'FW: Access to Kibana', body });
    expect(request).toBe(
      [
        'Please help.',
        '',
        '[Пересланное письмо]',
        'От: Petr Sidorov <sidorov@example.test>',
        'Тема: Access to Kibana',
        'We need read access to Kibana.',
        '',
        'Ivan, could you do it today, please?',
      ].join('\n'),
    );
  });
});

describe('text below a forwarded signature that is not a note (review of the note rule)', () => {
  it('never passes on our own answer in an Outlook history, its rule or its thanks taken for a signature', async () => {
    for (const answer of [
      ['Здравствуйте! Заявка на доступ создана.', '---', 'Номер заявки SUP-1234. Доступ появится в течение часа.'],
      ['Спасибо, Иван!', 'Заявка на доступ создана, номер SUP-1234. Проверьте, пожалуйста, через час?'],
    ]) {
      const body = [
        'Коллеги, посмотрите, пожалуйста.',
        '',
        'От: Иван Петров <ivan@client.test>',
        'Отправлено: 21 ноября 2026 г. 10:00',
        'Кому: Workemon <bot@example.test>',
        'Тема: RE: Доступ к Kibana',
        '',
        'Доступ так и не появился.',
        '',
        'От: Workemon <bot@example.test>',
        'Отправлено: 20 ноября 2026 г. 17:05',
        'Кому: Иван Петров <ivan@client.test>',
        'Тема: Доступ к Kibana',
        '',
        ...answer,
      ].join('\n');
      const request = await requestFor({ subject: 'FW: RE: Доступ к Kibana', body });
      expect(request).toContain('Доступ так и не появился.');
      expect(request).not.toContain('SUP-1234');
    }
  });

  it('cuts footers under the forwarded signature however they are worded: messengers, disclaimers, slogans, hours', async () => {
    const footers = [
      ['tg: @petr_s', 'whatsapp: +7 916 000-00-00'],
      ['Save paper - think before you print.'],
      ['Follow us on LinkedIn and Twitter!'],
      ['Our new office is open at 221B Baker Street, London.'],
      ['Компания работает с 9 до 18 по будням.'],
    ];
    for (const footer of footers) {
      // The forwarded mail's text as splitForwards hands it on, and the whole mail through the pipeline.
      const forwarded = ['Нужен доступ к Kibana на чтение.', '', 'С уважением,', 'Петр Сидоров', '', ...footer];
      const text = forwardedText(forwarded.join('\n'), ours);
      const request = await requestFor({
        subject: 'Fwd: Доступ к Kibana',
        body: ['Посмотри, пожалуйста.', '', ...GMAIL_FORWARD.slice(0, -1), ...forwarded].join('\n'),
      });
      for (const passed of [text, request]) {
        expect(passed).toContain('Нужен доступ к Kibana на чтение.');
        for (const line of footer) expect(passed).not.toContain(line);
      }
    }
  });
});

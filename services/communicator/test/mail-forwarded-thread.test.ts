// The pure steps session 30 added or changed in mail-text.ts, at their edges: a forwarded thread's history
// (forwardedText), addresses in a line (addressesIn), attributions wrapped above a quote, phone footers and gateway
// tags. The same kinds through Dovecot and the SMTP sink: email-s30-cases.test.ts.
import { describe, expect, it } from 'vitest';
import { addressesIn, bareSubject, extractNewText, forwardedText, isReplySubject } from '../src/email/mail-text.js';

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

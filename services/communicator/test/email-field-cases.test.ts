// Field cases (the mail people really send, test/fixtures/field-cases, copied from the project's shared field
// cases) and further members of each kind (test/fixtures/more-cases) go through the real communicator: IMAP
// APPEND into Dovecot, the fake secretary records the request it received, the SMTP sink the reply sent.
import { expect } from 'vitest';
import { CUT_MARKER } from '../src/email/mail-request.js';
import { secretaryRequestMaxLength } from '../src/request-limit.js';
import { describeMailReplay, type ExpectedRequest } from './mail-replay.js';

/** What the secretary must receive for each mail (mail-replay.ts ExpectedRequest). */
const EXPECTED: Record<string, ExpectedRequest> = {
  'field-cases/M01-subject-only.eml': 'Нужна выгрузка авторизаций кошельков за октябрь',
  'field-cases/M04a-inline-forward-ru.eml': [
    'Коллеги, помогите, пожалуйста, с запросом ниже.',
    '',
    '[Пересланное письмо]',
    'От: Сидоров Пётр <sidorov@example.test>',
    'Нужна выгрузка авторизаций по кошелькам b2c за октябрь с разбивкой по дням.',
  ].join('\n'),
  'field-cases/M05-forward-as-attachment.eml': [
    'Пересылаю письмо коллеги, помогите.',
    '',
    '[Пересланное письмо]',
    'От: sidorov@example.test',
    'Тема: Выгрузка',
    'Нужна выгрузка авторизаций по кошелькам b2c за октябрь с разбивкой по дням.',
  ].join('\n'),
  'field-cases/M06a-first.eml': 'Аналитика\n\nЯ хочу получать аналитику о операциях наших кошельков',
  'field-cases/M06b-bottom-post.eml': 'Операции авторизации, за последний месяц, по дням.',
  'field-cases/M07a-gmail-wrapped.eml': 'Меня интересуют авторизации кошельков [enough].',
  'field-cases/M08-html-only-outlook.eml': [
    'Выгрузка',
    '',
    'Добрый день!',
    'Нужна выгрузка «авторизаций» по кошелькам <b2c> & b2b:',
    '',
    'Период Октябрь 2026',
    'Разрез по дням',
  ].join('\n'),
  'field-cases/M09a-tnef-only.eml': null,
  'field-cases/M12b-long-body.eml': (request) => {
    expect(request.length).toBeLessThanOrEqual(secretaryRequestMaxLength());
    expect(request.length).toBeGreaterThan(secretaryRequestMaxLength() - 200);
    expect(
      request.startsWith('Ошибка выгрузки\n\nВыгрузка авторизаций падает, лог ниже.\n2026-11-20 10:00:00 ERROR'),
    ).toBe(true);
    expect(request.endsWith(CUT_MARKER)).toBe(true);
  },
  'field-cases/M14-idle-dropped.eml': 'idle\n\nНужна статистика авторизаций по кошелькам',
  'more-cases/S01-subject-only-en.eml': 'VPN access for the new intern',
  'more-cases/S02-subject-only-whitespace.eml': 'Нужен доступ к Grafana',
  'more-cases/F01-gmail-forward.eml':
    'Посмотрите, пожалуйста.\n\n[Пересланное письмо]\nОт: Пётр Сидоров <sidorov@example.test>\nТема: Отчёт\nНужен отчёт по возвратам за ноябрь.',
  'more-cases/F02-outlook-ru-forward.eml':
    'Коллеги, помогите.\n\n[Пересланное письмо]\nОт: Сидоров Пётр <sidorov@example.test>\nТема: Доступ\nНужен доступ к базе клиентов на чтение.',
  'more-cases/F03-apple-forward.eml':
    'Смотрите ниже.\n\n[Пересланное письмо]\nОт: Sidorov Petr <sidorov@example.test>\nТема: Выгрузка\nНужна выгрузка платежей по дням.',
  'more-cases/F04-thunderbird-forward.eml':
    'Смотрите ниже.\n\n[Пересланное письмо]\nОт: Sidorov Petr <sidorov@example.test>\nТема: Выгрузка\nНужна выгрузка отказов по дням.',
  'more-cases/F05-mailru-forward.eml':
    'Гляньте, пожалуйста.\n\n[Пересланное письмо]\nОт: Сидоров Пётр <sidorov@example.test>\nТема: Выгрузка\nНужна выгрузка чеков за октябрь.',
  'more-cases/F06-nested-forward.eml': [
    'Пересылаю цепочку.',
    '',
    '[Пересланное письмо]',
    'От: Анна <anna@example.test>',
    'Тема: Fwd: Доступ',
    'Анна: это срочно.',
    '',
    '[Пересланное письмо]',
    'От: Пётр Сидоров <sidorov@example.test>',
    'Тема: Доступ',
    'Нужен доступ к Jira проекту PAY.',
  ].join('\n'),
  'more-cases/F07-rfc822-html-inner.eml':
    'Помогите с письмом ниже.\n\n[Пересланное письмо]\nОт: Sidorov <sidorov@example.test>\nТема: Отчёт по возвратам\nНужен отчёт по возвратам за ноябрь.',
  'more-cases/F08-rfc822-no-note.eml':
    '[Пересланное письмо]\nОт: anna@example.test\nТема: Zabbix\nНужен доступ к Zabbix.',
  'more-cases/F09-gmail-html-forward.eml':
    'Помогите, пожалуйста.\n\n[Пересланное письмо]\nОт: Пётр Сидоров <sidorov@example.test>\nТема: Платежи\nНужен реестр платежей за ноябрь.',
  'more-cases/F10-apple-html-forward.eml':
    'Гляньте ниже.\n\n[Пересланное письмо]\nОт: Petr Sidorov <sidorov@example.test>\nТема: Реестр\nНужен реестр возвратов за ноябрь.',
  'more-cases/F11-outlook-html-forward.eml':
    'Коллеги, посмотрите.\n\n[Пересланное письмо]\nОт: Sidorov Petr <sidorov@example.test>\nТема: Реестр\nНужен реестр отказов за ноябрь.',
  'more-cases/A05-unprefixed-history.eml': 'Только за ноябрь.',
  'more-cases/A06-ru-wrapped-attribution.eml': 'Переводы между кошельками.',
  'more-cases/A07-ru-unprefixed-history.eml': 'Только за ноябрь, по дням.',
  'more-cases/B03-yandex-html-bottom.eml': 'Авторизации по картам.',
  'more-cases/F12-quoted-forward-ru.eml':
    'Смотри.\n\n[Пересланное письмо]\nОт: Sidorov <sidorov@example.test>\nНужен доступ к CRM.',
  'more-cases/F13-outlook-en-fw.eml':
    'See below.\n\n[Пересланное письмо]\nОт: Sidorov Petr <sidorov@example.test>\nТема: Доступ\nНужен доступ к CRM на запись.',
  'more-cases/B01-interleaved.eml': 'Здравствуйте!\nОктябрь 2026.\nПо дням.',
  'more-cases/B02-bottom-post-en.eml': 'Карточные операции за неделю.',
  'more-cases/A01-yandex-attribution.eml': 'Нужны авторизации по кошелькам.',
  'more-cases/A02-mailru-wrapped.eml': 'Нужны возвраты по картам.',
  'more-cases/A03-outlook-en-history.eml': 'Only card payments, please.',
  'more-cases/A04-outlook-ru-history.eml': 'Только переводы.',
  'more-cases/H01-gmail-html.eml':
    'Нужен список «отказов»:\n * по картам\n * по кошелькам\n\nМесяц Банк\nНоябрь Альфа Банк',
  'more-cases/H02-outlook-web-html.eml': 'Прошу выгрузку за неделю & месяц.',
  // TNEF a reader can open: its text is the request (the damaged M09a stays unreadable).
  'more-cases/T01-tnef-plain-body.eml': 'Проблема\n\nНужна выгрузка возвратов по кошелькам за ноябрь.',
  'more-cases/T02-tnef-rtf-body.eml': 'Отчёт\n\nНужен отчёт по отказам за неделю.',
  'more-cases/U01-picture-only.eml': null,
  'more-cases/U02-empty.eml': null,
  'more-cases/R01-koi8-subject.eml': 'Доступ к BI\n\nПрошу доступ к отчётам.',
  'more-cases/R02-cp1251-subject-undeclared.eml': 'Отчёты продаж\n\nПрошу доступ к отчётам по продажам.',
  'more-cases/L01-600k-single-line.eml': (request) => {
    expect(request.length).toBeLessThanOrEqual(secretaryRequestMaxLength());
    expect(request).toMatch(/^Лог\n\nОшибка: x{1000}/);
    expect(request.endsWith(CUT_MARKER)).toBe(true);
  },
};

describeMailReplay('field cases and further members of each kind', ['field-cases', 'more-cases'], EXPECTED);

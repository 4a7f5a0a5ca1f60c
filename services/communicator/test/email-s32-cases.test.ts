// Session 32: a mail whose only content is a calendar invitation (a meeting request sent to the mailbox; the M09
// kind: the body exists only in a part we did not read). Its SUMMARY, start, place and DESCRIPTION were lost: the
// secretary got the subject alone ("Встреча: …", "Invitation"). Replayed through the real communicator (mail-replay.ts:
// IMAP APPEND into Dovecot, the fake secretary records the request, the SMTP sink the reply). C1 and C2 failed before;
// C3 (an invitation ical.js cannot parse) passed and stays: its subject is the request. C4 (dates ical.js throws on)
// came with the reader.
import { describeMailReplay, holds, type ExpectedRequest } from './mail-replay.js';

const EXPECTED: Record<string, ExpectedRequest> = {
  // Yandex Calendar: the whole mail is one text/calendar part; the description folded over two lines with `\,`.
  's32-cases/C1-yandex-calendar-invitation-only.eml': holds(
    [
      'Тема: Доступ к VPN для новых сотрудников',
      'Когда: 2026-12-02T11:00:00 (Europe/Moscow)',
      'Где: Переговорная 3',
      'Коллеги, нужно выдать доступ к VPN трём новым сотрудникам отдела платежей с 1 декабря.\nСписок: Смирнова, Козлов, Орлова.',
    ],
    ['BEGIN:VCALENDAR', 'mailto:', '\\,'],
  ),
  // An empty text part and the invitation attached as invite.ics (application/ics, base64).
  's32-cases/C2-ics-attached-empty-body.eml': holds(
    ['Тема: Сверка реестра возвратов', 'выгрузку возвратов по картам Мир за ноябрь, в разрезе по дням'],
    ['BEGIN:VCALENDAR', 'invite.ics'],
  ),
  's32-cases/C3-damaged-calendar-subject-only.eml': 'Нужен доступ к Jira, проект PAY',
  // Dates ical.js cannot parse (it throws when they are read): left out, the rest is read, the mail is answered.
  's32-cases/C4-invitation-with-damaged-dates.eml': holds(
    ['Тема: Ключи для API банка-партнёра', 'Нужно перевыпустить ключи API для банка-партнёра до пятницы.'],
    ['Когда:', 'notadate'],
  ),
};

describeMailReplay('s32: a calendar invitation and nothing else', ['s32-cases'], EXPECTED);

// Session 30's break attempts: members of the field-case kinds (test/fixtures/s30-cases) that Workemon mishandled,
// replayed through the real communicator (mail-replay.ts: IMAP APPEND into Dovecot, the fake secretary records the
// request, the SMTP sink the reply). Every case here failed before the fixes it came with.
import { describeMailReplay, holds, type ExpectedRequest } from './mail-replay.js';

const EXPECTED: Record<string, ExpectedRequest> = {
  // M01: the subject is the request; a phone app's footer ("Получить Outlook для iOS", Samsung's "Отправлено с
  // устройства Galaxy") is no part of it; a gateway tag ("[EXT] ") without a Re:/Fwd: after it is not either.
  's30-cases/S01-subject-only-outlook-ios-ru-footer.eml': 'Нужен доступ к Grafana',
  's30-cases/S02-subject-only-samsung-ru-footer.eml': 'Нужен доступ к Airflow',
  's30-cases/S03-subject-only-ext-tag.eml': 'Нужна выгрузка отказов за ноябрь',
  // M04a/M05: a forwarded *thread* (Fwd: Re: / FW: RE:): the request is in the forwarded mail's own history (Gmail's
  // "On … wrote:" + '>' quote, Outlook's second header block RU and EN, a Yandex attribution inside message/rfc822);
  // it must reach the secretary, not only the colleague's "pass it on" line above it.
  's30-cases/F01-gmail-fwd-of-reply-thread.eml': holds([
    'Посмотрите, пожалуйста, запрос ниже.',
    'Иван, передай в поддержку, пожалуйста.',
    'Нужен доступ к Kafka UI на запись.',
  ]),
  's30-cases/F02-outlook-ru-fw-re-thread.eml': holds([
    'Коллеги, помогите, пожалуйста.',
    'Иван, передай в поддержку.',
    'Нужен доступ к Harbor на запись.',
  ]),
  's30-cases/F03-rfc822-inner-reply-holds-request.eml': holds([
    'Пересылаю, помогите.',
    'Иван, передай в поддержку.',
    'Нужен доступ к Nexus на запись.',
  ]),
  's30-cases/F05-outlook-en-fw-re-thread.eml': holds([
    'Please help.',
    'Ivan, please pass it on to support.',
    'Нужен доступ к SonarQube на запись.',
  ]),
  // M07: attribution forms that reach the secretary today: The Bat! RU "Вы писали <date>, <time>:", Lotus Notes
  // EN "… wrote on 11/21/2026 10:05:43 AM:", "… писал(а) <date> <time>:", Evolution RU wrapped before "пишет:".
  's30-cases/A01-thebat-ru-bottom.eml': holds(['Только возвраты.'], ['Вы писали', 'Уточните', 'mailto:']),
  's30-cases/A03-notes-en-wrote-on-ampm.eml': 'Only card refunds.',
  's30-cases/A04-notes-ru-pisal-a-date.eml': 'Только возвраты по картам.',
  's30-cases/A06-evolution-ru-wrapped.eml': 'Только по кошелькам.',
  // Phone-app footers above Outlook's history / below a bottom post are signatures, not the request.
  's30-cases/A05-outlook-android-ru-footer-reply.eml': 'Только переводы.',
  's30-cases/B02-outlook-ru-bottom-under-mobile-footer.eml': 'Только отказы, по дням.',
  // M08: Outlook mobile's HTML signature container (div#ms-outlook-mobile-signature) is no text of the author's.
  's30-cases/H01-outlook-mobile-html-ru-signature-div.eml': 'Только Тинькофф.',
  // M06/M08: Yahoo's HTML quote is a div (yahoo_quoted), not a blockquote: the answer typed below it is the text
  // (today: "could not read", no secretary call).
  's30-cases/H04-yahoo-html-bottom.eml': 'Only card refunds, by day.',
  // M09: only a picture, plus a phone app's footer: unreadable, no secretary call.
  's30-cases/P02-photo-samsung-ru-footer.eml': null,
  's30-cases/P03-photo-outlook-android-ru-footer.eml': null,
};

describeMailReplay('s30: more members of the mail field-case kinds', ['s30-cases'], EXPECTED);

// Session 38: mails an adversarial tester found misread, replayed through Dovecot and the SMTP sink. Field-report
// kind M06 (an answer written below the quote): each B01–B04, B06, B08, B09, B12, H07, H14 and M01, M02 file failed
// before its change; B05, H11, N01–N03 are their neighbours and guard the change. A04–AH06 and H03 come from a
// second round of attacks on the change: what it first let through below a quote (a disclaimer, a gateway banner, a
// signature block: mail-text.ts withoutFooterBelowQuote), and a link's words taken for a stub's.
// - B01–B04, B06, B09 (plain) and H07, H14 (HTML): a phone's footer ("Отправлено с iPhone", "Sent from my iPhone",
//   Yandex's mobile footer, Outlook for Android's), a "-- " signature or a regards formula above the quote, the answer
//   below it. The signature was cut from its line to the end of the mail, answer included: no secretary call and
//   the "could not read your mail" reply. A signature above a quote now ends only its own fragment (mail-text.ts
//   extractNewText). B08, B12: the same with answers between the quoted lines.
// - M01, M02: multipart/alternative whose plain part only says "use an HTML mail program" (a CRM, a web form):
//   the stub was the request. The HTML part is read when the plain one is such a notice and shares none of its words
//   (mail-parsing.ts bodyTextOf); N01, a plain part that mentions HTML and says what the HTML says, stays plain.
// - F13–F15 (field-report kind M04a, every client's forward): Apple Mail quotes a forward whole with '>', header
//   block too; the author's note typed under it was read as the forwarded mail and the quoted request was lost.
//   The text under a quoted forward is now the author's (mail-text.ts textBelowQuotedForward); F01, the note above,
//   is the neighbour.
import { describeMailReplay, holds, type ExpectedRequest } from './mail-replay.js';

const D = 's38-cases/';
const PERIOD = 'За сентябрь и октябрь 2026.';
const PERIOD_EN = 'September and October 2026.';

const FORWARDED_RU = [
  '[Пересланное письмо]',
  'От: Сидоров Пётр <sidorov@bank.test>',
  'Тема: Возвраты',
  'Нужна выгрузка возвратов по эквайрингу за октябрь с разбивкой по мерчантам.',
].join('\n');

const EXPECTED: Record<string, ExpectedRequest> = {
  // What a server or the client appends below the quote is not the author's: a disclaimer, a gateway's banner, a
  // signature block. Nothing else below the quote: nothing new, the polite request for text.
  [`${D}A04-iphone-quote-disclaimer-ru.eml`]: 'За октябрь, по дням.',
  [`${D}A05-iphone-quote-bare-sig-below.eml`]: null,
  [`${D}A07-iphone-quote-answer-then-bare-sig.eml`]: 'За октябрь 2026, по дням.',
  [`${D}A12-toppost-iphone-quote-kaspersky.eml`]: 'За октябрь.',
  [`${D}A14-yandex-footer-quote-gateway-footer.eml`]: null,
  [`${D}A17-en-sentfromiphone-quote-sig-below.eml`]: null,
  [`${D}A22-plain-fwd-dashsig-note-above-quote-sig-below.eml`]: null,
  [`${D}AH06-gmail-htmlonly-toppost-regards-quote-then-footer.eml`]: 'Нужна за октябрь.',
  // A third round: what stands below a quote is cut only on clear evidence (a banner that names an outside sender and
  // warns, a disclaimer paragraph, a name over a job title): an answer that is a name and a phone, an address, a
  // company with its ИНН, or a line with a disclaimer's word in it is the author's.
  [`${D}J03-en-banner-originated-outside.eml`]: 'XLSX.',
  [`${D}J04-ru-banner-vnimanie.eml`]: 'XLSX.',
  [`${D}J05-ru-disclaimer-wrapped.eml`]: 'XLSX, за октябрь.',
  [`${D}L01-name-email-answer-below-quote.eml`]:
    'Добрый день!\n\nАнна Петрова\nanna.petrova@corp.test\nCSV, за октябрь.',
  [`${D}L05-legal-entity-answer-bottom.eml`]: 'Добрый день!\n\nООО «Ромашка», ИНН 7701234567, КПП 770101001',
  [`${D}L10-contact-mid-answer-loses-rest.eml`]:
    'Получатель: отдел рисков\nanna.petrova@corp.test\nФормат: CSV\nПериод: сентябрь и октябрь',
  [`${D}L13-external-sender-answer.eml`]: 'Внешний отправитель, с адреса billing@romashka-pay.test',
  [`${D}L22-iphone-footer-above-then-name-phone-answer.eml`]: 'Иван Сидоров\n+7 916 123-45-67',
  [`${D}L23-sig-above-quote-thanks-correct-below.eml`]: 'Спасибо, всё верно',
  [`${D}L24-multi-paragraph-with-signature.eml`]: [
    'Добрый день!',
    '',
    'Получатель — отдел рисков, Анна Петрова.',
    '',
    'Формат CSV, разделитель точка с запятой.',
    '',
    'Период: сентябрь и октябрь 2026.',
  ].join('\n'),
  [`${D}L29-interleaved-two-line-answer-poluchatel.eml`]:
    'Добрый день!\n\nПолучатель — отдел рисков.\nКопию — Анне Петровой.\nCSV',
  // A plain part with a link, mentioning the browser: the HTML shows the link as its text; still the same mail.
  [`${D}H03-legit-plain-url-mentions-browser.eml`]:
    'Не открывается отчёт\n\nСтраница https://portal.bank.test/reports/authorizations/october-daily не открывается в ' +
    'браузере, ошибка 502. Проверьте, пожалуйста.',
  [`${D}F01-apple-ru-nachalo.eml`]: `Посмотрите, пожалуйста.\n\n${FORWARDED_RU}`,
  [`${D}F13-fwd-note-below-with-iphone.eml`]: `Коллеги, это срочно, до пятницы.\n\n${FORWARDED_RU}`,
  [`${D}F14-apple-fwd-note-below-no-footer.eml`]: `Коллеги, это срочно, до пятницы.\n\n${FORWARDED_RU}`,
  [`${D}F15-apple-fwd-en-note-below.eml`]: [
    'This is urgent, by Friday please.',
    '',
    '[Пересланное письмо]',
    'От: Peter Sidorov <psidorov@bank.test>',
    'Тема: Refunds',
    'Please prepare the refunds export for October.',
  ].join('\n'),
  [`${D}B01-iphone-sig-top-bottom-post-plain.eml`]: PERIOD,
  [`${D}B02-sent-from-iphone-en-bottom.eml`]: PERIOD_EN,
  [`${D}B03-yandex-mobile-footer-bottom.eml`]: PERIOD,
  [`${D}B04-sig-dashdash-top-bottom-post.eml`]: PERIOD,
  [`${D}B05-no-sig-attrib-quoted-bottom.eml`]: PERIOD,
  [`${D}B06-outlook-android-footer-top-bottom-post.eml`]: PERIOD,
  [`${D}B08-interleaved-sig-top.eml`]: 'К Grafana.\nЧтение.',
  [`${D}B09-regards-above-quote-bottom-post.eml`]: PERIOD,
  [`${D}B12-iphone-interleaved.eml`]: 'К Grafana.\nЧтение.',
  [`${D}H07-apple-html-blockquote-bottom.eml`]: PERIOD,
  [`${D}H11-apple-html-bottom-no-sig.eml`]: PERIOD,
  [`${D}H14-outlook-web-html-sig-plain-above-quote-bottom.eml`]: PERIOD_EN,
  [`${D}M01-alt-plain-stub-html-real.eml`]:
    'Возвраты\n\nНужна выгрузка возвратов по эквайрингу за октябрь с разбивкой по мерчантам.',
  [`${D}M02-alt-plain-stub-en.eml`]: 'Refunds\n\nPlease prepare the refunds export for October.',
  [`${D}N01-alt-plain-mentions-html.eml`]:
    'Отчёт\n\nНужен отчёт по возвратам за октябрь в формате HTML, чтобы открыть в браузере.',
  // A footer above the quote and only a signature below it: nothing new, the polite request for text.
  [`${D}N02-iphone-footer-quote-signature-only.eml`]: null,
  [`${D}N03-regards-above-quote-answer-and-signature-below.eml`]: 'The last quarter, by week.',
  // Interleaved answers with a disclaimer's words in them ("получатель", "уведомление") are the author's.
  [`${D}N04-interleaved-answers-with-footer-words.eml`]: holds(
    ['Добрый день!', 'Получатель — отдел рисков, уведомление им не нужно.\nCSV.'],
    ['Кто получатель выгрузки', 'В каком формате', 'написал'],
  ),
};

describeMailReplay(
  's38: an answer below a quote under a footer, and a plain part that only asks for HTML',
  ['s38-cases'],
  EXPECTED,
);

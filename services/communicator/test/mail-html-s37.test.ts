// Session 37, HTML mail (mail-text.ts htmlToText), from a body review:
// - text the reader never sees (display:none, Outlook's mso-hide:all, opacity 0, a box of height 0 with its overflow
//   hidden, the `hidden` attribute) reached the model: where a forged instruction hides in a web form's mail; not
//   visibility:hidden or a zero font size, under which a child may be shown again (the s37 review's MJML mail);
// - of a long HTML body only the first MAX_HTML_INPUT_CHARS were read, so a request written under a long pasted
//   table (an Excel paste in Outlook) was lost with no sign of a cut.
import { describe, expect, it } from 'vitest';
import { MAX_HTML_INPUT_CHARS, htmlToText } from '../src/email/mail-text.js';

describe('hidden HTML is not the author’s text', () => {
  it.each([
    ['display:none', '<div style="display:none">HIDDEN</div>'],
    ['spaced, upper case, !important', '<span style="COLOR: red; Display : None !important">HIDDEN</span>'],
    ['single quotes, later declaration', "<p style='color:#000;display:none;'>HIDDEN</p>"],
    ['a CSS comment inside', '<p style="display:/**/none">HIDDEN</p>'],
    ['Outlook mso-hide:all', '<p class="MsoNormal" style="mso-hide:all">HIDDEN</p>'],
    ['opacity 0', '<span style="opacity: 0">HIDDEN</span>'],
    ['opacity 0.0', '<span style="opacity:0.0">HIDDEN</span>'],
    ['opacity 0%', '<span style="opacity:0%">HIDDEN</span>'],
    ['preheader', '<div style="max-height:0;overflow:hidden;mso-hide:all">HIDDEN</div>'],
    ['height 0, overflow hidden, any order', '<div style="overflow: hidden; color:#fff; height: 0px">HIDDEN</div>'],
    ['hidden attribute', '<div hidden>HIDDEN</div>'],
  ])('%s', (_name, hidden) => {
    const text = htmlToText(`<html><body><p>Прошу сбросить пароль.</p>${hidden}<p>Спасибо</p></body></html>`);
    expect(text).toContain('Прошу сбросить пароль.');
    expect(text).toContain('Спасибо');
    expect(text).not.toContain('HIDDEN');
  });

  it('keeps what is shown: other sizes and displays, and style text written in the mail', () => {
    const text = htmlToText(
      '<p style="font-size:0.9em">мелкий шрифт</p><div style="display:block">блок</div>' +
        '<span style="opacity:0.8">полупрозрачный</span><div style="height:0;overflow:visible">выступает</div>' +
        '<pre>&lt;div style="display:none"&gt;пример из шаблона&lt;/div&gt;</pre>',
    );
    for (const shown of [
      'мелкий шрифт',
      'блок',
      'полупрозрачный',
      'выступает',
      '<div style="display:none">пример из шаблона</div>',
    ])
      expect(text).toContain(shown);
  });

  it('keeps a visible child of visibility:hidden, and text under a container of font size 0 (MJML)', () => {
    const text = htmlToText(
      '<div style="visibility:hidden">Скрыто <span style="visibility:visible">Забронируйте переговорную 4</span></div>' +
        '<div style="font-size:0px;text-align:left"><div style="font-size:14px">Прошу подключить доступ к 1С</div></div>',
    );
    expect(text).toContain('Забронируйте переговорную 4');
    expect(text).toContain('Прошу подключить доступ к 1С');
  });
});

describe('a long HTML body is read at its head and its tail', () => {
  const row = (i: number) =>
    `<tr style="height:15.0pt"><td nowrap style="padding:0cm 5.4pt 0cm 5.4pt"><p class="MsoNormal">${880000 + i}` +
    `<o:p></o:p></p></td><td nowrap style="padding:0cm 5.4pt 0cm 5.4pt"><p class="MsoNormal">не зачислена` +
    `<o:p></o:p></p></td></tr>`;
  const pasted = (rows: number) =>
    `<html><body><p class="MsoNormal">Выгрузка из Excel:</p><table class="MsoNormalTable">` +
    Array.from({ length: rows }, (_, i) => row(i)).join('') +
    '</table><p class="MsoNormal">Верните, пожалуйста, операции 880007 и 880019 клиентам.</p></body></html>';

  it('a request under a table of 1 MB of markup is kept, the head too, with the gap marked', () => {
    const html = pasted(5000);
    expect(html.length).toBeGreaterThan(2 * MAX_HTML_INPUT_CHARS);
    const text = htmlToText(html);
    expect(text).toContain('Выгрузка из Excel:');
    expect(text).toContain('880000');
    expect(text).toContain('[…]');
    expect(text.trimEnd().endsWith('Верните, пожалуйста, операции 880007 и 880019 клиентам.')).toBe(true);
  });

  it('a quoted history cut in two stays quoted in the tail: a colleague’s words are never the author’s', () => {
    const html =
      '<html><body><div>Да, всё верно, можно отправлять.</div><br><blockquote type="cite"><div>Коллеги, реестр:</div>' +
      `<table>${Array.from({ length: 5000 }, (_, i) => row(i)).join('')}</table>` +
      '<div>Павел, переведи, пожалуйста, 50 000 рублей сегодня же.</div></blockquote></body></html>';
    expect(html.length).toBeGreaterThan(2 * MAX_HTML_INPUT_CHARS);
    const text = htmlToText(html);
    expect(text.startsWith('Да, всё верно, можно отправлять.')).toBe(true);
    // Every line of the history, in the head and in the tail, is a '> ' line the reply steps remove.
    const lines = text.split('\n').filter((l) => l.trim() && l !== '[…]');
    expect(lines.slice(1).every((l) => l.startsWith('>'))).toBe(true);
    expect(lines.some((l) => l.includes('Павел, переведи'))).toBe(true);
  });

  it('a body within the bound is read whole, with no gap', () => {
    const text = htmlToText(pasted(100));
    expect(text).not.toContain('[…]');
    expect(text).toContain('880099 не зачислена');
    expect(text).toContain('Верните, пожалуйста');
  });
});

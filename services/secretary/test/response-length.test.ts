// MAX_RESPONSE_LENGTH: the answer a user receives is cut at a sentence boundary and marked (the service kit's
// cutText, the one cut function of Workemon), on every channel, GET and POST, replays and dry runs alike.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { TEXT_CUT_MARKER, cutText } from '@workemon/service-kit';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { loadConfig } from '../src/config.js';
import { DEFAULT_MAX_RESPONSE_LENGTH } from '../src/response-length.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

describe('cutText', () => {
  const text = 'Первое предложение. Второе, чуть длиннее! Третье ли? Четвёртое т. е. последнее.';

  it('leaves a text that fits alone', () => {
    expect(cutText(text, text.length)).toBe(text);
  });

  it('keeps whole sentences and appends the marker, within the limit', () => {
    for (let max = TEXT_CUT_MARKER.length + 20; max < text.length; max += 1) {
      const cut = cutText(text, max);
      expect(cut.length, `max ${max}`).toBeLessThanOrEqual(max);
      expect(cut.endsWith(TEXT_CUT_MARKER)).toBe(true);
      const kept = cut.slice(0, -TEXT_CUT_MARKER.length);
      expect(text.startsWith(kept)).toBe(true);
      expect([
        'Первое предложение.',
        'Первое предложение. Второе, чуть длиннее!',
        'Первое предложение. Второе, чуть длиннее! Третье ли?',
      ]).toContain(kept);
    }
    expect(cutText(text, 60)).toBe(`Первое предложение. Второе, чуть длиннее!${TEXT_CUT_MARKER}`);
  });

  it('falls back to whole words when not even the first sentence fits, then to characters', () => {
    const long = 'Одно очень длинное предложение без единой точки до самого конца текста';
    const cut = cutText(long, 40);
    expect(cut.length).toBeLessThanOrEqual(40);
    expect(cut).toBe(`Одно очень длинное${TEXT_CUT_MARKER}`);
    const word = 'а'.repeat(100);
    expect(cutText(word, 30)).toBe(`${'а'.repeat(30 - TEXT_CUT_MARKER.length)}${TEXT_CUT_MARKER}`);
  });

  it('never splits a surrogate pair, and `character` mode cuts where the limit falls', () => {
    const emoji = '😀'.repeat(50);
    const cut = cutText(emoji, 41, { at: 'character' });
    expect(cut.length).toBeLessThanOrEqual(41);
    expect(cut.slice(0, -TEXT_CUT_MARKER.length)).toMatch(/^(😀)+$/u);
    expect(cutText('abc def. ghij', 11, { marker: '…', at: 'character' })).toBe('abc def. g…');
  });
});

describe('MAX_RESPONSE_LENGTH', () => {
  const SENTENCES = [
    'Отчёт по продажам лежит в аналитическом кубе «Продажи».',
    'Откройте его в разделе отчётов и выберите прошлый месяц.',
    'Если доступа нет, запросите его у владельца куба.',
    'Данные обновляются каждую ночь, поэтому вчерашние продажи уже там.',
  ];
  const ANSWER = SENTENCES.join(' ');
  let database: { url: string; drop: () => Promise<void> };
  let llm: LlmServices;
  let secretary: Secretary;
  const MAX = 130;

  beforeAll(async () => {
    database = await createTestDatabase(inject('postgresUrl'), 'secretary_response_length');
    llm = await startLlmServices({ analyst: () => ({ is_enough: true, response: ANSWER }) });
    secretary = await startSecretary({
      databaseUrl: database.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: { maxResponseChars: MAX },
    });
  });
  afterAll(async () => {
    await secretary?.close();
    await llm?.close();
    await database?.drop();
  });

  it('has a documented default and bounds', () => {
    expect(loadConfig({}).maxResponseLength).toBe(DEFAULT_MAX_RESPONSE_LENGTH);
    expect(loadConfig({ MAX_RESPONSE_LENGTH: '500' }).maxResponseLength).toBe(500);
    expect(() => loadConfig({ MAX_RESPONSE_LENGTH: '10' })).toThrow(/MAX_RESPONSE_LENGTH/);
  });

  it('cuts the answer at a sentence boundary and marks it, on every channel, replays and dry runs included', async () => {
    const expected = `${SENTENCES[0]} ${SENTENCES[1]}${TEXT_CUT_MARKER}`;
    expect(expected.length).toBeLessThanOrEqual(MAX);
    const request = 'Где мне найти отчёт по продажам за прошлый месяц?';
    for (const [channel, username] of [
      ['direct', 'anna'],
      ['email', 'anna@corp.test'],
      ['tg', 'anna_tg'],
    ] as const) {
      const res = await keyed(secretary.url, 'service')
        .post('/analyze-request')
        .send({ channel, username, request, message_id: `<cut-${channel}@corp.test>` });
      expect(res.status, channel).toBe(200);
      expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
      expect(res.body.response, channel).toBe(expected);
      expect(res.body['context-response']).toBe(expected);
      // A replay of the message_id is cut the same way.
      const replay = await keyed(secretary.url, 'service')
        .post('/analyze-request')
        .send({ channel, username, request, message_id: `<cut-${channel}@corp.test>` });
      expect(replay.body.response).toBe(expected);
    }
    const viaGet = await keyed(secretary.url, 'client')
      .get('/analyze-request')
      .query({ channel: 'direct', username: 'boris', request });
    expect(viaGet.body.response).toBe(expected);
    const dry = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'boris', request, dry_run: true });
    expect(dry.body.response).toBe(expected);
    expect(dry.body.would_execute.at(-1).text).toBe(expected);
    // The stored analysis keeps the analyst's whole answer.
    const stored = await secretary.db.knex('analyses').where('outcome', 'succeeded').pluck('response');
    expect(stored).toContain(ANSWER);
  });
});

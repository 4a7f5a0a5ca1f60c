// Issue 17: department personas (directory API → both LLM services' prompts, only for that department) and
// provenance (one analysis_llm_calls row per LLM call, shown in GET /conversations/{id}; GET /prompts).
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { userDataOf, type FakeLlmRequest } from '@workemon/testkit/fake-llm';
import { defaultAnalystReply, defaultGuesserReply, type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { GUESSER_PROMPT } from '@workemon/guesser';
import { ANALYST_PROMPT } from '@workemon/system-analyst';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

const PERSONA =
  'Департамент платежей: отвечай на «вы», коротко. Системы: платёжный шлюз PGW, СБП. Владелец шлюза — дежурный PGW.';

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'secretary_provenance');
  llm = await startLlmServices();
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
  for (const [username, department] of [
    ['ivanovpay', 'Платежи'],
    ['petrovaan', 'Аналитика'],
  ]) {
    const res = await keyed(secretary.url).put(`/employees/${username}`).send({ department, position: 'аналитик' });
    expect(res.status).toBe(201);
  }
});

afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await db?.drop();
});

beforeEach(() => {
  llm.guesserLlm.reply(defaultGuesserReply);
  llm.analystLlm.reply(defaultAnalystReply);
});

async function putDepartment(name: string, body: Record<string, unknown>) {
  const res = await keyed(secretary.url)
    .put(`/departments/${encodeURIComponent(name)}`)
    .send(body);
  expect(openapi.responseProblems('putDepartment', res.status, res.body)).toEqual([]);
  return res;
}

async function analyze(username: string, text: string) {
  const res = await keyed(secretary.url).post('/analyze-request').send({ channel: 'direct', username, request: text });
  expect(res.status).toBe(200);
  return res.body as { action: string; is_enough: boolean };
}

/** The requests a fake provider received for one request text (the LLM client wraps the data as JSON). */
const sentFor = (requests: FakeLlmRequest[], text: string) =>
  requests.filter((r) => (userDataOf(r.user) as { request?: string } | undefined)?.request === text);

describe('department personas', () => {
  it('are set, versioned and cleared through the directory API; an update without the key keeps the persona', async () => {
    const created = await putDepartment('Платежи', { mailing_list: 'pay@example.test', persona: `  ${PERSONA}\n` });
    expect([200, 201]).toContain(created.status);
    expect(created.body).toMatchObject({ persona: PERSONA, persona_sha256: sha256(PERSONA) });

    const kept = await putDepartment('Платежи', { mailing_list: 'payments@example.test' });
    expect(kept.status).toBe(200);
    expect(kept.body).toMatchObject({ mailing_list: 'payments@example.test', persona: PERSONA });

    const tooLong = await putDepartment('Платежи', { persona: 'я'.repeat(4001) });
    expect(tooLong.status).toBe(400);
    expect(tooLong.body.message).toMatch(/persona/);
    expect((await keyed(secretary.url).get('/departments/Платежи')).body.persona).toBe(PERSONA);

    await putDepartment('Временный', { persona: 'Временные инструкции' });
    const cleared = await putDepartment('Временный', { persona: null });
    expect(cleared.body).toMatchObject({ persona: null, persona_sha256: null });
    // Every version ever set stays readable by its hash (provenance names hashes).
    const versions = await secretary.db.knex('persona_versions').pluck('sha256');
    expect(versions).toEqual(expect.arrayContaining([sha256(PERSONA), sha256('Временные инструкции')]));
  });

  it('reach both LLM providers only for requests of that department, as a delimited operator section', async () => {
    await putDepartment('Платежи', { persona: PERSONA });
    const paymentsText = 'Перевод по СБП висит в статусе в обработке двое суток, что проверить?';
    const analyticsText = 'Подскажите в каком кубе лежат обороты по эквайрингу за прошлый год';
    await analyze('ivanovpay', paymentsText);
    await analyze('petrovaan', analyticsText);

    for (const fake of [llm.guesserLlm, llm.analystLlm]) {
      const payments = sentFor(fake.requests, paymentsText);
      const analytics = sentFor(fake.requests, analyticsText);
      expect(payments).toHaveLength(1);
      expect(analytics).toHaveLength(1);
      expect(payments[0]!.system).toContain(`<department_instructions>\n${PERSONA}\n</department_instructions>`);
      // Operator text belongs to the system message, never to the user's (untrusted) data.
      expect(payments[0]!.user).not.toContain(PERSONA);
      expect(analytics[0]!.system).not.toContain('department_instructions');
      expect(analytics[0]!.system).not.toContain(PERSONA);
    }
  });
});

describe('provenance', () => {
  it('stores one row per LLM call of every analysis and shows them in the conversation', async () => {
    await putDepartment('Платежи', { persona: PERSONA });
    const clear = 'Нужно поднять лимит на исходящие переводы для юрлиц, заведите задачу в jira';
    const vague = 'Платёж не прошёл';
    expect((await analyze('ivanovpay', clear)).action).toBe('создать jira-task');
    expect((await analyze('petrovaan', vague)).action).toBe('уточнить');

    const analyses = await secretary.db
      .knex('analyses')
      .whereIn('request', [clear, vague])
      .select<{ id: number; request: string; conversation_id: number }[]>('id', 'request', 'conversation_id');
    expect(analyses).toHaveLength(2);
    const rows = await secretary.db
      .knex('analysis_llm_calls')
      .whereIn(
        'analysis_id',
        analyses.map((a) => a.id),
      )
      .orderBy('id');
    const clearId = analyses.find((a) => a.request === clear)!.id;
    const vagueId = analyses.find((a) => a.request === vague)!.id;
    const guesserSent = sentFor(llm.guesserLlm.requests, clear)[0]!;
    const analystSent = sentFor(llm.analystLlm.requests, clear)[0]!;
    const settings = { temperature: 0.2, max_output_tokens: 2000, json_mode: 'auto' };
    expect(rows.filter((r) => r.analysis_id === clearId)).toEqual([
      expect.objectContaining({
        service: 'guesser',
        provider: 'openai',
        model: llm.guesserLlm.model,
        prompt_name: 'guesser/v2',
        prompt_sha256: sha256(GUESSER_PROMPT),
        persona_sha256: sha256(PERSONA),
        settings,
        input_tokens: guesserSent.usage!.inputTokens,
        output_tokens: guesserSent.usage!.outputTokens,
        latency_ms: expect.any(Number),
        duration_ms: expect.any(Number),
      }),
      expect.objectContaining({
        service: 'system-analyst',
        prompt_name: 'system-analyst/v1',
        prompt_sha256: sha256(ANALYST_PROMPT),
        persona_sha256: sha256(PERSONA),
        input_tokens: analystSent.usage!.inputTokens,
        output_tokens: analystSent.usage!.outputTokens,
      }),
    ]);
    // The guesser asked a question: one call, and no persona for a department without one.
    expect(rows.filter((r) => r.analysis_id === vagueId)).toEqual([
      expect.objectContaining({ service: 'guesser', prompt_name: 'guesser/v2', persona_sha256: null }),
    ]);

    const conversationId = analyses.find((a) => a.id === clearId)!.conversation_id;
    const res = await keyed(secretary.url).get(`/conversations/${conversationId}`);
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('getConversation', 200, res.body)).toEqual([]);
    const shown = (res.body.analyses as { id: number; llm_calls: { service: string; prompt_name: string }[] }[]).find(
      (a) => a.id === clearId,
    )!;
    expect(shown.llm_calls.map((c) => [c.service, c.prompt_name])).toEqual([
      ['guesser', 'guesser/v2'],
      ['system-analyst', 'system-analyst/v1'],
    ]);

    // Every succeeded analysis in this database has its provenance.
    const withoutRows = await secretary.db
      .knex('analyses as a')
      .where('a.outcome', 'succeeded')
      .whereNotExists(secretary.db.knex('analysis_llm_calls as p').whereRaw('p.analysis_id = a.id'))
      .pluck('a.id');
    expect(withoutRows).toEqual([]);
  });

  it("keeps the guesser's provenance when the analyst then fails", async () => {
    llm.analystLlm.failNext(1, { status: 400 });
    const text = 'Подготовьте, пожалуйста, сверку оборотов кошельков за ноябрь по всем партнёрам';
    const res = await keyed(secretary.url)
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'ivanovpay', request: text });
    expect(res.status).toBeGreaterThanOrEqual(400);
    const failed = await secretary.db
      .knex('analyses')
      .whereLike('request', `%${text}`)
      .first<{ id: number; outcome: string }>('id', 'outcome');
    expect(failed!.outcome).toBe('failed');
    const rows = await secretary.db.knex('analysis_llm_calls').where({ analysis_id: failed!.id });
    expect(rows.map((r: { service: string }) => r.service)).toEqual(['guesser']);
  });
});

describe('GET /prompts', () => {
  it("shows each LLM service's prompt version, models and settings, and the departments' persona versions", async () => {
    await putDepartment('Платежи', { persona: PERSONA });
    const res = await keyed(secretary.url).get('/prompts');
    expect(res.status).toBe(200);
    expect(openapi.responseProblems('getPrompts', 200, res.body)).toEqual([]);
    expect(res.body.guesser).toEqual({
      service: 'guesser',
      prompt: { name: 'guesser/v2', sha256: sha256(GUESSER_PROMPT), source: 'built-in' },
      models: [{ provider: 'openai', model: llm.guesserLlm.model }],
      settings: { temperature: 0.2, max_output_tokens: 2000, json_mode: 'auto' },
    });
    expect(res.body['system-analyst'].prompt).toEqual({
      name: 'system-analyst/v1',
      sha256: sha256(ANALYST_PROMPT),
      source: 'built-in',
    });
    expect(res.body.personas).toContainEqual({
      department: 'Платежи',
      sha256: sha256(PERSONA),
      updated_at: expect.any(String),
    });
  });

  it('names a service that does not answer instead of failing', async () => {
    const lonely = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: 'http://127.0.0.1:9',
      analystUrl: llm.analystUrl,
      upstreamTimeoutMs: 1000,
    });
    try {
      const res = await keyed(lonely.url).get('/prompts');
      expect(res.status).toBe(200);
      expect(openapi.responseProblems('getPrompts', 200, res.body)).toEqual([]);
      expect(res.body.guesser).toEqual({ error: expect.any(String) });
      expect(res.body['system-analyst'].prompt.name).toBe('system-analyst/v1');
    } finally {
      await lonely.close();
    }
  });
});

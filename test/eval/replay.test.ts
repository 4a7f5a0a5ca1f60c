// `npm run eval --replay`: re-decides a history the real secretary stored, under another configuration, and
// reports exactly where it disagrees; `eval:export` turns the same history into a pseudonymised labelled set.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { startFakeLlm, userDataOf, type FakeLlm } from '@workemon/testkit/fake-llm';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from '../../services/secretary/test/llm-services.js';
import { keyed, startSecretary, type Secretary } from '../../services/secretary/test/secretary-harness.js';
import { runEval, parseEvalArgs } from '../../eval/src/eval-cli.js';
import { createPseudonymiser, exportCases, parseLabels } from '../../eval/src/export-history.js';
import { loadAnalyses, openHistory } from '../../eval/src/history.js';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

let db: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let secretary: Secretary;
let jiraOnly: FakeLlm;
const ids: Record<string, number> = {};

// The stack's default models decide these as: jira, telegram, a reply, and a question (under 5 words).
const HISTORY = {
  jira: 'Создайте задачу на выгрузку остатков кошельков за ноябрь',
  telegram: 'Передайте коллеге из платёжной команды вопрос про лимиты для юрлиц',
  reply: 'Как посмотреть обороты по эквайрингу за прошлый год в кубе?',
  clarify: 'Нужна выгрузка',
};

beforeAll(async () => {
  db = await createTestDatabase(inject('postgresUrl'), 'eval_replay');
  llm = await startLlmServices();
  secretary = await startSecretary({ databaseUrl: db.url, guesserUrl: llm.guesserUrl, analystUrl: llm.analystUrl });
  await keyed(secretary.url)
    .put('/employees/ivanov')
    .send({ department: 'Платежи', position: 'аналитик', email: 'ivan.ivanov@finbank.example' })
    .expect(201);
  for (const [key, text] of Object.entries(HISTORY)) {
    // Separate senders: each request opens its own conversation.
    const username = key === 'jira' ? 'ivanov' : `user-${key}`;
    await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username, request: text })
      .expect(200);
    const row = await secretary.db.knex('analyses').where({ request: text }).first<{ id: number }>('id');
    ids[key] = row!.id;
  }
  // The new configuration: finds everything clear and always proposes a Jira task.
  jiraOnly = await startFakeLlm({ wire: 'openai' });
  jiraOnly.reply(({ user }) => {
    const data = userDataOf(user) as Record<string, unknown>;
    return typeof data['context'] === 'string'
      ? { is_enough: true, response: 'Задача', action: 'создать jira-task' }
      : { is_enough: true, response: 'Контекст' };
  });
});

afterAll(async () => {
  await secretary?.close();
  await llm?.close();
  await jiraOnly?.close();
  await db?.drop();
});

describe('npm run eval --replay', () => {
  it('re-decides stored history and reports exactly the disagreements', async () => {
    const sentBefore = llm.guesserLlm.requests.length + llm.analystLlm.requests.length;
    const options = parseEvalArgs(
      [
        '--replay',
        '--database-url',
        db.url,
        '--json',
        '--config',
        `name=jira-only,provider=openai,base_url=${jiraOnly.url},model=${jiraOnly.model},api_key=${jiraOnly.apiKey}`,
      ],
      {},
    );
    let printed = '';
    const [report] = await runEval(options, (text) => (printed += text));
    const m = report!.metrics;
    expect(m.cases).toBe(4);
    expect(m.actionAccuracy).toEqual({ value: 1 / 4, numerator: 1, denominator: 4 });
    expect(m.isEnoughAccuracy).toEqual({ value: 3 / 4, numerator: 3, denominator: 4 });
    expect(report!.disagreements).toEqual([
      {
        id: `analysis-${ids['telegram']}`,
        stored: 'написать в telegram сотруднику',
        decided: 'создать jira-task',
        request: HISTORY.telegram,
      },
      {
        id: `analysis-${ids['reply']}`,
        stored: 'ответить сообщением',
        decided: 'создать jira-task',
        request: HISTORY.reply,
      },
      { id: `analysis-${ids['clarify']}`, stored: 'уточнить', decided: 'создать jira-task', request: HISTORY.clarify },
    ]);
    // Rows: stored action (the contract's, then `без ответа`); column 2 (jira): every one of them.
    expect(m.confusion.matrix.map((row) => row[2])).toEqual([1, 1, 1, 1, 0, 0, 0]);
    expect(JSON.parse(printed).replay).toBe(true);
    // The replay asked only the new configuration's model; the secretary's stack saw nothing, and no new
    // analysis (or message) was stored.
    expect(llm.guesserLlm.requests.length + llm.analystLlm.requests.length).toBe(sentBefore);
    expect(jiraOnly.requests).toHaveLength(8);
    expect(await secretary.db.knex('analyses').count<{ n: number }[]>('* as n')).toEqual([{ n: 4 }]);
  });
});

describe('npm run eval --db-personas', () => {
  it("adds the directory's personas to a configuration: the provider sees them only for that department", async () => {
    const persona = 'Платежи: отвечай на «вы»; зависшие переводы — дежурному PGW.';
    await keyed(secretary.url).put('/departments/Платежи').send({ persona }).expect(200);
    const dir = mkdtempSync(join(tmpdir(), 'eval-config-'));
    const file = join(dir, 'jira-only.json');
    // Upper-case keys of a configuration file are environment keys.
    writeFileSync(
      file,
      JSON.stringify({
        name: 'jira-only',
        LLM_PROVIDER: 'openai',
        LLM_BASE_URL: jiraOnly.url,
        LLM_MODEL: jiraOnly.model,
        LLM_API_KEY: jiraOnly.apiKey,
      }),
    );
    jiraOnly.requests.length = 0;
    try {
      const options = parseEvalArgs(['--replay', '--db-personas', '--database-url', db.url, '--config', file], {});
      const [report] = await runEval(options, () => {});
      expect(report!.config['personas']).toEqual({ Платежи: sha256(persona) });
      const withPersona = jiraOnly.requests.filter((r) => r.system.includes(persona));
      // The one stored request of the payments employee: guesser and analyst.
      expect(withPersona).toHaveLength(2);
      for (const r of withPersona) expect((userDataOf(r.user) as { request: string }).request).toBe(HISTORY.jira);
      expect(jiraOnly.requests.filter((r) => !r.system.includes(persona))).toHaveLength(6);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npm run eval:export', () => {
  it('exports stored decisions with corrected labels, usernames and addresses pseudonymised by a keyed hash', async () => {
    const history = openHistory({ databaseUrl: db.url });
    try {
      const analyses = await loadAnalyses(history, { since: new Date(Date.now() - 3600_000) });
      expect(analyses.map((a) => a.id)).toEqual(Object.values(ids));
      const labels = parseLabels(
        JSON.stringify({
          analysis_id: ids['reply'],
          is_enough: true,
          action: 'создать jira-task',
          category: 'analytics',
        }),
        'corrected.jsonl',
      );
      const withAddress = analyses.map((a) =>
        a.id === ids['telegram']
          ? { ...a, request: `${a.request}, копия ivan.ivanov@finbank.example и @pgw_oncall` }
          : a,
      );
      const key = 'a-test-key-of-sufficient-length';
      const cases = exportCases(withAddress, labels, createPseudonymiser(key), { onlyLabelled: false });
      const again = exportCases(withAddress, labels, createPseudonymiser(key), { onlyLabelled: false });
      const otherKey = exportCases(withAddress, labels, createPseudonymiser('another-key-of-enough-length'), {
        onlyLabelled: false,
      });
      expect(cases).toEqual(again);
      expect(cases[0]!.username).toMatch(/^u_[0-9a-f]{12}$/);
      expect(cases[0]!.username).not.toBe(otherKey[0]!.username);
      const text = JSON.stringify(cases);
      for (const secret of ['ivanov', 'user-telegram', 'ivan.ivanov@finbank.example', 'pgw_oncall'])
        expect(text).not.toContain(secret);
      expect(cases.find((c) => c.id === `analysis-${ids['telegram']}`)!.request).toMatch(
        /копия u_[0-9a-f]{12}@pseudonym\.invalid и @u_[0-9a-f]{12}$/,
      );
      expect(cases.find((c) => c.id === `analysis-${ids['reply']}`)).toMatchObject({
        expected: { is_enough: true, action: 'создать jira-task', category: 'analytics' },
        label_source: 'corrected',
      });
      expect(cases.find((c) => c.id === `analysis-${ids['clarify']}`)).toMatchObject({
        expected: { is_enough: false, action: 'уточнить' },
        label_source: 'decision',
      });
      expect(exportCases(analyses, labels, createPseudonymiser(key), { onlyLabelled: true })).toHaveLength(1);
      expect(() => parseLabels('{"analysis_id": 1, "is_enough": true, "action": "позвонить"}', 'bad.jsonl')).toThrow(
        /bad\.jsonl:1: action/,
      );
    } finally {
      await history.close();
    }
  });
});

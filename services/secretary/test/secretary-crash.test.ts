// The secretary as a real child process (src/main.ts under tsx, on a real Postgres), SIGKILLed while analyses
// (slow LLM) and a Jira action (a create Jira holds) are in flight, then started again. The real communicator
// (in this process, on the fake Bot API) keeps retrying within seconds; the restarted secretary takes over the
// dead attempts once their heartbeat lease lapses, and its worker takes over the action, whose label search
// finds the issue the dead worker had made. Every answer must arrive within a generous bound of the restart.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCommunicator, loadConfig as loadCommunicatorConfig, type Communicator } from '@workemon/communicator';
import { createLogger, createMetrics } from '@workemon/service-kit';
import { getFreePort, listen, waitFor, type Listening } from '@workemon/testkit';
import { TEST_KEY_ENV, bearer } from '@workemon/testkit/api-keys';
import { startFakeJira, type FakeJira } from '@workemon/testkit/fake-jira';
import { startFakeTelegram, type FakeTelegram } from '@workemon/testkit/fake-telegram';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';

const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const mainTs = fileURLToPath(new URL('../src/main.ts', import.meta.url));
/** Generous: the lease (ANALYSIS_LEASE / ACTION_LEASE_MS below) plus retries, on a busy 2-core machine. */
const BOUND_MS = 15_000;

let llm: LlmServices;
let jira: FakeJira;
let tg: FakeTelegram;
let database: { url: string; drop: () => Promise<void> };
let communicator: Communicator & { http: Listening };
let secretaryPort: number;
const children: ChildProcess[] = [];

function startSecretaryProcess() {
  const child = spawn(process.execPath, ['--import', 'tsx', '--conditions=@workemon/source', mainTs], {
    cwd: repoRoot,
    env: {
      PATH: process.env['PATH'],
      // The test world's keys: admins set up the directory, the communicator and the LLM services use the service key.
      ...TEST_KEY_ENV,
      PORT: String(secretaryPort),
      LOG_LEVEL: 'warn',
      DATABASE_URL: database.url,
      GUESSER_URL: llm.guesserUrl,
      SYSTEM_ANALYST_URL: llm.analystUrl,
      COMMUNICATOR_URL: communicator.http.url,
      GUESSER_TIMEOUT: '20s',
      SYSTEM_ANALYST_TIMEOUT: '20s',
      JIRA_BASE_URL: jira.url,
      JIRA_EMAIL: 'bot@example.test',
      JIRA_API_TOKEN: 'jira-token',
      JIRA_TIMEOUT_MS: '20000',
      ANALYSIS_LEASE: '4s',
      ACTION_LEASE_MS: '4000',
      ACTION_RETRY_BASE_MS: '200',
      ACTION_WORKER_INTERVAL_MS: '200',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  children.push(child);
  return { child, stderr: () => stderr };
}

async function waitHealthy(what: string) {
  await waitFor(
    async () => {
      const res = await request(`http://127.0.0.1:${secretaryPort}`)
        .get('/health')
        .timeout(1000)
        .catch(() => undefined);
      return res?.status === 200;
    },
    { timeoutMs: 60_000, intervalMs: 100, what },
  );
}

beforeAll(async () => {
  llm = await startLlmServices();
  jira = await startFakeJira({ flavor: 'cloud', email: 'bot@example.test', token: 'jira-token', projects: ['OPS'] });
  tg = await startFakeTelegram();
  database = await createTestDatabase(inject('postgresUrl'), 'secretary_crash');
  secretaryPort = await getFreePort();
  const comm = createCommunicator(
    loadCommunicatorConfig({
      ...TEST_KEY_ENV,
      SECRETARY_URL: `http://127.0.0.1:${secretaryPort}`,
      SECRETARY_TIMEOUT: '30s',
      RETRY_BASE_DELAY: '500ms',
      SHUTDOWN_TIMEOUT: '3s',
      TELEGRAM_BOT_TOKEN: tg.token,
      TELEGRAM_API_ROOT: tg.url,
      TELEGRAM_POLL_TIMEOUT_S: '1',
      TELEGRAM_HANDLER_TIMEOUT: '40s',
    }),
    {
      logger: createLogger({ service: 'communicator', level: process.env['TEST_LOG_LEVEL'] ?? 'error' }),
      metrics: createMetrics('communicator'),
      telegramErrorBaseDelayMs: 100,
    },
  );
  communicator = { ...comm, http: await listen(comm.app) };
}, 60_000);

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await communicator?.http.close();
  for (const closer of communicator?.closers ?? []) await closer.close();
  await tg?.close();
  await jira?.close();
  await llm?.close();
  await database?.drop();
});

describe('secretary SIGKILL with analyses and an action in flight', () => {
  it('answers everything within seconds of the restart, with one Jira issue', { timeout: 180_000 }, async () => {
    let secretary = startSecretaryProcess();
    await waitHealthy('the secretary to start').catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${secretary.stderr()}`);
    });
    const api = request.agent(`http://127.0.0.1:${secretaryPort}`).set(bearer('admin'));
    expect((await api.put('/departments/IT Ops').send({ jira_project_key: 'OPS' })).status).toBeLessThan(300);
    expect(
      (
        await api
          .put('/employees/ivanov')
          .send({ department: 'IT Ops', position: 'инженер', telegram_username: 'ivanov_tg', telegram_id: '4100' })
      ).status,
    ).toBeLessThan(300);
    communicator.start();

    // An action in flight: Jira creates the issue but holds its answer past the kill.
    jira.holdNext(60_000);
    const jiraUser = { id: 4100, username: 'ivanov_tg' };
    tg.pushMessage({ from: jiraUser, text: 'Создайте задачу: не работает VPN в офисе на Лесной с утра' });
    await waitFor(() => jira.issues.length >= 1, { timeoutMs: 60_000, what: 'the Jira create to be in flight' }).catch(
      (err: Error) => {
        throw new Error(`${err.message}; sent: ${JSON.stringify(tg.sent.map((m) => m.text))}; ${secretary.stderr()}`);
      },
    );

    // Analyses in flight: the LLM is slow.
    llm.guesserLlm.delayMs = 3000;
    const before = llm.guesserLlm.requests.length;
    const users = [4101, 4102, 4103].map((id) => ({ id, username: `user${id}` }));
    const texts = users.map((u) => `Нужна выгрузка операций авторизации по кошелькам за май, ${u.username}`);
    users.forEach((u, i) => tg.pushMessage({ from: u, text: texts[i] }));
    await waitFor(() => llm.guesserLlm.requests.length >= before + users.length, {
      timeoutMs: 30_000,
      what: 'three analyses in flight',
    });

    const exited = new Promise((resolve) => secretary.child.once('exit', resolve));
    secretary.child.kill('SIGKILL');
    await exited;
    llm.guesserLlm.delayMs = 0;
    secretary = startSecretaryProcess();
    await waitHealthy('the secretary to restart').catch((err: Error) => {
      throw new Error(`${err.message}; stderr: ${secretary.stderr()}`);
    });
    const restartedAt = Date.now();

    const sentTo = (id: number) => tg.sent.filter((m) => Number(m.chat_id) === id);
    await waitFor(
      () =>
        users.every((u, i) => sentTo(u.id).some((m) => m.text.includes(texts[i]!))) &&
        sentTo(jiraUser.id).some((m) => /OPS-\d+/.test(m.text)),
      { timeoutMs: 60_000, intervalMs: 50, what: 'every answer and the Jira outcome' },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; sent: ${JSON.stringify(tg.sent.map((m) => [m.chat_id, m.text.slice(0, 80)]))}`);
    });
    const elapsedMs = Date.now() - restartedAt;
    console.info(`secretary crash test: everything answered ${elapsedMs} ms after the restart`);
    expect(elapsedMs).toBeLessThan(BOUND_MS);
    // One answer each; one Jira issue (the label search found the one the dead worker made).
    for (const [i, u] of users.entries())
      expect(sentTo(u.id).filter((m) => m.text.includes(texts[i]!))).toHaveLength(1);
    expect(jira.issues).toHaveLength(1);
    expect(jira.searches.length).toBeGreaterThanOrEqual(1);
    secretary.child.kill('SIGKILL');
  });
});

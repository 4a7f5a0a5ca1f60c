// LLM_CONCURRENCY and LLM_QUEUE_LIMIT over real HTTP: a slow model holds every slot, calls up to the queue's
// bound wait and are answered, the next one is refused at once with 503 + Retry-After in the contract's shape.
import { afterEach, describe, expect, it } from 'vitest';
import { createOpenApi } from '@workemon/service-kit';
import { loadOpenApiDocument } from '@workemon/contracts';
import { DEFAULT_LLM_CONCURRENCY } from '@workemon/llm';
import { listen, waitFor, type Listening } from '@workemon/testkit';
import { bearer } from '@workemon/testkit/api-keys';
import { startFakeLlm, type FakeLlm } from '@workemon/testkit/fake-llm';
import { envForFake, startGuesser, validQuery } from './start-guesser.js';

const openapi = createOpenApi(loadOpenApiDocument('guesser'));
const opened: { close: () => Promise<void> }[] = [];
afterEach(async () => {
  while (opened.length) await opened.pop()!.close();
});

const ENOUGH = { is_enough: true, response: 'Младший аналитик ДКС: авторизационные операции кошельков, домен b2c' };

/** A model that holds every call until `release()`, counting the calls it is working on. */
function gatedModel(llm: FakeLlm) {
  const state = { running: 0, mostRunning: 0, started: 0 };
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  llm.reply(async () => {
    state.running += 1;
    state.started += 1;
    state.mostRunning = Math.max(state.mostRunning, state.running);
    await gate;
    state.running -= 1;
    return ENOUGH;
  });
  return { state, release: () => open() };
}

/** A sample's value from /metrics (`name{…provider="openai"…} value`), whatever other labels it carries. */
async function sample(server: Listening, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const m = new RegExp(`^${name}\\{[^}]*provider="openai"[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

async function call(server: Listening, n: number): Promise<{ status: number; headers: Headers; body: unknown }> {
  const params = new URLSearchParams(validQuery({ request: `${validQuery().request} (${n})` }));
  const res = await fetch(`${server.url}/get-context?${params}`, { headers: bearer('service') });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

describe('LLM_CONCURRENCY and LLM_QUEUE_LIMIT', () => {
  it('N calls run, Q wait and are answered, the next is refused at once with 503 + Retry-After', async () => {
    const N = 3;
    const Q = 2;
    const llm = await startFakeLlm({ wire: 'openai' });
    opened.push(llm);
    const model = gatedModel(llm);
    const { app, logs } = startGuesser({
      ...envForFake('openai', llm),
      LLM_CONCURRENCY: String(N),
      LLM_QUEUE_LIMIT: String(Q),
    });
    const server = await listen(app);
    opened.push(server);

    const admitted = Array.from({ length: N + Q }, (_, i) => call(server, i));
    await waitFor(() => model.state.running === N, { what: `${N} calls at the model` });
    // N + Q are in the service now (N at the model, Q in line); give the queued ones time to show they wait.
    await waitFor(async () => (await sample(server, 'workemon_llm_calls_waiting')) === Q, { what: `${Q} waiting` });

    const refused = await call(server, 99);
    expect(refused.status).toBe(503);
    expect(openapi.responseProblems('getContext', 503, refused.body)).toEqual([]);
    expect(refused.body).toMatchObject({ error: 'Service Unavailable', statusCode: 503 });
    expect((refused.body as { message: string }).message).toMatch(/at capacity.*LLM_CONCURRENCY, LLM_QUEUE_LIMIT/);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Refused without reaching the model.
    expect(model.state.started).toBe(N);

    model.release();
    const answers = await Promise.all(admitted);
    expect(answers.map((a) => a.status)).toEqual(Array(N + Q).fill(200));
    for (const a of answers) expect(a.body).toMatchObject(ENOUGH);
    // Never more than N at the model; every admitted call reached it once.
    expect(model.state.mostRunning).toBe(N);
    expect(model.state.started).toBe(N + Q);

    expect(await sample(server, 'workemon_llm_calls_rejected_total')).toBe(1);
    expect(await sample(server, 'workemon_llm_calls_waiting')).toBe(0);
    // Backpressure is not the provider failing: its breaker stays closed.
    expect(await sample(server, 'workemon_llm_breaker_open')).toBe(0);
    expect(logs.join('\n')).not.toMatch(/circuit breaker opened/);
    // Once the line is short again, calls are admitted.
    expect((await call(server, 100)).status).toBe(200);
  });

  it(`by default ${DEFAULT_LLM_CONCURRENCY} calls run at once per provider; the next ones wait their turn`, async () => {
    const llm = await startFakeLlm({ wire: 'openai' });
    opened.push(llm);
    const model = gatedModel(llm);
    const { app } = startGuesser(envForFake('openai', llm));
    const server = await listen(app);
    opened.push(server);
    // The default is sized for a real model's latency (docs/operations.md): 128 in flight, not a handful.
    expect(DEFAULT_LLM_CONCURRENCY).toBe(128);
    const admitted = Array.from({ length: DEFAULT_LLM_CONCURRENCY + 6 }, (_, i) => call(server, i));
    await waitFor(() => model.state.running === DEFAULT_LLM_CONCURRENCY, { what: 'every slot at the model' });
    await waitFor(async () => (await sample(server, 'workemon_llm_calls_waiting')) === 6, { what: '6 waiting' });
    expect(model.state.running).toBe(DEFAULT_LLM_CONCURRENCY);
    model.release();
    const answers = await Promise.all(admitted);
    expect(answers.every((a) => a.status === 200)).toBe(true);
  });
});

// A client key bound by CLIENT_KEY_USERNAMES (`test-client` to `boris` alone) dry-running in a name it may not vouch
// for: the plan says the action is withheld, with or without `dry_run_view: "client"`, as the real request is. The
// client's view used to drop the key's name, so the binding did not apply and the plan showed the action pending
// (s34 attack round). The real secretary with its actions wired as main.ts wires them, the guesser and the analyst
// over a fake LLM.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, createMetrics } from '@workemon/service-kit';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { createActions, type Actions } from '../src/actions/actions-wiring.js';
import { loadConfig } from '../src/config.js';
import { createDirectoryRepository } from '../src/directory-repository.js';
import { startFakeCommunicator, type FakeCommunicator } from './actions/actions-harness.js';
import { startLlmServices } from './llm-services.js';
import { keyed, startSecretary, type Secretary } from './secretary-harness.js';

let database: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let communicator: FakeCommunicator;
let actions: Actions;
let secretary: Secretary;

// Directory data only an admin (or the communicator's service key, for itself) may see.
const TELEGRAM_CONTACT = '515151';
const RULE_NAME = 'Questions → colleague';
const TO_COLLEAGUE = 'Передайте коллеге вопрос про сверку платежей';

beforeAll(async () => {
  database = await createTestDatabase(inject('postgresUrl'), 'secretary_dry_run_bound_key');
  llm = await startLlmServices();
  communicator = await startFakeCommunicator();
  const config = loadConfig({ DATABASE_URL: database.url, COMMUNICATOR_URL: communicator.url });
  const logger = createLogger({ service: 'secretary', level: 'error' });
  logger.silent = true;
  secretary = await startSecretary({
    databaseUrl: database.url,
    guesserUrl: llm.guesserUrl,
    analystUrl: llm.analystUrl,
    overrides: {
      decide: (proposal, context) => actions.hooks.decide(proposal, context),
      onDecisionRecorded: (trx, recorded) => actions.hooks.onDecisionRecorded(trx, recorded),
      previewActions: (context) => actions.hooks.preview(context),
      // The test client key is bound to `boris` alone.
      clientKeyUsernames: new Map([['test-client', new Set(['boris'])]]),
    },
  });
  const directory = createDirectoryRepository(secretary.db.knex);
  actions = createActions({
    db: secretary.db.knex,
    settings: config.actions,
    communicator: { baseUrl: communicator.url },
    resolveDepartment: (name) => directory.getDepartment(name),
    logger,
    metrics: createMetrics('secretary'),
  });
  const admin = keyed(secretary.url, 'admin');
  expect((await admin.put('/departments/Finance').send({ telegram_contact: TELEGRAM_CONTACT })).status).toBeLessThan(
    300,
  );
  expect(
    (await admin.put('/employees/anna').send({ department: 'Finance', position: 'аналитик', email: 'anna@corp.test' }))
      .status,
  ).toBeLessThan(300);
  const rule = await admin.post('/rules').send({
    name: RULE_NAME,
    priority: 10,
    conditions: { request_pattern: 'коллеге' },
    effects: { action: 'написать в telegram сотруднику' },
  });
  expect(rule.status).toBe(201);
});

afterAll(async () => {
  await actions?.worker.stop();
  await secretary?.close();
  await communicator?.close();
  await llm?.close();
  await database?.drop();
});

describe('CLIENT_KEY_USERNAMES and the dry runs of a bound key', () => {
  const directDry = (extra: Record<string, unknown>) =>
    keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'anna', request: TO_COLLEAGUE, dry_run: true, ...extra });

  it('a bound key dry-running in a name it may not vouch for: same verdict with or without dry_run_view', async () => {
    const plain = await directDry({});
    const view = await directDry({ dry_run_view: 'client' });
    expect(plain.status).toBe(200);
    expect(plain.body.would_execute[0].status).not.toBe('pending');
    expect(view.body.would_execute[0].status).toBe(plain.body.would_execute[0].status);
  });

  it('the real request in that name is withheld (control)', async () => {
    const res = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'ANNA ', request: TO_COLLEAGUE });
    expect(res.body.response).toContain('не удалось подтвердить');
  });
});

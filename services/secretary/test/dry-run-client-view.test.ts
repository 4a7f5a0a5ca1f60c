// Security review s31, finding 2, the secretary's half: the communicator's POST /test asks with its service key on
// behalf of its own caller. `dry_run_view: "client"` makes that dry run the one a client key gets: the sender claims
// a service key relays (sender_authentication) count for nothing, and would_execute is redacted (dry-run.ts). The
// real secretary with its actions wired as main.ts wires them, the real guesser and analyst over a fake LLM.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createLogger, createMetrics } from '@workemon/service-kit';
import type { LlmServices } from '@workemon/testkit/llm-stack';
import { createTestDatabase } from '@workemon/testkit/postgres';
import type {} from '@workemon/testkit/global-setup';
import { createActions, type Actions } from '../src/actions/actions-wiring.js';
import { loadConfig } from '../src/config.js';
import { createDirectoryRepository } from '../src/directory-repository.js';
import { CLIENT_SKIP_REASON } from '../src/dry-run.js';
import { startFakeCommunicator, type FakeCommunicator } from './actions/actions-harness.js';
import { startLlmServices } from './llm-services.js';
import { keyed, openapi, startSecretary, type Secretary } from './secretary-harness.js';

let database: { url: string; drop: () => Promise<void> };
let llm: LlmServices;
let communicator: FakeCommunicator;
let actions: Actions;
let secretary: Secretary;

// Directory data only an admin (or the communicator's service key, for itself) may see.
const TELEGRAM_CONTACT = '515151';
const RULE_NAME = 'Questions → colleague';
const TO_COLLEAGUE = 'Передайте коллеге вопрос про сверку платежей';
/** What the communicator relays for a mail whose DMARC passed at the trusted receiving server. */
const VERIFIED = { verified: true, method: 'dmarc', reason: 'dmarc=pass header.from=corp.test' };

beforeAll(async () => {
  database = await createTestDatabase(inject('postgresUrl'), 'secretary_dry_run_view');
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

/** A dry run of a mail from anna@corp.test as the communicator asks it, with its service key. */
const asCommunicator = (extra: Record<string, unknown>) =>
  keyed(secretary.url, 'service')
    .post('/analyze-request')
    .send({
      channel: 'email',
      username: 'anna@corp.test',
      request: TO_COLLEAGUE,
      sender_authentication: VERIFIED,
      dry_run: true,
      ...extra,
    });

describe('dry_run_view: "client"', () => {
  it('a service key sees the whole plan; asking for the client view shows what a client key sees', async () => {
    const full = await asCommunicator({});
    expect(full.status).toBe(200);
    expect(full.body.would_execute[0]).toMatchObject({
      action: 'написать в telegram сотруднику',
      status: 'pending',
      target: TELEGRAM_CONTACT,
      rules: [{ name: RULE_NAME }],
    });

    const client = await asCommunicator({ dry_run_view: 'client' });
    expect(client.status).toBe(200);
    expect(openapi.responseProblems('analyzeRequestPost', client.status, client.body)).toEqual([]);
    // The relayed DMARC pass counts for nothing (as from a client key): the action would be skipped, and why is the
    // operator's to read.
    expect(client.body.would_execute[0]).toEqual({
      action: 'написать в telegram сотруднику',
      status: 'skipped',
      rules: [],
      target: null,
      reason: CLIENT_SKIP_REASON,
      text: null,
    });
    const shown = JSON.stringify(client.body);
    for (const secret of [TELEGRAM_CONTACT, RULE_NAME, 'sender_unauthenticated']) expect(shown).not.toContain(secret);

    // Exactly a client key's own dry run of the same mail.
    const own = await keyed(secretary.url, 'client')
      .post('/analyze-request')
      .send({ channel: 'email', username: 'anna@corp.test', request: TO_COLLEAGUE, dry_run: true });
    expect(own.body.would_execute).toEqual(client.body.would_execute);
  });

  it('is refused without dry_run: true (400 naming it), and stores nothing', async () => {
    const before = await secretary.db.knex('analyses').count({ n: '*' });
    const res = await keyed(secretary.url, 'service').post('/analyze-request').send({
      channel: 'email',
      username: 'anna@corp.test',
      request: TO_COLLEAGUE,
      dry_run_view: 'client',
    });
    expect(res.status).toBe(400);
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.body.message).toMatch(/^Parameter 'dry_run_view' is only for dry runs/);
    expect(await secretary.db.knex('analyses').count({ n: '*' })).toEqual(before);
  });
});

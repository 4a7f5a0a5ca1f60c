// The stack of the dry-run view suites: the real secretary with its actions wired as main.ts wires them (a fake
// communicator), the real guesser and analyst over a fake LLM, a department with a Telegram contact, the employee
// anna in it, and a rule sending "коллеге" requests to that contact. Used by dry-run-client-view.test.ts and
// dry-run-bound-key.test.ts.
import { afterAll, beforeAll, expect, inject } from 'vitest';
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

/** Directory data only an admin (or the communicator's service key, for itself) may see. */
export const TELEGRAM_CONTACT = '515151';
export const RULE_NAME = 'Questions → colleague';
/** A request the rule sends to the department's Telegram contact. */
export const TO_COLLEAGUE = 'Передайте коллеге вопрос про сверку платежей';

/**
 * Registers the stack's beforeAll/afterAll in the calling file (database `database`; `overrides` go to the
 * secretary's app, e.g. `clientKeyUsernames`) and returns a getter of the started secretary.
 */
export function dryRunStack(
  database: string,
  overrides: Parameters<typeof startSecretary>[0]['overrides'] = {},
): () => Secretary {
  let db: { url: string; drop: () => Promise<void> };
  let llm: LlmServices;
  let communicator: FakeCommunicator;
  let actions: Actions;
  let secretary: Secretary;
  beforeAll(async () => {
    db = await createTestDatabase(inject('postgresUrl'), database);
    llm = await startLlmServices();
    communicator = await startFakeCommunicator();
    const config = loadConfig({ DATABASE_URL: db.url, COMMUNICATOR_URL: communicator.url });
    const logger = createLogger({ service: 'secretary', level: 'error' });
    logger.silent = true;
    secretary = await startSecretary({
      databaseUrl: db.url,
      guesserUrl: llm.guesserUrl,
      analystUrl: llm.analystUrl,
      overrides: {
        decide: (proposal, context) => actions.hooks.decide(proposal, context),
        onDecisionRecorded: (trx, recorded) => actions.hooks.onDecisionRecorded(trx, recorded),
        previewActions: (context) => actions.hooks.preview(context),
        ...overrides,
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
    const department = await admin.put('/departments/Finance').send({ telegram_contact: TELEGRAM_CONTACT });
    expect(department.status).toBeLessThan(300);
    const anna = await admin
      .put('/employees/anna')
      .send({ department: 'Finance', position: 'аналитик', email: 'anna@corp.test' });
    expect(anna.status).toBeLessThan(300);
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
    await db?.drop();
  });
  return () => secretary;
}

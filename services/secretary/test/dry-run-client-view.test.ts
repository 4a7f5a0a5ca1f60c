// Security review s31, finding 2, the secretary's half: the communicator's POST /test asks with its service key on
// behalf of its own caller. `dry_run_view: "client"` makes that dry run the one a client key gets: the sender claims
// a service key relays (sender_authentication) count for nothing, and would_execute is redacted (dry-run.ts). The
// real secretary with its actions wired as main.ts wires them, the real guesser and analyst over a fake LLM.
import { describe, expect, it } from 'vitest';
import { CLIENT_SKIP_REASON } from '../src/dry-run.js';
import { RULE_NAME, TELEGRAM_CONTACT, TO_COLLEAGUE, dryRunStack } from './dry-run-stack.js';
import { keyed, openapi } from './secretary-harness.js';

/** What the communicator relays for a mail whose DMARC passed at the trusted receiving server. */
const VERIFIED = { verified: true, method: 'dmarc', reason: 'dmarc=pass header.from=corp.test' };

const stack = dryRunStack('secretary_dry_run_view');

/** A dry run of a mail from anna@corp.test as the communicator asks it, with its service key. */
const asCommunicator = (extra: Record<string, unknown>) =>
  keyed(stack().url, 'service')
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
    const own = await keyed(stack().url, 'client')
      .post('/analyze-request')
      .send({ channel: 'email', username: 'anna@corp.test', request: TO_COLLEAGUE, dry_run: true });
    expect(own.body.would_execute).toEqual(client.body.would_execute);
  });

  it('is refused without dry_run: true (400 naming it), and stores nothing', async () => {
    const before = await stack().db.knex('analyses').count({ n: '*' });
    const res = await keyed(stack().url, 'service').post('/analyze-request').send({
      channel: 'email',
      username: 'anna@corp.test',
      request: TO_COLLEAGUE,
      dry_run_view: 'client',
    });
    expect(res.status).toBe(400);
    expect(openapi.responseProblems('analyzeRequestPost', res.status, res.body)).toEqual([]);
    expect(res.body.message).toMatch(/^Parameter 'dry_run_view' is only for dry runs/);
    expect(await stack().db.knex('analyses').count({ n: '*' })).toEqual(before);
  });
});

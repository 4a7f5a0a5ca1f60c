// A client key bound by CLIENT_KEY_USERNAMES (`test-client` to `boris` alone) dry-running in a name it may not vouch
// for: the plan says the action is withheld, with or without `dry_run_view: "client"`, as the real request is. The
// client's view used to drop the key's name, so the binding did not apply and the plan showed the action pending
// (s34 attack round). The real secretary with its actions wired as main.ts wires them, the guesser and the analyst
// over a fake LLM.
import { describe, expect, it } from 'vitest';
import { TO_COLLEAGUE, dryRunStack } from './dry-run-stack.js';
import { keyed } from './secretary-harness.js';

const stack = dryRunStack('secretary_dry_run_bound_key', {
  // The test client key is bound to `boris` alone.
  clientKeyUsernames: new Map([['test-client', new Set(['boris'])]]),
});

describe('CLIENT_KEY_USERNAMES and the dry runs of a bound key', () => {
  const directDry = (extra: Record<string, unknown>) =>
    keyed(stack().url, 'client')
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
    const res = await keyed(stack().url, 'client')
      .post('/analyze-request')
      .send({ channel: 'direct', username: 'ANNA ', request: TO_COLLEAGUE });
    expect(res.body.response).toContain('не удалось подтвердить');
  });
});

import { expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, parseEnv } from '@workemon/service-kit';
import { actionsEnvSchema, toActionSettings, ACTION_JIRA } from '../../src/actions/action-policy.js';

const load = (env: Record<string, string>) => toActionSettings(parseEnv(z.object(actionsEnvSchema), env));

it('reads the Jira, policy and worker keys, and names every bad key', () => {
  const s = load({
    JIRA_BASE_URL: 'https://x.atlassian.net',
    JIRA_EMAIL: 'a@x',
    JIRA_API_TOKEN: 't',
    ACTION_POLICY: 'jira=approve',
  });
  expect(s.jira).toMatchObject({ baseUrl: 'https://x.atlassian.net', email: 'a@x', issueType: 'Task' });
  expect(s.policy[ACTION_JIRA]).toBe('approve');
  expect(load({}).jira).toBeUndefined();
  expect(() => load({ JIRA_BASE_URL: 'https://x' })).toThrow(/JIRA_API_TOKEN: required/);
  try {
    load({ ACTION_POLICY: 'jira=sometimes', ACTION_MAX_ATTEMPTS: 'many' });
    expect.unreachable();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(
      /ACTION_POLICY[\s\S]*ACTION_MAX_ATTEMPTS|ACTION_MAX_ATTEMPTS[\s\S]*ACTION_POLICY/,
    );
  }
});

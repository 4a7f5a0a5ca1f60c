import { z } from 'zod';
import { ACTION_JIRA, ACTION_MAILING_LIST, ACTION_TELEGRAM_EMPLOYEE } from '@workemon/contracts';
import { ConfigError, env } from '@workemon/service-kit';
import type { JiraSettings } from './jira-client.js';

/** The actions with a side effect beyond the answer; reply and clarify are delivered by the communicator. */
export { ACTION_JIRA, ACTION_MAILING_LIST, ACTION_TELEGRAM_EMPLOYEE };
export const EXECUTABLE_ACTIONS = [ACTION_JIRA, ACTION_TELEGRAM_EMPLOYEE, ACTION_MAILING_LIST] as const;
export type ExecutableAction = (typeof EXECUTABLE_ACTIONS)[number];

export function isExecutableAction(action: string): action is ExecutableAction {
  return (EXECUTABLE_ACTIONS as readonly string[]).includes(action);
}

export const POLICY_MODES = ['auto', 'approve', 'off'] as const;
export type PolicyMode = (typeof POLICY_MODES)[number];
export type ActionPolicy = Record<ExecutableAction, PolicyMode>;

/** The short names `ACTION_POLICY` uses for the contract's Russian action names. */
export const POLICY_KEYS: Record<string, ExecutableAction> = {
  jira: ACTION_JIRA,
  telegram: ACTION_TELEGRAM_EMPLOYEE,
  mailing_list: ACTION_MAILING_LIST,
};

export const DEFAULT_POLICY: ActionPolicy = {
  [ACTION_JIRA]: 'auto',
  [ACTION_TELEGRAM_EMPLOYEE]: 'auto',
  [ACTION_MAILING_LIST]: 'auto',
};

/** `jira=approve,telegram=auto,mailing_list=off` → a mode per action (unnamed actions stay `auto`). */
export function parseActionPolicy(text: string | undefined): ActionPolicy {
  const policy = { ...DEFAULT_POLICY };
  for (const entry of (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [key, mode, extra] = entry.split('=').map((s) => s.trim());
    const action = key ? POLICY_KEYS[key.toLowerCase()] : undefined;
    if (!action) throw new Error(`unknown action '${key ?? ''}' (use ${Object.keys(POLICY_KEYS).join(', ')})`);
    if (extra !== undefined || !mode || !(POLICY_MODES as readonly string[]).includes(mode.toLowerCase())) {
      throw new Error(`'${entry}' must be <action>=${POLICY_MODES.join('|')}`);
    }
    policy[action] = mode.toLowerCase() as PolicyMode;
  }
  return policy;
}

/**
 * Configuration keys of the actions feature, for the secretary's `loadConfig` to spread into its schema
 * (`COMMUNICATOR_URL`/`COMMUNICATOR_API_KEY` are the secretary's own keys). Then `toActionSettings(parsed)`.
 */
export const actionsEnvSchema = {
  JIRA_BASE_URL: env.url(
    undefined,
    'Jira site (https://example.atlassian.net or the Server/DC base URL); unset: no Jira',
  ),
  JIRA_EMAIL: env.optionalString('Jira Cloud account email; set → Cloud (Basic, API v3); unset → Server/DC PAT'),
  JIRA_API_TOKEN: env.optionalString('Jira Cloud API token, or the Server/Data Center personal access token'),
  JIRA_PROJECT_KEY: env.optionalString('Project for tasks whose department names no Jira project'),
  JIRA_ISSUE_TYPE: env.withDefault('Task', 'Issue type name of created tasks'),
  JIRA_TIMEOUT_MS: env.int(15_000, 'Deadline of one Jira call', { min: 100 }),
  ACTION_POLICY: z
    .string()
    .optional()
    .transform((value, ctx) => {
      try {
        return parseActionPolicy(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    })
    .describe('auto|approve|off per action: jira=approve,telegram=auto,mailing_list=off (default all auto)'),
  ACTION_MIN_CONFIDENCE: env.fraction(
    0.7,
    'Least classification confidence at which an action the analyst proposed (no routing rule chose it) runs ' +
      'without a person; below it the action waits for approval. 0: never held for this',
  ),
  APPROVER_TELEGRAM_CHAT_ID: env.optionalString('Telegram chat that gets Approve/Reject buttons for held actions'),
  ACTION_MAX_ATTEMPTS: env.int(6, 'Attempts of an action (and of each notification) before it fails', { min: 1 }),
  ACTION_RETRY_BASE_MS: env.int(2_000, 'First retry delay; doubles per attempt (with jitter)', { min: 1 }),
  ACTION_RETRY_MAX_MS: env.int(600_000, 'Longest retry delay', { min: 1 }),
  ACTION_WORKER_INTERVAL_MS: env.int(1_000, 'How often the action worker looks for due work', { min: 10 }),
  ACTION_LEASE_MS: env.int(
    15_000,
    'Lease of a claimed action, renewed every third of it while the worker runs it: a dead worker is replaced ' +
      'within this time',
    { min: 1_000 },
  ),
};

type ActionsEnv = z.output<z.ZodObject<typeof actionsEnvSchema>>;

export type WorkerSettings = {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  pollIntervalMs: number;
  leaseMs: number;
  batchSize?: number;
};

export type ActionSettings = {
  jira?: JiraSettings;
  policy: ActionPolicy;
  /**
   * ACTION_MIN_CONFIDENCE (0–1): an executable action the analyst proposed for a request classified with less
   * confidence than this waits for approval (`awaiting_approval`), as the workflow engine's
   * `EMAIL_AI_CONFIDENCE_THRESHOLD` kept low-confidence mail from automatic processing. Actions a routing rule chose
   * keep the rule's own `min_confidence`; a request with no confidence (no categories) is not held for it.
   */
  minConfidence: number;
  approverChatId?: string;
  worker: WorkerSettings;
};

export function toActionSettings(parsed: ActionsEnv): ActionSettings {
  const problems: string[] = [];
  if (parsed.JIRA_BASE_URL && !parsed.JIRA_API_TOKEN)
    problems.push('JIRA_API_TOKEN: required when JIRA_BASE_URL is set');
  if (!parsed.JIRA_BASE_URL && (parsed.JIRA_API_TOKEN || parsed.JIRA_EMAIL))
    problems.push('JIRA_BASE_URL: required when JIRA_API_TOKEN or JIRA_EMAIL is set');
  if (problems.length) throw new ConfigError(problems);
  return {
    jira:
      parsed.JIRA_BASE_URL && parsed.JIRA_API_TOKEN
        ? {
            baseUrl: parsed.JIRA_BASE_URL,
            email: parsed.JIRA_EMAIL,
            apiToken: parsed.JIRA_API_TOKEN,
            projectKey: parsed.JIRA_PROJECT_KEY,
            issueType: parsed.JIRA_ISSUE_TYPE,
            timeoutMs: parsed.JIRA_TIMEOUT_MS,
          }
        : undefined,
    policy: parsed.ACTION_POLICY,
    minConfidence: parsed.ACTION_MIN_CONFIDENCE,
    approverChatId: parsed.APPROVER_TELEGRAM_CHAT_ID,
    worker: {
      maxAttempts: parsed.ACTION_MAX_ATTEMPTS,
      retryBaseMs: parsed.ACTION_RETRY_BASE_MS,
      retryMaxMs: parsed.ACTION_RETRY_MAX_MS,
      pollIntervalMs: parsed.ACTION_WORKER_INTERVAL_MS,
      leaseMs: parsed.ACTION_LEASE_MS,
    },
  };
}

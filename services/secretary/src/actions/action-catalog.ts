import {
  ACTIONS,
  ACTION_CLARIFY,
  ACTION_REPLY_EMAIL,
  ACTION_REPLY_MESSAGE,
  type Action,
  type SecretaryApi,
} from '@workemon/contracts';
import {
  ACTION_JIRA,
  ACTION_MAILING_LIST,
  ACTION_TELEGRAM_EMPLOYEE,
  DEFAULT_POLICY,
  isExecutableAction,
  POLICY_KEYS,
  type ActionPolicy,
  type ActionSettings,
} from './action-policy.js';
import {
  createCommunicatorHttp,
  type CommunicatorObservers,
  type CommunicatorSettings,
} from './communicator-client.js';
import { describeAction } from './executors.js';

export type ActionCatalogEntry = SecretaryApi.components['schemas']['ActionCatalogEntry'];

/** A channel as the communicator's /health reports it: `disabled` when its keys are not set. */
export type ChannelState = { status: string; detail?: string };
export type ChannelStates = { telegram?: ChannelState; email?: ChannelState; problem?: string };

/** What GET /actions reads: the policy, Jira's settings (no secrets) and how to learn which channels are on. */
export type ActionCatalogSource = {
  policy: ActionPolicy;
  jira?: { flavor: 'cloud' | 'server'; defaultProjectKey?: string; issueType?: string };
  /** The communicator's channels; absent: reported as unknown (not configured). */
  probeChannels?: () => Promise<ChannelStates>;
};

type Parameter = ActionCatalogEntry['parameters'][number];

const KEY_OF = new Map<Action, string>([
  [ACTION_CLARIFY, 'clarify'],
  [ACTION_REPLY_MESSAGE, 'reply'],
  [ACTION_REPLY_EMAIL, 'reply_email'],
  ...Object.entries(POLICY_KEYS).map(([key, action]) => [action, key] as [Action, string]),
]);

const DESCRIPTION: Record<string, string> = {
  [ACTION_CLARIFY]:
    'Asks the sender one clarifying question on the channel the request came from; the answer continues the same conversation.',
  [ACTION_REPLY_MESSAGE]: 'Answers with the prepared response on the channel the request came from (Telegram, REST).',
  [ACTION_REPLY_EMAIL]: 'Answers the mail in its thread (In-Reply-To, References) with the prepared response.',
  [ACTION_JIRA]: `Creates a Jira issue (${describeAction(ACTION_JIRA)}) and tells the requester its key and link.`,
  [ACTION_TELEGRAM_EMPLOYEE]: `Sends the request to the department's contact on Telegram (${describeAction(ACTION_TELEGRAM_EMPLOYEE)}) and tells the requester.`,
  [ACTION_MAILING_LIST]: `Writes the request to the department's mailing list (${describeAction(ACTION_MAILING_LIST)}) and tells the requester.`,
};

const REQUEST_PARAMETERS: Parameter[] = [
  {
    name: 'request',
    description: 'the full request text (a follow-up includes the question and the answer)',
    source: 'the analysis',
  },
  { name: 'context', description: "the guesser's description of the context", source: 'the guesser' },
  { name: 'analysis', description: "the system analyst's answer", source: 'the system analyst' },
];

const PARAMETERS: Record<string, Parameter[]> = {
  [ACTION_CLARIFY]: [
    { name: 'question', description: 'the clarifying question', source: 'the guesser or the system analyst' },
  ],
  [ACTION_REPLY_MESSAGE]: [{ name: 'response', description: 'the prepared answer', source: 'the system analyst' }],
  [ACTION_REPLY_EMAIL]: [{ name: 'response', description: 'the prepared answer', source: 'the system analyst' }],
  [ACTION_JIRA]: [
    {
      name: 'project',
      description: 'Jira project key of the issue',
      source: "a rule's effects.jira_project, else the department's jira_project_key, else JIRA_PROJECT_KEY",
    },
    { name: 'issue_type', description: 'issue type name', source: 'JIRA_ISSUE_TYPE' },
    ...REQUEST_PARAMETERS,
    {
      name: 'labels',
      description: 'workemon and workemon-action-<execution id> (finds the issue on a retry)',
      source: 'fixed',
    },
  ],
  [ACTION_TELEGRAM_EMPLOYEE]: [
    {
      name: 'to',
      description: "the department's Telegram contact",
      source: "the department's telegram_contact (a rule's effects.department picks the department)",
    },
    ...REQUEST_PARAMETERS,
  ],
  [ACTION_MAILING_LIST]: [
    {
      name: 'to',
      description: "the department's mailing list address",
      source: "the department's mailing_list (a rule's effects.department picks the department)",
    },
    ...REQUEST_PARAMETERS,
  ],
};

function channelConfigured(states: ChannelStates, channel: 'telegram' | 'email', key: string) {
  if (states.problem) return { configured: false, detail: `communicator not reachable: ${states.problem}` };
  const state = states[channel];
  if (!state) return { configured: false, detail: 'the communicator does not report this channel' };
  if (state.status === 'disabled') return { configured: false, detail: `off in the communicator (${key} not set)` };
  return {
    configured: true,
    detail: `communicator ${channel}: ${state.status}${state.detail ? ` (${state.detail})` : ''}`,
  };
}

/**
 * The action catalog (GET /actions): every action of the contract, in the contract's order, with its short
 * name, what it does, its parameters and where they come from, whether this secretary can carry it out now
 * (Jira configured; the communicator's Telegram / email channel on) and its ACTION_POLICY mode. Replies and
 * questions need nothing configured here and are always `auto`.
 */
export async function buildActionCatalog(source: ActionCatalogSource | undefined): Promise<ActionCatalogEntry[]> {
  const policy = source?.policy ?? DEFAULT_POLICY;
  const states: ChannelStates = source?.probeChannels
    ? await source.probeChannels().catch((err: unknown) => ({ problem: (err as Error).message }))
    : { problem: 'no communicator configured for actions' };
  return ACTIONS.map((action): ActionCatalogEntry => {
    const base = {
      action,
      key: KEY_OF.get(action) ?? action,
      description: DESCRIPTION[action]!,
      parameters: PARAMETERS[action]!,
    };
    if (!isExecutableAction(action)) {
      return {
        ...base,
        side_effect: false,
        configured: true,
        detail: 'delivered by the communicator on the channel the request came from',
        policy: 'auto',
      };
    }
    const readiness =
      action === ACTION_JIRA
        ? source?.jira
          ? {
              configured: true,
              detail: `Jira ${source.jira.flavor === 'cloud' ? 'Cloud' : 'Server/Data Center'}${
                source.jira.defaultProjectKey ? `, default project ${source.jira.defaultProjectKey}` : ''
              }`,
            }
          : { configured: false, detail: 'JIRA_BASE_URL and JIRA_API_TOKEN are not set' }
        : action === ACTION_TELEGRAM_EMPLOYEE
          ? channelConfigured(states, 'telegram', 'TELEGRAM_BOT_TOKEN')
          : channelConfigured(states, 'email', 'SMTP_USER');
    return { ...base, side_effect: true, ...readiness, policy: policy[action] };
  });
}

/**
 * Asks the communicator's GET /health which channels are on (`telegram`, and `smtp` for email). A 503 still
 * carries the checks; anything else unreadable rejects (the catalog reports the communicator unreachable).
 */
export function createChannelProbe(
  settings: CommunicatorSettings,
  deps: CommunicatorObservers = {},
): () => Promise<ChannelStates> {
  const http = createCommunicatorHttp(settings, deps, 6000);
  return async () => {
    const res = await http.probe('/health', { timeoutMs: settings.timeoutMs ?? 6000 });
    const checks = (res.data as { checks?: Record<string, ChannelState> } | undefined)?.checks;
    if ((res.status !== 200 && res.status !== 503) || !checks || typeof checks !== 'object')
      throw new Error(`GET /health answered ${res.status}`);
    return { telegram: checks['telegram'], email: checks['smtp'] };
  };
}

/** The catalog's source from the secretary's action settings (main.ts). */
export function catalogSourceFor(
  settings: ActionSettings,
  communicator: CommunicatorSettings,
  deps: CommunicatorObservers = {},
): ActionCatalogSource {
  return {
    policy: settings.policy,
    jira: settings.jira
      ? {
          flavor: settings.jira.email ? 'cloud' : 'server',
          defaultProjectKey: settings.jira.projectKey,
          issueType: settings.jira.issueType,
        }
      : undefined,
    probeChannels: createChannelProbe(communicator, deps),
  };
}

import type { Channel, Department } from '@workemon/contracts';
import { isAppError, retryAfterMsOf } from '@workemon/service-kit';
import type { WithheldReason } from '../sender-trust.js';
import { ACTION_JIRA, ACTION_MAILING_LIST, ACTION_TELEGRAM_EMPLOYEE, type ExecutableAction } from './action-policy.js';
import type { CommunicatorClient, OutboundMessage } from './communicator-client.js';
import { executionLabel, summarize, type CreatedJiraIssue, type JiraClient } from './jira-client.js';

/** A snapshot of the department taken at decision time (the directory may change before the action runs). */
export type DepartmentTarget = Pick<Department, 'name'> &
  Partial<Pick<Department, 'jira_project_key' | 'telegram_contact' | 'mailing_list'>>;

/** Where the requester is answered about the outcome (defaults to the username on their channel). */
export type ReplyTarget = { to: string; subject?: string; in_reply_to?: string };

export type ExecutionPayload = {
  request: string;
  context: string;
  analysis: string;
  department: DepartmentTarget | null;
  /** A routing rule's Jira project; wins over the department's. */
  jira_project: string | null;
  reply: ReplyTarget;
  /**
   * direct: the name of the API key that vouched for the requester (`portal`; never the key). A request
   * made in someone's name reaches colleagues and lists with it, so it can be traced to the key.
   */
  vouched_by?: string;
};

export type ExecutionTarget =
  | { system: 'jira'; project: string }
  | { system: 'telegram'; to: string; department: string }
  | { system: 'mailing_list'; to: string; department: string };

export type ExecutionInput = {
  id: number;
  action: ExecutableAction;
  channel: Channel;
  requester: string;
  payload: ExecutionPayload;
  /** 1 for the first try; a later one may follow a create whose answer was lost. */
  attempt?: number;
};

export type ExecutorDeps = {
  /** Absent when Jira is not configured. */
  jira?: JiraClient;
  communicator: CommunicatorClient;
};

export type Readiness =
  { ready: true; target: ExecutionTarget } | { ready: false; reason: string; userMessage: string };

export type ExecutionOutcome =
  | { status: 'succeeded'; target: ExecutionTarget; result: Record<string, unknown>; userMessage: string }
  | { status: 'skipped'; reason: string; userMessage: string };

const ACTION_PHRASE: Record<ExecutableAction, string> = {
  [ACTION_JIRA]: 'создать задачу в Jira',
  [ACTION_TELEGRAM_EMPLOYEE]: 'передать запрос сотруднику в Telegram',
  [ACTION_MAILING_LIST]: 'отправить запрос в рассылку департамента',
};

export function describeAction(action: ExecutableAction): string {
  return ACTION_PHRASE[action];
}

type JiraSettings = { configured: boolean; defaultProjectKey?: string };
type ReadinessPayload = Pick<ExecutionPayload, 'department' | 'jira_project'>;

/** Jira: configured, and a project from the rule, the department or JIRA_PROJECT_KEY (in that order). */
function jiraReadiness(jira: JiraSettings, payload: ReadinessPayload): Readiness {
  if (!jira.configured)
    return {
      ready: false,
      reason: 'Jira is not configured (JIRA_BASE_URL, JIRA_API_TOKEN)',
      userMessage:
        'Задачу в Jira создать не получилось: Jira не подключена к Workemon. Запрос сохранён, при необходимости обратитесь в ответственный департамент напрямую.',
    };
  const dep = payload.department;
  const project = payload.jira_project || dep?.jira_project_key || jira.defaultProjectKey;
  if (!project)
    return {
      ready: false,
      reason: `no Jira project: department '${dep?.name ?? 'не указан'}' has none and JIRA_PROJECT_KEY is not set`,
      userMessage: `Задачу в Jira создать не получилось: для департамента «${dep?.name ?? 'не указан'}» не указан проект Jira. Запрос сохранён, при необходимости обратитесь в департамент напрямую.`,
    };
  return { ready: true, target: { system: 'jira', project } };
}

/** Where a message action finds its address in the department, and what is said when it has none. */
const DEPARTMENT_ADDRESSES = {
  telegram: {
    field: 'telegram_contact',
    missing: 'Telegram contact',
    userMessage: (department: string) =>
      `Переслать запрос сотруднику в Telegram не получилось: для департамента «${department}» не указан контакт. Запрос сохранён.`,
  },
  mailing_list: {
    field: 'mailing_list',
    missing: 'mailing list',
    userMessage: (department: string) =>
      `Отправить запрос в рассылку не получилось: для департамента «${department}» не указан адрес рассылки. Запрос сохранён.`,
  },
} as const;

/** A message to the department: its `telegram_contact` (a colleague in Telegram) or its `mailing_list`. */
function departmentReadiness(system: keyof typeof DEPARTMENT_ADDRESSES, payload: ReadinessPayload): Readiness {
  const address = DEPARTMENT_ADDRESSES[system];
  const dep = payload.department;
  const to = dep?.[address.field];
  if (!dep || !to)
    return {
      ready: false,
      reason: dep ? `department '${dep.name}' has no ${address.missing}` : 'the requester has no department',
      userMessage: address.userMessage(dep?.name ?? 'не указан'),
    };
  return { ready: true, target: { system, to, department: dep.name } };
}

const READINESS: Record<ExecutableAction, (jira: JiraSettings, payload: ReadinessPayload) => Readiness> = {
  [ACTION_JIRA]: jiraReadiness,
  [ACTION_TELEGRAM_EMPLOYEE]: (_jira, payload) => departmentReadiness('telegram', payload),
  [ACTION_MAILING_LIST]: (_jira, payload) => departmentReadiness('mailing_list', payload),
};

/** Whether the action can run with what is configured; if not, why (for the log) and what to tell the user. */
export function checkReadiness(jira: JiraSettings, action: ExecutableAction, payload: ReadinessPayload): Readiness {
  return READINESS[action](jira, payload);
}

const clip = (text: string, maxChars: number) =>
  text.length <= maxChars ? text : `${text.slice(0, maxChars - 1).trimEnd()}…`;

/** `канал direct, ключ API «portal»`: the channel, and on `direct` the key that vouched for the requester. */
function channelOf(input: ExecutionInput, word = ''): string {
  const key = input.payload.vouched_by;
  return `${word}${input.channel}${key ? `, ключ API «${key}»` : ''}`;
}

function origin(input: ExecutionInput): string {
  return [
    `Канал: ${channelOf(input)}`,
    `Автор: ${input.requester}`,
    `Департамент: ${input.payload.department?.name ?? 'не указан'}`,
    `Workemon: действие №${input.id}`,
  ].join('\n');
}

// Telegram messages are capped at 4096 characters; leave room for the header and the analysis.
function colleagueText(input: ExecutionInput): string {
  const { payload } = input;
  return [
    `Запрос от ${input.requester} (${channelOf(input)}) через Workemon:`,
    clip(payload.request, 1800),
    ...(payload.analysis ? ['', 'Анализ:', clip(payload.analysis, 1500)] : []),
    '',
    `Ответьте автору напрямую. Workemon, действие №${input.id}.`,
  ].join('\n');
}

function mailingListText(input: ExecutionInput): string {
  const { payload } = input;
  return [
    `Запрос от ${input.requester} (${channelOf(input, 'канал ')}) передан Workemon в рассылку департамента.`,
    '',
    'Запрос:',
    payload.request,
    ...(payload.context ? ['', 'Контекст:', payload.context] : []),
    ...(payload.analysis ? ['', 'Анализ:', payload.analysis] : []),
    '',
    origin(input),
  ].join('\n');
}

type Succeeded<S extends ExecutionTarget['system']> = Extract<ExecutionTarget, { system: S }>;

/**
 * Creates the Jira issue, or adopts the one an earlier try made: a create whose answer was lost (timeout,
 * connection reset, a 5xx after the commit) may have made it, so every retry first looks for this execution's
 * label.
 */
async function createJiraIssue(
  jira: JiraClient,
  input: ExecutionInput,
  target: Succeeded<'jira'>,
): Promise<ExecutionOutcome> {
  const { payload } = input;
  const label = executionLabel(input.id);
  const check = (input.attempt ?? 1) > 1 ? await findCreatedIssue(jira, label) : undefined;
  const adopted = check?.issue;
  const issue =
    adopted ??
    (await jira.createIssue({
      projectKey: target.project,
      summary: payload.request,
      sections: [
        { title: 'Запрос', text: payload.request },
        { title: 'Контекст', text: payload.context },
        { title: 'Анализ', text: payload.analysis },
        { title: 'Источник', text: origin(input) },
      ],
      labels: ['workemon', label],
    }));
  return {
    status: 'succeeded',
    target,
    result: {
      issue_key: issue.key,
      issue_id: issue.id,
      url: issue.url,
      ...(adopted ? { adopted: true } : {}),
      ...(check?.problem ? { duplicate_check_failed: check.problem } : {}),
    },
    userMessage: `По вашему запросу создана задача ${issue.key}: ${issue.url}`,
  };
}

/**
 * Sends one message to a person through the communicator (a colleague in Telegram, a mailing list) and
 * describes the delivery; a channel without credentials makes the action `skipped` (skipWhenNotConfigured).
 */
async function deliverMessage(
  communicator: CommunicatorClient,
  message: OutboundMessage,
  target: Succeeded<'telegram' | 'mailing_list'>,
  userMessage: string,
): Promise<ExecutionOutcome> {
  const sent = await communicator.send(message).catch(skipWhenNotConfigured);
  if ('status' in sent) return sent;
  return {
    status: 'succeeded',
    target,
    result: { delivered: sent.delivered, message_id: sent.message_id ?? null, duplicate: sent.duplicate ?? false },
    userMessage,
  };
}

/** The request passed to the department's colleague in Telegram. */
function sendToColleague(communicator: CommunicatorClient, input: ExecutionInput, target: Succeeded<'telegram'>) {
  const message = {
    channel: 'tg' as const,
    to: target.to,
    text: colleagueText(input),
    idempotency_key: `action-${input.id}-telegram`,
  };
  // A public @username helps the requester reach the colleague; a numeric chat id is directory data (s35).
  const contact = target.to.startsWith('@') ? ` (${target.to})` : '';
  const userMessage = `Ваш запрос передан сотруднику департамента «${target.department}» в Telegram${contact}; он свяжется с вами.`;
  return deliverMessage(communicator, message, target, userMessage);
}

/** The request mailed to the department's list. */
function sendToMailingList(communicator: CommunicatorClient, input: ExecutionInput, target: Succeeded<'mailing_list'>) {
  const message = {
    channel: 'email' as const,
    to: target.to,
    subject: `[Workemon] ${summarize(input.payload.request)}`,
    text: mailingListText(input),
    idempotency_key: `action-${input.id}-mailing-list`,
  };
  const userMessage = `Ваш запрос отправлен в рассылку департамента «${target.department}» (${target.to}).`;
  return deliverMessage(communicator, message, target, userMessage);
}

/**
 * Carries out one action. Resolves with `succeeded` or `skipped`; throws the upstream's error otherwise (the
 * worker classifies it with `classifyFailure`). Every message to a person carries an idempotency key derived
 * from the execution id, so a repeat after a crash is not delivered twice.
 */
export async function executeAction(deps: ExecutorDeps, input: ExecutionInput): Promise<ExecutionOutcome> {
  const readiness = checkReadiness(
    { configured: !!deps.jira, defaultProjectKey: deps.jira?.defaultProjectKey },
    input.action,
    input.payload,
  );
  if (!readiness.ready) return { status: 'skipped', reason: readiness.reason, userMessage: readiness.userMessage };
  const { target } = readiness;
  switch (target.system) {
    case 'jira':
      return createJiraIssue(deps.jira!, input, target);
    case 'telegram':
      return sendToColleague(deps.communicator, input, target);
    case 'mailing_list':
      return sendToMailingList(deps.communicator, input, target);
  }
}

/**
 * The communicator answers 501 (`upstream_not_configured`, not retryable) when the channel has no credentials:
 * the action ends at once as skipped with the communicator's reason (which names the keys to set), as a
 * missing Jira does. Anything else is the worker's to classify.
 */
function skipWhenNotConfigured(err: unknown): Extract<ExecutionOutcome, { status: 'skipped' }> {
  if (!isAppError(err) || err.code !== 'upstream_not_configured') throw err;
  const channel = /'email'/.test(err.message) ? 'почта' : 'Telegram';
  return {
    status: 'skipped',
    reason: `communicator: ${err.message}`,
    userMessage: `Выполнить действие не получилось: канал «${channel}» не подключён к Workemon. Запрос сохранён, при необходимости обратитесь в департамент напрямую.`,
  };
}

/**
 * Searches for the issue an earlier try may have created. A transient search failure throws (the retry comes
 * later, still without a second issue); a permanent one (JQL search not allowed, say) is reported and the
 * create goes ahead, which is what happened before this check existed.
 */
async function findCreatedIssue(
  jira: JiraClient,
  label: string,
): Promise<{ issue?: CreatedJiraIssue; problem?: string }> {
  try {
    return { issue: await jira.findIssueByLabel(label) };
  } catch (err) {
    const failure = classifyFailure(err);
    if (failure.transient) throw err;
    return { problem: failure.reason };
  }
}

export type FailureClass = { transient: boolean; reason: string; retryAfterMs?: number };

/**
 * The error's own verdict decides (`AppError.retryable`, set where the error is made: the HTTP client from the
 * status or the network error, a client from what it knows). Transient: 408/429, 5xx, timeouts, unreachable
 * (retry with backoff). Permanent: any other 4xx (bad request, credentials, permissions, unknown project), a
 * function the upstream does not offer (501), our own bugs: retrying cannot help, so the action fails with the
 * upstream's reason. Errors that are not AppErrors (a dropped connection inside a library) count as transient.
 */
export function classifyFailure(err: unknown): FailureClass {
  if (isAppError(err)) {
    const status = Number(err.details?.['status'] ?? err.status);
    const target = typeof err.details?.['target'] === 'string' ? String(err.details['target']) : undefined;
    const prefix = target && err.code === 'upstream_rejected' ? `${target} answered ${status}: ` : '';
    if (!err.retryable) return { transient: false, reason: `${prefix}${err.message}` };
    return {
      transient: true,
      reason: err.code === 'upstream_rejected' ? `${prefix}${err.message}` : err.message,
      retryAfterMs: retryAfterMsOf(err),
    };
  }
  return { transient: true, reason: err instanceof Error ? err.message : String(err) };
}

/**
 * Where the requester learns the outcome. Mail and Telegram get a later message; a direct (REST) caller does not, so
 * its person is given the request's number, by which an operator finds the row in the action log (`GET
 * /action-executions?analysis_id=…`, an admin route). The text is for a person: no API path, and no number for a dry
 * run, which stores no analysis (`analysisId` 0 or absent).
 */
function whereToLook(channel: Channel, analysisId: number | null | undefined, what: string): string {
  if (channel !== 'direct') return `о ${what} сообщу отдельным сообщением`;
  const subject = what === 'результате' ? 'результат' : 'решение';
  return `${subject} можно узнать у администратора Workemon${analysisId ? ` по номеру запроса №${analysisId}` : ''}`;
}

export function pendingNotice(action: ExecutableAction, channel: Channel, analysisId?: number | null): string {
  return `Выполняю: ${describeAction(action)}; ${whereToLook(channel, analysisId, 'результате')}.`;
}

export function awaitingApprovalNotice(action: ExecutableAction, channel: Channel, analysisId?: number | null): string {
  return `Действие «${describeAction(action)}» ожидает согласования; ${whereToLook(channel, analysisId, 'решении')}.`;
}

const WITHHELD_WHY: Record<WithheldReason, string> = {
  sender_unknown: 'я не нашёл вас в справочнике сотрудников',
  sender_unauthenticated: 'не удалось подтвердить, что сообщение отправили именно вы',
  external_domain: 'запросы с адресов вне компании не передаются сотрудникам и в рассылки',
};

/** The sentence the requester gets when their sender trust held an action back (the answer is a reply only). */
export function withheldNotice(action: ExecutableAction, reason: WithheldReason): string {
  return `Действие «${describeAction(action)}» не выполнено: ${WITHHELD_WHY[reason]}. Отвечаю только сообщением.`;
}

export function disabledNotice(action: ExecutableAction): string {
  return `Действие «${describeAction(action)}» отключено администратором, поэтому оно не выполнено. Запрос сохранён.`;
}

/**
 * What the requester is told when an action failed for good. The reason (Jira's or the communicator's own words,
 * configuration keys, HTTP statuses) is for the operator: it stays in the execution log (`error`) and is never
 * sent to the requester, who can do nothing with it.
 */
export function failedNotice(action: ExecutableAction, id: number): string {
  return `Не удалось ${describeAction(action)} (действие №${id}). Администратор увидит причину в журнале действий; при необходимости обратитесь в департамент напрямую.`;
}

export function rejectedNotice(action: ExecutableAction, by: string, reason: string | null): string {
  return `Действие «${describeAction(action)}» по вашему запросу отклонено (${by})${reason ? `: ${reason}` : ''}.`;
}

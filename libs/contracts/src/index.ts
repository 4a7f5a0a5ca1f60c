import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { components as SecretaryComponents } from './generated/secretary.js';
import type { components as GuesserComponents } from './generated/guesser.js';
import type { components as AnalystComponents } from './generated/system-analyst.js';
import type { components as CommunicatorComponents } from './generated/communicator.js';

export type * as SecretaryApi from './generated/secretary.js';
export type * as GuesserApi from './generated/guesser.js';
export type * as SystemAnalystApi from './generated/system-analyst.js';
export type * as CommunicatorApi from './generated/communicator.js';

/** An OpenAPI 3.0 document as plain JSON. */
export type OpenApiDocument = {
  openapi: string;
  info: { title: string; version: string; description?: string };
  paths: Record<string, Record<string, unknown>>;
  components?: Record<string, Record<string, unknown>>;
  [key: string]: unknown;
};

export const SERVICE_NAMES = ['secretary', 'guesser', 'system-analyst', 'communicator'] as const;
export type ServiceName = (typeof SERVICE_NAMES)[number];

// The YAML documents (the source) live beside src/ and dist/ alike, so this resolves from either.
const documentsDir = new URL('../openapi/', import.meta.url);
// `npm run build` writes their JSON form into dist/openapi/ (scripts-build-json.mjs); src/ has none.
const builtDocumentsDir = new URL('./openapi/', import.meta.url);
const cache = new Map<ServiceName, OpenApiDocument>();

/**
 * Reads a service's document: the built JSON (`dist/openapi/<service>.json`) when there is one, else the YAML source
 * (`openapi/<service>.yaml`, merge keys resolved). The `yaml` parser is loaded only in the second case: parsing
 * YAML at start cost every built service ~8-11 MB of RSS (docs/operations.md, "Memory at start-up").
 */
function readOpenApiDocument(service: ServiceName): OpenApiDocument {
  const built = new URL(`${service}.json`, builtDocumentsDir);
  if (existsSync(built)) return JSON.parse(readFileSync(built, 'utf8')) as OpenApiDocument;
  const { parse } = createRequire(import.meta.url)('yaml') as typeof Yaml;
  return parse(readFileSync(new URL(`${service}.yaml`, documentsDir), 'utf8'), { merge: true }) as OpenApiDocument;
}

/** The OpenAPI document of a service: the single source of truth for its HTTP contract. */
export function loadOpenApiDocument(service: ServiceName): OpenApiDocument {
  let doc = cache.get(service);
  if (!doc) {
    doc = readOpenApiDocument(service);
    cache.set(service, doc);
  }
  // Callers get their own copy: a document must never be mutated by one service and seen by another.
  return structuredClone(doc);
}

/** An action of the contract (the seed spells them in Russian); each literal is written once, below. */
export type Action = SecretaryComponents['schemas']['Action'];

export const ACTION_CLARIFY = 'уточнить' satisfies Action;
export const ACTION_REPLY_MESSAGE = 'ответить сообщением' satisfies Action;
export const ACTION_JIRA = 'создать jira-task' satisfies Action;
export const ACTION_TELEGRAM_EMPLOYEE = 'написать в telegram сотруднику' satisfies Action;
export const ACTION_REPLY_EMAIL = 'ответить на письмо' satisfies Action;
export const ACTION_MAILING_LIST = 'написать в рассылку департамента' satisfies Action;

/** The actions exactly as the seed contract spells them (Russian), in the contract's order. */
export const ACTIONS = [
  ACTION_CLARIFY,
  ACTION_REPLY_MESSAGE,
  ACTION_JIRA,
  ACTION_TELEGRAM_EMPLOYEE,
  ACTION_REPLY_EMAIL,
  ACTION_MAILING_LIST,
] as const satisfies readonly Action[];
// Every contract action is listed: the compiler stops here when the OpenAPI enum grows.
const everyActionListed: Exclude<Action, (typeof ACTIONS)[number]> extends never ? true : false = true;
void everyActionListed;

export function isAction(value: unknown): value is Action {
  return typeof value === 'string' && (ACTIONS as readonly string[]).includes(value);
}

export const CHANNELS = [
  'email',
  'tg',
  'direct',
] as const satisfies readonly SecretaryComponents['schemas']['Channel'][];
export type Channel = SecretaryComponents['schemas']['Channel'];

export type ErrorResponse = SecretaryComponents['schemas']['ErrorResponse'];
export type HealthResponse = SecretaryComponents['schemas']['Health'];
export type AnalysisResponse = SecretaryComponents['schemas']['AnalysisResponse'];
export type AnalyzeRequest = SecretaryComponents['schemas']['AnalyzeRequest'];
export type ContextResponse = GuesserComponents['schemas']['ContextResponse'];
export type AnalyticsResponse = AnalystComponents['schemas']['AnalyticsResponse'];
export type SendRequest = CommunicatorComponents['schemas']['SendRequest'];
export type SendResponse = CommunicatorComponents['schemas']['SendResponse'];
/** An inline button under a Telegram message (Bot API InlineKeyboardButton with `callback_data`). */
export type SendButton = CommunicatorComponents['schemas']['SendButton'];
export type Employee = SecretaryComponents['schemas']['Employee'];
export type EmployeeInput = SecretaryComponents['schemas']['EmployeeInput'];
export type Department = SecretaryComponents['schemas']['Department'];
export type DepartmentInput = SecretaryComponents['schemas']['DepartmentInput'];
export type RoutingRuleStats = SecretaryComponents['schemas']['RoutingRuleStats'];
export type ActionDecisionInput = SecretaryComponents['schemas']['ActionDecisionInput'];
/**
 * One audit event as the secretary's `POST /audit-events` takes it (the communicator writes these, the secretary
 * writes its own); `dry_run` may be left out (default false). `event_id` is the writer's idempotency key.
 */
export type AuditEventInput = Omit<SecretaryComponents['schemas']['AuditEventInput'], 'dry_run'> & {
  dry_run?: boolean;
};

/** The answer of the communicator's `POST /test` (a dry run of one mail). */
export type DryRunVerdict = CommunicatorComponents['schemas']['DryRunVerdict'];
/** The JSON a mail webhook of the communicator answers with 200. */
export type WebhookResult = CommunicatorComponents['schemas']['WebhookResult'];
/** One thing a real request would do, in a dry run's `would_execute` (secretary.yaml). */
export type WouldExecute = SecretaryComponents['schemas']['WouldExecute'];
/**
 * The communicator's verdict on a mail's sender (`sender_authentication` of `POST /analyze-request`): DMARC, or
 * DKIM/SPF aligned with the `From:` domain (RFC 7489), from the receiving server's Authentication-Results.
 */
export type SenderAuthentication = SecretaryComponents['schemas']['SenderAuthentication'];
/**
 * The generation settings an answer was produced with (the `settings` of the LLM services' `llm` metadata): the
 * guesser's and the analyst's documents declare the same schema; the compiler keeps them equal (below).
 */
export type GenerationSettings = GuesserComponents['schemas']['GenerationSettings'];
const sameGenerationSettings: [GenerationSettings, AnalystComponents['schemas']['GenerationSettings']] extends [
  AnalystComponents['schemas']['GenerationSettings'],
  GenerationSettings,
]
  ? true
  : false = true;
void sameGenerationSettings;
/** The guesser's request (`GET`/`POST /get-context`). */
export type ContextRequest = GuesserComponents['schemas']['ContextRequest'];
/** The system analyst's request (`GET`/`POST /prepare-analytics`). */
export type AnalyticsRequest = AnalystComponents['schemas']['AnalyticsRequest'];
/** The body of the secretary's `POST /rate-limits/consume`: one unit from every key, `limit` per `window_seconds`. */
export type RateLimitConsumeRequest = SecretaryComponents['schemas']['RateLimitConsumeRequest'];

/**
 * The secretary's answer to `POST /rate-limits/consume` as the wire carries it, narrowed to what the secretary
 * actually sends: `key` and `retry_after_seconds` (whole seconds ≥ 1) are present exactly when refused. The
 * contract's schema leaves both optional, so this narrower union is checked against it (below).
 */
export type RateLimitAnswer = { allowed: true } | { allowed: false; key: string; retry_after_seconds: number };
const answerIsContractVerdict: RateLimitAnswer extends SecretaryComponents['schemas']['RateLimitVerdict']
  ? true
  : false = true;
void answerIsContractVerdict;

/**
 * A rate-limit verdict inside a process (the secretary's store, the communicator's sender limit): `allowed`, one
 * unit was taken from every key; otherwise nothing was taken, `key` is the first exhausted key in the order
 * given and `retryAfterSeconds` (integer ≥ 1) the time until it has a unit again. The camelCase form of
 * `RateLimitAnswer`; `rateLimitAnswerOf` / `rateLimitVerdictOf` convert between the two.
 */
export type RateLimitVerdict = { allowed: true } | { allowed: false; key: string; retryAfterSeconds: number };

/** The wire form (`RateLimitAnswer`, secretary.yaml `RateLimitVerdict`) of a verdict. */
export function rateLimitAnswerOf(verdict: RateLimitVerdict): RateLimitAnswer {
  return verdict.allowed
    ? { allowed: true }
    : { allowed: false, key: verdict.key, retry_after_seconds: verdict.retryAfterSeconds };
}

/** The in-process form of the secretary's answer to `POST /rate-limits/consume`. */
export function rateLimitVerdictOf(answer: RateLimitAnswer): RateLimitVerdict {
  return answer.allowed
    ? { allowed: true }
    : { allowed: false, key: answer.key, retryAfterSeconds: answer.retry_after_seconds };
}

/** The decision of an approver's button press on a held action. */
export type ApprovalVerdict = 'approve' | 'reject';

const APPROVAL_CALLBACK_DATA = /^action:(approve|reject):(\d+)$/;

/**
 * The `callback_data` of an approval button (`action:approve:<id>` / `action:reject:<id>`), sent by the
 * secretary with the approval request and read back by the communicator when the approver presses it; `id` is
 * the action execution's id (a positive integer). At most 64 bytes, as the Bot API's InlineKeyboardButton allows.
 */
export function approvalCallbackData(verdict: ApprovalVerdict, id: number): string {
  return `action:${verdict}:${id}`;
}

/**
 * Reads an approval button's `callback_data` (the format of `approvalCallbackData`): the verdict and the action
 * execution's id, or undefined for anything else (another button, no data).
 */
export function parseApprovalCallbackData(
  data: string | undefined,
): { decision: ApprovalVerdict; id: number } | undefined {
  const match = APPROVAL_CALLBACK_DATA.exec(data ?? '');
  return match ? { decision: match[1] as ApprovalVerdict, id: Number(match[2]) } : undefined;
}

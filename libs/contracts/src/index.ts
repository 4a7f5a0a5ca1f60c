import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
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

// The documents live beside src/ and dist/ alike, so this resolves from either.
const documentsDir = new URL('../openapi/', import.meta.url);
const cache = new Map<ServiceName, OpenApiDocument>();

/** The OpenAPI document of a service: the single source of truth for its HTTP contract. */
export function loadOpenApiDocument(service: ServiceName): OpenApiDocument {
  let doc = cache.get(service);
  if (!doc) {
    doc = parse(readFileSync(new URL(`${service}.yaml`, documentsDir), 'utf8'), { merge: true }) as OpenApiDocument;
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

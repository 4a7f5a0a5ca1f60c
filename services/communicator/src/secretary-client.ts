import { createHttpClient, type Logger, type Metrics } from '@workemon/service-kit';
import { ACTION_CLARIFY, isAction, type AnalysisResponse, type AnalyzeRequest } from '@workemon/contracts';

export type SecretaryClient = {
  analyze: (request: AnalyzeRequest) => Promise<AnalysisResponse>;
  /** Resolves when the secretary's /health answers (200 or 503 with a body); throws when it is unreachable. */
  health: () => Promise<{ status: string }>;
  /**
   * `POST /action-executions/{id}/approve|reject` (an approval button was pressed). Resolves with the
   * execution's new status; a 409 (already decided) or 404 rejects with the secretary's error.
   */
  decideAction: (id: number, decision: 'approve' | 'reject', by: string) => Promise<{ status: string }>;
  /**
   * `POST /deliveries`: records inbound messages (by idempotency key, e.g. `tg:<chat_id>:<message_id>`) as
   * handled, durably, so a restart does not answer them again. Idempotent.
   */
  recordHandled: (channel: 'tg' | 'email', keys: string[], outcome: HandledOutcome, reason?: string) => Promise<void>;
  /** `POST /deliveries/lookup`: the subset of `keys` recorded as handled, with their outcome. */
  lookupHandled: (keys: string[]) => Promise<Map<string, HandledOutcome>>;
};

/** sent: answered; skipped: deliberately not answered; failed: given up (a permanent error). */
export type HandledOutcome = 'sent' | 'skipped' | 'failed';

const hasStatus = (data: unknown): data is { status: string } =>
  !!data && typeof data === 'object' && typeof (data as { status?: unknown }).status === 'string';

function isAnalysis(data: unknown): data is AnalysisResponse {
  const d = data as Partial<AnalysisResponse> | null;
  return (
    !!d &&
    typeof d.is_enough === 'boolean' &&
    typeof d.request === 'string' &&
    isAction(d.action) &&
    typeof d.question === 'string' &&
    typeof d.response === 'string'
  );
}

/**
 * The only code that knows the secretary's URL. `POST /analyze-request` is not retried here: the caller owns
 * the retry schedule (a mail stays unseen, an update unconfirmed), and `message_id` makes a repeat harmless.
 */
export function createSecretaryClient(options: {
  baseURL: string;
  apiKey?: string;
  timeoutMs: number;
  metrics: Metrics;
  logger: Logger;
}): SecretaryClient {
  const http = createHttpClient({
    target: 'secretary',
    baseURL: options.baseURL,
    timeoutMs: options.timeoutMs,
    apiKey: options.apiKey,
    metrics: options.metrics,
    logger: options.logger,
    maxRetries: 0,
  });
  return {
    analyze: (request) => http.post<AnalysisResponse>('/analyze-request', request, { validate: isAnalysis }),
    decideAction: (id, decision, by) =>
      http.post<{ status: string }>(`/action-executions/${id}/${decision}`, { by }, { validate: hasStatus }),
    recordHandled: async (channel, keys, outcome, reason) => {
      await http.post<{ recorded: number }>(
        '/deliveries',
        { channel, keys, outcome, ...(reason ? { reason: reason.slice(0, 200) } : {}) },
        { validate: (d): d is { recorded: number } => typeof (d as { recorded?: unknown })?.recorded === 'number' },
      );
    },
    lookupHandled: async (keys) => {
      const found = await http.post<{ handled: Array<{ key: string; outcome: HandledOutcome }> }>(
        '/deliveries/lookup',
        { keys },
        { validate: (d): d is { handled: [] } => Array.isArray((d as { handled?: unknown })?.handled) },
      );
      return new Map(found.handled.map((h) => [h.key, h.outcome]));
    },
    health: async () => {
      const res = await http.probe('/health', { timeoutMs: 2000 });
      if (res.status !== 200 && res.status !== 503) throw new Error(`secretary /health answered ${res.status}`);
      const status = (res.data as { status?: unknown } | undefined)?.status;
      return { status: typeof status === 'string' ? status : res.status === 200 ? 'ok' : 'down' };
    },
  };
}

/** The text sent back to the user: the question when the secretary asks one, else its answer. */
export function replyTextOf(analysis: AnalysisResponse): string {
  const primary = analysis.action === ACTION_CLARIFY ? analysis.question : analysis.response;
  return (primary || analysis.response || analysis.question).trim();
}

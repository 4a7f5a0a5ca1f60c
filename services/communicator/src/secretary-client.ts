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
};

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
    health: async () => {
      const res = await http.axios.get('/health', { timeout: 2000 });
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

import { createHttpClient, type Logger, type Metrics } from '@workemon/service-kit';

export type JiraSettings = {
  baseUrl: string;
  /** Set: Jira Cloud (Basic email:token, REST v3, ADF). Unset: Server/Data Center (Bearer PAT, REST v2). */
  email?: string;
  apiToken: string;
  /** Project used when the department names none. */
  projectKey?: string;
  issueType: string;
  timeoutMs?: number;
};

export type JiraFlavor = 'cloud' | 'server';

export type JiraSection = { title: string; text: string };

export type JiraIssueInput = {
  projectKey: string;
  summary: string;
  /** Rendered as headed blocks: ADF on Cloud, wiki markup on Server/DC. */
  sections: JiraSection[];
  labels: string[];
};

export type CreatedJiraIssue = { id: string; key: string; url: string };

export type JiraClient = {
  flavor: JiraFlavor;
  defaultProjectKey?: string;
  createIssue(input: JiraIssueInput): Promise<CreatedJiraIssue>;
  /**
   * The issue carrying `label`, if one exists (JQL search: Cloud `GET /rest/api/3/search/jql`, Server/DC
   * `GET /rest/api/2/search`). Used before re-creating after a create whose answer was lost.
   */
  findIssueByLabel(label: string): Promise<CreatedJiraIssue | undefined>;
};

/** The label that marks the issue of one action execution, so a retried create can find it. */
export const executionLabel = (executionId: number) => `workemon-action-${executionId}`;

export const SUMMARY_MAX_CHARS = 120;

/** One line, at most 120 characters, cut at a word boundary when one is near. */
export function summarize(text: string, maxChars = SUMMARY_MAX_CHARS): string {
  const line = text.replace(/\s+/g, ' ').trim();
  if (line.length <= maxChars) return line || 'Запрос Workemon';
  const cut = line.slice(0, maxChars - 1);
  const space = cut.lastIndexOf(' ');
  return `${(space > maxChars * 0.6 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

type AdfNode = { type: string; [key: string]: unknown };

// ADF text nodes must be non-empty: blank lines split paragraphs, single newlines become hardBreaks.
function adfParagraphs(text: string): AdfNode[] {
  return text
    .split(/\n\s*\n/)
    .map((block) => block.split('\n').filter((line) => line.trim() !== ''))
    .filter((lines) => lines.length > 0)
    .map((lines) => ({
      type: 'paragraph',
      content: lines.flatMap((line, i) => [...(i > 0 ? [{ type: 'hardBreak' }] : []), { type: 'text', text: line }]),
    }));
}

export function toAdf(sections: JiraSection[]): AdfNode {
  const content: AdfNode[] = [];
  for (const section of sections) {
    if (!section.text.trim()) continue;
    content.push({ type: 'heading', attrs: { level: 3 }, content: [{ type: 'text', text: section.title }] });
    content.push(...adfParagraphs(section.text));
  }
  return { type: 'doc', version: 1, content };
}

// Wiki markup: user text goes into {noformat} so that `*`, `{`, `[` in a mail do not turn into markup.
export function toWikiMarkup(sections: JiraSection[]): string {
  return sections
    .filter((s) => s.text.trim())
    .map((s) => `h3. ${s.title}\n{noformat}\n${s.text.replace(/\{noformat\}/gi, '{ noformat}').trim()}\n{noformat}`)
    .join('\n\n');
}

/** Jira's 4xx body (`{errorMessages: [...], errors: {field: message}}`) as one line. */
export function describeJiraError(data: unknown): string | undefined {
  if (!data || typeof data !== 'object') return undefined;
  const body = data as { errorMessages?: unknown; errors?: unknown };
  const parts: string[] = [];
  if (Array.isArray(body.errorMessages)) parts.push(...body.errorMessages.filter((m) => typeof m === 'string'));
  if (body.errors && typeof body.errors === 'object') {
    for (const [field, message] of Object.entries(body.errors as Record<string, unknown>)) {
      parts.push(`${field}: ${String(message)}`);
    }
  }
  return parts.length ? parts.join('; ') : undefined;
}

type CreateIssueResponse = { id: string; key: string };
type SearchResponse = { issues: { id: string; key: string }[] };
const isSearchResponse = (data: unknown): data is SearchResponse =>
  !!data && typeof data === 'object' && Array.isArray((data as SearchResponse).issues);
const isCreateIssueResponse = (data: unknown): data is CreateIssueResponse =>
  !!data &&
  typeof data === 'object' &&
  typeof (data as CreateIssueResponse).key === 'string' &&
  (data as CreateIssueResponse).key.length > 0;

/**
 * The only code that knows Jira's URL and wire format. POST /issue is not idempotent, so this client never
 * retries: the outbox worker decides (transient failures are retried there with backoff, permanent ones fail
 * with Jira's reason, which the http client's `upstream_rejected` error carries as its message).
 */
export function createJiraClient(
  settings: JiraSettings,
  deps: { metrics?: Metrics; logger?: Logger } = {},
): JiraClient {
  const flavor: JiraFlavor = settings.email ? 'cloud' : 'server';
  const apiVersion = flavor === 'cloud' ? 3 : 2;
  const base = settings.baseUrl.replace(/\/+$/, '');
  const authorization =
    flavor === 'cloud'
      ? `Basic ${Buffer.from(`${settings.email}:${settings.apiToken}`).toString('base64')}`
      : `Bearer ${settings.apiToken}`;
  const http = createHttpClient({
    target: 'jira',
    baseURL: base,
    timeoutMs: settings.timeoutMs ?? 15_000,
    maxRetries: 0,
    metrics: deps.metrics,
    logger: deps.logger,
    headers: { Authorization: authorization, 'Content-Type': 'application/json' },
    // Jira's errors carry no `message`; this says what Jira objected to.
    rejectionMessage: describeJiraError,
  });

  return {
    flavor,
    defaultProjectKey: settings.projectKey,
    async createIssue(input) {
      const description = flavor === 'cloud' ? toAdf(input.sections) : toWikiMarkup(input.sections);
      const created = await http.post<CreateIssueResponse>(
        `/rest/api/${apiVersion}/issue`,
        {
          fields: {
            project: { key: input.projectKey },
            issuetype: { name: settings.issueType },
            summary: summarize(input.summary),
            description,
            labels: input.labels,
          },
        },
        { validate: isCreateIssueResponse },
      );
      return { id: String(created.id), key: created.key, url: `${base}/browse/${created.key}` };
    },
    async findIssueByLabel(label) {
      // Cloud removed GET /rest/api/3/search in favour of /search/jql; Server/DC has only /rest/api/2/search.
      // Labels are our own ([a-z0-9-]), so quoting them is enough to make the JQL safe.
      const path = flavor === 'cloud' ? '/rest/api/3/search/jql' : '/rest/api/2/search';
      const found = await http.get<SearchResponse>(path, {
        params: { jql: `labels = "${label}" ORDER BY created ASC`, fields: 'key', maxResults: 5 },
        validate: isSearchResponse,
      });
      const issue = found.issues[0];
      return issue ? { id: String(issue.id), key: issue.key, url: `${base}/browse/${issue.key}` } : undefined;
    },
  };
}

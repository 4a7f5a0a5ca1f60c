// A fake Jira that imitates "create issue" of Jira Cloud (REST v3: Basic email:token, ADF description) and
// Jira Server/Data Center (REST v2: Bearer personal access token, plain-string description): the URL, the
// auth header, the body's required fields (project key, issue type name, single-line summary under 255
// characters, label syntax, the description's format per version), the 201 answer
// `{id, key, self}` and the 400 error body `{errorMessages, errors}`. Failures can be scripted (400 with an
// errors object, 401, 403, 429 with Retry-After, 503), and so can a create that succeeds but answers too late
// (`holdNext`: the caller times out, the issue exists). Search: Server/DC and Cloud `GET /rest/api/2/search`,
// Cloud `GET /rest/api/3/search/jql` (enhanced search; the old `/rest/api/3/search` answers 410 Gone, as
// Atlassian removed it), answering `{issues: [{id, key, self, fields}]}`; JQL limited to `labels = x` /
// `labels in (x, y)` with an optional ORDER BY (anything else → 400 with a JQL error). It leaves out everything
// else: other endpoints, createmeta, custom fields, workflows, permissions per user, issue-type ids, paging,
// search index lag, rate limiting by itself.
import express from 'express';
import { listen, type Listening } from './ports.js';

export type FakeJiraOptions = {
  flavor: 'cloud' | 'server';
  /** Cloud: the account email of the Basic credentials. */
  email?: string;
  /** Cloud API token or Server/DC personal access token. */
  token: string;
  projects?: string[];
  issueTypes?: string[];
};

export type CreatedIssue = {
  id: string;
  key: string;
  apiVersion: 2 | 3;
  project: string;
  issueType: string;
  summary: string;
  labels: string[];
  /** The description as sent (ADF object on v3, string on v2). */
  description: unknown;
  /** The description's text: ADF text nodes joined (paragraphs by newlines), or the v2 string. */
  descriptionText: string;
};

type ScriptedFailure = { status: number; body?: unknown; headers?: Record<string, string> };

export type FakeJira = Listening & {
  issues: CreatedIssue[];
  /** Every create attempt that reached the fake, answered or not. */
  requests: { apiVersion: string; status: number }[];
  /** Every search that reached the fake. */
  searches: { path: string; jql: string; status: number }[];
  /** The next `times` create calls answer this instead of creating. */
  failNext(failure: ScriptedFailure, times?: number): void;
  /** The next `times` creates create the issue but hold their answer `ms` (a caller's timeout loses it). */
  holdNext(ms: number, times?: number): void;
};

// `labels = x`, `labels = "x"`, `labels in (x, "y")`, then an optional ORDER BY: what the secretary sends.
function labelsOfJql(jql: string): string[] | undefined {
  const m =
    /^\s*labels\s*(?:=\s*("[^"]*"|[\w-]+)|in\s*\(([^)]*)\))\s*(?:order\s+by\s+\w+(?:\s+(?:asc|desc))?)?\s*$/i.exec(jql);
  if (!m) return undefined;
  const list = m[1] !== undefined ? [m[1]] : m[2]!.split(',');
  return list.map((l) => l.trim().replace(/^"|"$/g, '')).filter(Boolean);
}

function adfText(node: unknown): string {
  if (!node || typeof node !== 'object') return '';
  const n = node as { type?: string; text?: string; content?: unknown[] };
  if (n.type === 'text') return n.text ?? '';
  if (n.type === 'hardBreak') return '\n';
  const inner = (n.content ?? []).map(adfText);
  return n.type === 'doc' ? inner.join('\n') : inner.join('');
}

// Enough of ADF to catch what Jira rejects: a doc of version 1 whose text nodes are non-empty strings.
function adfProblem(node: unknown, root = true): string | undefined {
  if (!node || typeof node !== 'object' || Array.isArray(node)) return 'Operation value must be an Atlassian Document';
  const n = node as { type?: unknown; version?: unknown; text?: unknown; content?: unknown };
  if (root && (n.type !== 'doc' || n.version !== 1)) return 'Operation value must be an Atlassian Document';
  if (typeof n.type !== 'string') return 'INVALID_INPUT';
  if (n.type === 'text' && (typeof n.text !== 'string' || n.text.length === 0)) return 'INVALID_INPUT';
  if (n.content !== undefined) {
    if (!Array.isArray(n.content)) return 'INVALID_INPUT';
    for (const child of n.content) {
      const problem = adfProblem(child, false);
      if (problem) return problem;
    }
  }
  return undefined;
}

export async function startFakeJira(options: FakeJiraOptions): Promise<FakeJira> {
  const projects = new Set(options.projects ?? ['OPS']);
  const issueTypes = new Set(options.issueTypes ?? ['Task']);
  const issues: CreatedIssue[] = [];
  const requests: { apiVersion: string; status: number }[] = [];
  const failures: ScriptedFailure[] = [];
  const holds: number[] = [];
  const searches: { path: string; jql: string; status: number }[] = [];
  const timers = new Set<NodeJS.Timeout>();
  let nextId = 10000;
  const counters = new Map<string, number>();
  const expectedAuth =
    options.flavor === 'cloud'
      ? `Basic ${Buffer.from(`${options.email ?? ''}:${options.token}`).toString('base64')}`
      : `Bearer ${options.token}`;

  const app = express();
  app.use(express.json({ limit: '5mb' }));
  app.post('/rest/api/:version/issue', (req, res) => {
    const version = req.params.version;
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      requests.push({ apiVersion: version, status });
      for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
      res.status(status).json(body);
    };
    // Cloud serves v2 and v3; Server/DC only v2.
    const supported = options.flavor === 'cloud' ? ['2', '3'] : ['2'];
    if (!supported.includes(version)) return answer(404, { errorMessages: ['null for uri: ' + req.originalUrl] });
    if (req.get('authorization') !== expectedAuth)
      return answer(401, {
        errorMessages: ['You are not authenticated. Authentication required to perform this operation.'],
      });
    const failure = failures.shift();
    if (failure)
      return answer(failure.status, failure.body ?? { errorMessages: [`scripted ${failure.status}`] }, failure.headers);

    const fields = (req.body as { fields?: Record<string, unknown> } | undefined)?.fields ?? {};
    const errors: Record<string, string> = {};
    const project = (fields['project'] as { key?: unknown } | undefined)?.key;
    if (typeof project !== 'string' || !projects.has(project)) errors['project'] = 'valid project is required';
    const issueType = (fields['issuetype'] as { name?: unknown } | undefined)?.name;
    if (typeof issueType !== 'string' || !issueTypes.has(issueType)) errors['issuetype'] = 'Specify a valid issue type';
    const summary = fields['summary'];
    if (typeof summary !== 'string' || !summary.trim()) errors['summary'] = 'You must specify a summary of the issue.';
    else if (/[\r\n]/.test(summary))
      errors['summary'] = 'The summary is invalid because it contains newline characters.';
    else if (summary.length > 254) errors['summary'] = 'Summary must be less than 255 characters.';
    const description = fields['description'];
    if (description !== undefined) {
      if (version === '3') {
        const problem = adfProblem(description);
        if (problem)
          errors['description'] =
            problem === 'INVALID_INPUT' ? 'INVALID_INPUT' : `${problem} (see the Atlassian Document Format)`;
      } else if (typeof description !== 'string') errors['description'] = 'Operation value must be a string';
    }
    const labels = fields['labels'] ?? [];
    if (!Array.isArray(labels) || labels.some((l) => typeof l !== 'string' || /\s/.test(l)))
      errors['labels'] = 'Labels must be strings without spaces';
    if (Object.keys(errors).length) return answer(400, { errorMessages: [], errors });

    const n = (counters.get(project as string) ?? 0) + 1;
    counters.set(project as string, n);
    const id = String(nextId++);
    const key = `${project as string}-${n}`;
    issues.push({
      id,
      key,
      apiVersion: version === '3' ? 3 : 2,
      project: project as string,
      issueType: issueType as string,
      summary: summary as string,
      labels: labels as string[],
      description,
      descriptionText: version === '3' ? adfText(description) : String(description ?? ''),
    });
    const body = { id, key, self: `${req.protocol}://${req.get('host')}/rest/api/${version}/issue/${id}` };
    const hold = holds.shift();
    if (hold === undefined) return answer(201, body);
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!res.destroyed) answer(201, body);
    }, hold);
    timers.add(timer);
  });

  const search = (flavors: string[]) => (req: express.Request, res: express.Response) => {
    const jql = typeof req.query['jql'] === 'string' ? req.query['jql'] : '';
    const answer = (status: number, body: unknown) => {
      searches.push({ path: req.path, jql, status });
      res.status(status).json(body);
    };
    if (!flavors.includes(options.flavor)) return answer(404, { errorMessages: ['null for uri: ' + req.originalUrl] });
    if (req.get('authorization') !== expectedAuth)
      return answer(401, { errorMessages: ['You are not authenticated.'] });
    const labels = labelsOfJql(jql);
    if (!labels) return answer(400, { errorMessages: [`Error in the JQL Query: '${jql}' is not supported`] });
    const found = issues.filter((i) => i.labels.some((l) => labels.includes(l)));
    const version = req.path.startsWith('/rest/api/3') ? 3 : 2;
    answer(200, {
      issues: found.map((i) => ({
        id: i.id,
        key: i.key,
        self: `${req.protocol}://${req.get('host')}/rest/api/${version}/issue/${i.id}`,
        fields: { summary: i.summary, labels: i.labels },
      })),
      ...(version === 3 ? { isLast: true } : { startAt: 0, maxResults: 50, total: found.length }),
    });
  };
  app.get('/rest/api/2/search', search(['cloud', 'server']));
  app.get('/rest/api/3/search/jql', search(['cloud']));
  app.get('/rest/api/3/search', (req, res) => {
    searches.push({ path: req.path, jql: String(req.query['jql'] ?? ''), status: 410 });
    res.status(410).json({ errorMessages: ['The requested API has been removed. Please use /rest/api/3/search/jql.'] });
  });

  const served = await listen(app);
  return {
    ...served,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await served.close();
    },
    issues,
    requests,
    searches,
    failNext(failure, times = 1) {
      for (let i = 0; i < times; i += 1) failures.push(failure);
    },
    holdNext(ms, times = 1) {
      for (let i = 0; i < times; i += 1) holds.push(ms);
    },
  };
}

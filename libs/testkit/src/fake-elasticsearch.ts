import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A fake Elasticsearch 8 speaking the wire format the v8 JavaScript client and winston-elasticsearch use:
 * `GET|HEAD /` (cluster info), `GET /_cluster/health`, `HEAD|GET|PUT /_index_template/<name>`,
 * `POST /_bulk` and `POST /<index>/_bulk` (NDJSON; the extra `attempts` key winston-elasticsearch puts beside
 * the action is ignored, as Elasticsearch tolerates it). Every answer carries `X-Elastic-Product:
 * Elasticsearch`, without which the client refuses to talk.
 * Like Elasticsearch it rejects a plain `index` into a data stream (`logs-*-*` or one matching a data-stream
 * template) and a data-stream document without `@timestamp`; a malformed NDJSON body is a 400.
 * Left out: searching, mappings, security (any credentials are accepted but recorded), real persistence.
 */
export type FakeBulkDocument = { index: string; op: 'index' | 'create'; source: Record<string, unknown> };

export type FakeElasticsearch = {
  url: string;
  port: number;
  /** Documents accepted by `_bulk`, in arrival order. */
  documents: FakeBulkDocument[];
  /** Index templates put, by name. */
  templates: Map<string, Record<string, unknown>>;
  /** Every request seen (method, path, authorization header, arrival time in ms). */
  requests: { method: string; path: string; at: number; authorization?: string }[];
  /** Answer `_bulk` with 503 (a cluster that is up but cannot index) until set back to false. */
  failBulk: boolean;
  /** Resolves once at least `count` documents matching `filter` have arrived. */
  waitForDocuments: (
    count: number,
    filter?: (doc: FakeBulkDocument) => boolean,
    timeoutMs?: number,
  ) => Promise<FakeBulkDocument[]>;
  close: () => Promise<void>;
};

const INFO = {
  name: 'fake-node',
  cluster_name: 'fake',
  cluster_uuid: 'fake-uuid',
  version: {
    number: '8.15.0',
    build_flavor: 'default',
    build_type: 'docker',
    build_hash: 'fake',
    build_date: '2024-08-01T00:00:00Z',
    build_snapshot: false,
    lucene_version: '9.11.1',
    minimum_wire_compatibility_version: '7.17.0',
    minimum_index_compatibility_version: '7.0.0',
  },
  tagline: 'You Know, for Search',
};

function esError(status: number, type: string, reason: string) {
  return { error: { root_cause: [{ type, reason }], type, reason }, status };
}

export async function startFakeElasticsearch(options: { port?: number } = {}): Promise<FakeElasticsearch> {
  const documents: FakeBulkDocument[] = [];
  const templates = new Map<string, Record<string, unknown>>();
  const requests: FakeElasticsearch['requests'] = [];
  const waiters = new Set<() => void>();
  const state = { failBulk: false };

  const isDataStream = (index: string) =>
    /^logs-[^-]+-[^-]+$/.test(index) ||
    [...templates.values()].some(
      (t) =>
        t['data_stream'] !== undefined &&
        ((t['index_patterns'] as string[] | undefined) ?? []).some((p) =>
          new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(index),
        ),
    );

  function send(res: ServerResponse, status: number, body?: unknown): void {
    res.setHeader('X-Elastic-Product', 'Elasticsearch');
    if (body === undefined) {
      res.writeHead(status).end();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  }

  function bulk(res: ServerResponse, body: string, defaultIndex: string | undefined, contentType: string): void {
    if (!/ndjson/.test(contentType)) {
      send(res, 406, esError(406, 'media_type_header_exception', `Content-Type [${contentType}] is not supported`));
      return;
    }
    if (state.failBulk) {
      send(res, 503, esError(503, 'unavailable_shards_exception', 'primary shard is not active'));
      return;
    }
    if (!body.endsWith('\n')) {
      send(res, 400, esError(400, 'illegal_argument_exception', 'The bulk request must be terminated by a newline'));
      return;
    }
    const lines = body.split('\n').filter((l) => l.trim() !== '');
    const items: Record<string, unknown>[] = [];
    let errors = false;
    for (let i = 0; i < lines.length; i += 2) {
      let action: Record<string, { _index?: string } | number | undefined>;
      let source: Record<string, unknown>;
      try {
        action = JSON.parse(lines[i]!);
        source = JSON.parse(lines[i + 1] ?? 'null');
      } catch {
        send(res, 400, esError(400, 'x_content_parse_exception', `Malformed action/metadata line [${i + 1}]`));
        return;
      }
      const op = (['create', 'index'] as const).find((k) => typeof action[k] === 'object');
      const meta = op ? (action[op] as { _index?: string }) : undefined;
      const index = meta?._index ?? defaultIndex;
      if (!op || !index || source === null || typeof source !== 'object') {
        send(res, 400, esError(400, 'illegal_argument_exception', `Malformed action/metadata line [${i + 1}]`));
        return;
      }
      const item = { _index: index, _id: `doc-${documents.length + items.length}`, _version: 1 };
      if (isDataStream(index) && op !== 'create') {
        errors = true;
        items.push({
          [op]: {
            ...item,
            status: 400,
            error: {
              type: 'illegal_argument_exception',
              reason: `only write ops with an op_type of create are allowed in data streams`,
            },
          },
        });
      } else if (isDataStream(index) && typeof source['@timestamp'] !== 'string') {
        errors = true;
        items.push({
          [op]: {
            ...item,
            status: 400,
            error: {
              type: 'document_parsing_exception',
              reason: 'data stream timestamp field [@timestamp] is missing',
            },
          },
        });
      } else {
        documents.push({ index, op, source });
        items.push({
          [op]: {
            ...item,
            result: 'created',
            _shards: { total: 1, successful: 1, failed: 0 },
            _seq_no: documents.length,
            _primary_term: 1,
            status: 201,
          },
        });
      }
    }
    send(res, 200, { took: 1, errors, items });
    for (const wake of waiters) wake();
  }

  function handle(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    requests.push({
      method,
      path,
      at: Date.now(),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
    });
    const template = /^\/_index_template\/([^/]+)$/.exec(path);
    const indexBulk = /^\/([^/_][^/]*)\/_bulk$/.exec(path);
    if (path === '/' && (method === 'GET' || method === 'HEAD')) return send(res, 200, INFO);
    if (path === '/_cluster/health' && method === 'GET')
      return send(res, 200, {
        cluster_name: 'fake',
        status: 'green',
        timed_out: false,
        number_of_nodes: 1,
        number_of_data_nodes: 1,
        active_primary_shards: 0,
        active_shards: 0,
        relocating_shards: 0,
        initializing_shards: 0,
        unassigned_shards: 0,
      });
    if (template) {
      const name = decodeURIComponent(template[1]!);
      if (method === 'HEAD') return send(res, templates.has(name) ? 200 : 404);
      if (method === 'GET') {
        const t = templates.get(name);
        return t
          ? send(res, 200, { index_templates: [{ name, index_template: t }] })
          : send(res, 404, esError(404, 'resource_not_found_exception', `index template matching [${name}] not found`));
      }
      if (method === 'PUT' || method === 'POST') {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(body);
        } catch {
          return send(res, 400, esError(400, 'parse_exception', 'request body is required'));
        }
        if (!Array.isArray(parsed['index_patterns']))
          return send(res, 400, esError(400, 'action_request_validation_exception', 'index patterns are missing'));
        if (url.searchParams.get('create') === 'true' && templates.has(name))
          return send(res, 400, esError(400, 'illegal_argument_exception', `index template [${name}] already exists`));
        templates.set(name, parsed);
        return send(res, 200, { acknowledged: true });
      }
    }
    if (method === 'POST' || method === 'PUT') {
      if (path === '/_bulk') return bulk(res, body, undefined, req.headers['content-type'] ?? '');
      if (indexBulk) return bulk(res, body, decodeURIComponent(indexBulk[1]!), req.headers['content-type'] ?? '');
    }
    send(res, 404, esError(404, 'no_handler_found', `no handler found for uri [${path}] and method [${method}]`));
  }

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const fake: FakeElasticsearch = {
    url: `http://127.0.0.1:${port}`,
    port,
    documents,
    templates,
    requests,
    get failBulk() {
      return state.failBulk;
    },
    set failBulk(value: boolean) {
      state.failBulk = value;
    },
    waitForDocuments(count, filter = () => true, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = documents.filter(filter);
          if (found.length < count) return false;
          cleanup();
          resolve(found);
          return true;
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(
            new Error(
              `fake Elasticsearch: ${documents.filter(filter).length}/${count} documents after ${timeoutMs} ms`,
            ),
          );
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(wake);
        };
        const wake = () => void check();
        waiters.add(wake);
        check();
      });
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  return fake;
}

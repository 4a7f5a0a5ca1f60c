/**
 * A fake of Anthropic's Messages API for component tests, speaking its wire format:
 * - `POST /v1/messages` with `x-api-key` and `anthropic-version` headers; body `{model, max_tokens, system?,
 *   messages:[{role:'user'|'assistant', content}], temperature?, tools?, tool_choice?}` → `{id, type:'message',
 *   role:'assistant', model, content:[{type:'text', text} | {type:'tool_use', id, name, input}], stop_reason,
 *   usage:{input_tokens, output_tokens}}`;
 * - `GET /v1/models` → `{data:[{type:'model', id, display_name, created_at}], has_more, first_id, last_id}`.
 * It checks what the real API rejects (missing or wrong key → 401, missing version header, missing `max_tokens`,
 * a `system` role inside `messages`, roles out of order, temperature over 1, a tool without an object
 * `input_schema`, a `tool_choice` naming no tool) and answers errors in Anthropic's shape
 * `{type:'error', error:{type, message}}`, including 429 `rate_limit_error` and 529 `overloaded_error`.
 * With a forced tool the answer object becomes the tool call's `input`; with a prefilled assistant turn the
 * text continues it. Token counts are ~chars/4.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FakeAnthropicRequest = {
  path: string;
  headers: Record<string, string>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- whatever the client sent
};

export type FakeAnthropic = {
  url: string;
  apiKey: string;
  model: string;
  requests: FakeAnthropicRequest[];
  healthRequests: { path: string; headers: Record<string, string> }[];
  /** The answer: an object (JSON; a tool call's input when a tool is forced) or a string (raw text). */
  reply(handler: (req: { system: string; user: string }) => unknown): void;
  /** The next `count` generation requests fail with this status (and headers). */
  failNext(count: number, failure: { status: number; headers?: Record<string, string> }): void;
  close(): Promise<void>;
};

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

class Rejection extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const tokensOf = (text: string) => Math.max(1, Math.ceil(text.length / 4));

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

export async function startFakeAnthropic(opts: { apiKey?: string; model?: string } = {}): Promise<FakeAnthropic> {
  const apiKey = opts.apiKey ?? 'sk-ant-fake-key';
  const model = opts.model ?? 'claude-haiku-4-5';
  let handler: (req: { system: string; user: string }) => unknown = () => ({
    is_enough: true,
    response: 'Ответ фейкового Claude',
  });
  const failures: { status: number; headers?: Record<string, string> }[] = [];
  const sockets = new Set<Socket>();
  const fake: FakeAnthropic = {
    url: '',
    apiKey,
    model,
    requests: [],
    healthRequests: [],
    reply: (h) => {
      handler = h;
    },
    failNext: (count, failure) => {
      for (let i = 0; i < count; i += 1) failures.push(failure);
    },
    close: async () => {},
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_fake_${Date.now()}`, ...headers });
    res.end(JSON.stringify(body));
  };
  const errorBody = (status: number, message: string) => ({
    type: 'error',
    error: { type: ERROR_TYPES[status] ?? 'api_error', message },
  });

  function checkHeaders(headers: Record<string, string>): void {
    if (!headers['x-api-key']) throw new Rejection(401, 'x-api-key header is required');
    if (headers['x-api-key'] !== apiKey) throw new Rejection(401, 'invalid x-api-key');
    if (!headers['anthropic-version']) throw new Rejection(400, 'anthropic-version: header is required');
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- whatever the client sent
  function checkMessages(body: Record<string, any>): void {
    if (body['model'] !== model) throw new Rejection(404, `model: ${String(body['model'])}`);
    if (!Number.isInteger(body['max_tokens']) || body['max_tokens'] < 1)
      throw new Rejection(400, 'max_tokens: Field required');
    if (body['temperature'] !== undefined && !(body['temperature'] >= 0 && body['temperature'] <= 1))
      throw new Rejection(400, 'temperature: Input should be less than or equal to 1');
    if (body['system'] !== undefined && typeof body['system'] !== 'string' && !Array.isArray(body['system']))
      throw new Rejection(400, 'system: Input should be a valid string');
    const messages = body['messages'];
    if (!Array.isArray(messages) || messages.length === 0) throw new Rejection(400, 'messages: Field required');
    messages.forEach((m: { role?: unknown; content?: unknown }, i: number) => {
      if (m.role !== 'user' && m.role !== 'assistant')
        throw new Rejection(400, `messages.${i}.role: Input should be 'user' or 'assistant'`);
      if (i === 0 && m.role !== 'user') throw new Rejection(400, 'messages: first message must use the "user" role');
      if (i > 0 && messages[i - 1].role === m.role)
        throw new Rejection(400, 'messages: roles must alternate between "user" and "assistant"');
      if (typeof m.content !== 'string' || !m.content.trim())
        throw new Rejection(400, `messages.${i}: all messages must have non-empty content`);
    });
    const tools = body['tools'] as { name?: unknown; input_schema?: { type?: unknown } }[] | undefined;
    if (tools !== undefined) {
      for (const t of tools) {
        if (typeof t.name !== 'string' || !/^[a-zA-Z0-9_-]{1,64}$/.test(t.name))
          throw new Rejection(400, 'tools.0.name: String should match pattern');
        if (t.input_schema?.type !== 'object') throw new Rejection(400, 'tools.0.input_schema.type: must be object');
      }
    }
    const choice = body['tool_choice'] as { type?: unknown; name?: unknown } | undefined;
    if (choice?.type === 'tool' && !tools?.some((t) => t.name === choice.name))
      throw new Rejection(400, `tool_choice: tool '${String(choice.name)}' not found in tools`);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
    );
    const raw = await readBody(req);
    try {
      if (req.method === 'GET' && path === '/v1/models') {
        fake.healthRequests.push({ path, headers });
        checkHeaders(headers);
        const id = `${model}-20251001`;
        return send(res, 200, {
          data: [{ type: 'model', id, display_name: 'Claude (fake)', created_at: '2025-10-01T00:00:00Z' }],
          has_more: false,
          first_id: id,
          last_id: id,
        });
      }
      if (req.method !== 'POST' || path !== '/v1/messages') throw new Rejection(404, `no route ${req.method} ${path}`);
      let body: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new Rejection(400, 'request body is not valid JSON');
      }
      fake.requests.push({ path, headers, body });
      checkHeaders(headers);
      checkMessages(body);
      const failure = failures.shift();
      if (failure)
        return send(res, failure.status, errorBody(failure.status, `fake ${failure.status}`), failure.headers);

      const messages = body['messages'] as { role: string; content: string }[];
      const user = [...messages].reverse().find((m) => m.role === 'user')!.content;
      const system = typeof body['system'] === 'string' ? body['system'] : '';
      const result = await handler({ system, user });
      const input = tokensOf(system + messages.map((m) => m.content).join('\n'));
      const choice = body['tool_choice'] as { type?: string; name?: string } | undefined;
      const base = { id: `msg_fake_${fake.requests.length}`, type: 'message', role: 'assistant', model };
      if (choice?.type === 'tool' && typeof result === 'object' && result !== null) {
        const text = JSON.stringify(result);
        return send(res, 200, {
          ...base,
          content: [{ type: 'tool_use', id: `toolu_fake_${fake.requests.length}`, name: choice.name, input: result }],
          stop_reason: 'tool_use',
          stop_sequence: null,
          usage: { input_tokens: input, output_tokens: tokensOf(text) },
        });
      }
      let text = typeof result === 'string' ? result : JSON.stringify(result);
      // A prefilled assistant turn is continued, not repeated.
      const last = messages[messages.length - 1]!;
      if (last.role === 'assistant' && text.startsWith(last.content)) text = text.slice(last.content.length);
      return send(res, 200, {
        ...base,
        content: [{ type: 'text', text }],
        stop_reason: 'end_turn',
        stop_sequence: null,
        usage: { input_tokens: input, output_tokens: tokensOf(text) },
      });
    } catch (err) {
      if (err instanceof Rejection) return send(res, err.status, errorBody(err.status, err.message));
      return send(res, 500, errorBody(500, `fake handler failed: ${String(err)}`));
    }
  }

  const server = createServer((req, res) => {
    void handle(req, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    });
  return fake;
}

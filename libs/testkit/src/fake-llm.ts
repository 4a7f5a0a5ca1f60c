/**
 * Fake LLM providers speaking the real wire formats, for component tests:
 * - `openai`: OpenAI-compatible chat completions (DeepSeek, xAI Grok, OpenAI): `POST …/chat/completions`,
 *   `GET …/models`, `Authorization: Bearer <key>`.
 * - `yandexgpt`: Yandex Foundation Models `POST /foundationModels/v1/completion` (messages with `text`, answer
 *   wrapped in `result`, token counts as strings) and `POST /foundationModels/v1/tokenize`.
 * - `ollama`: `POST /api/chat` (`stream:false`) and `GET /api/tags`.
 *
 * It checks what it receives the way the real API would reject it (auth header, model / modelUri and folder id,
 * the JSON-mode fields, the messages) and answers errors in the provider's own error shape, so a client bug
 * fails a test. It records every generation request. Left out: streaming, tools, images, embeddings, real
 * tokenization (counts are ~chars/4), quotas.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type FakeLlmWire = 'openai' | 'yandexgpt' | 'ollama';

export type FakeLlmRequest = {
  path: string;
  headers: Record<string, string>;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- whatever the client sent
  /** The system message's text. */
  system: string;
  /** The last user message's text (on a repair attempt: the repair instruction). */
  user: string;
  /** Every message as {role, content}, whatever the wire calls the text field. */
  messages: { role: string; content: string }[];
  /** The token counts the fake reported with its answer (unset when it failed the request). */
  usage?: { inputTokens: number; outputTokens: number };
};

export type FakeLlmFailure = { status: number; body?: unknown; headers?: Record<string, string> };

export type FakeLlm = {
  url: string;
  wire: FakeLlmWire;
  /** The key the fake expects (configure the client with it); undefined for Ollama without auth. */
  apiKey: string | undefined;
  model: string;
  folderId: string;
  /** Generation requests received, in order (including failed ones; health probes are in `healthRequests`). */
  requests: FakeLlmRequest[];
  healthRequests: { path: string; headers: Record<string, string> }[];
  /** Sets the answer: an object is sent as JSON content, a string as the raw content (fences, <think>, junk). */
  reply(handler: (req: { system: string; user: string }) => unknown | Promise<unknown>): void;
  /** The next `count` generation requests fail with this status (and body/headers; string body = raw text). */
  failNext(count: number, failure: FailureSpec): void;
  /** Delay before answering a generation request (to trigger client timeouts). */
  delayMs: number;
  /** Models Ollama's /api/tags lists (default: the configured model). */
  pulledModels: string[];
  close(): Promise<void>;
};
type FailureSpec = FakeLlmFailure;

const DEFAULT_MODEL: Record<FakeLlmWire, string> = {
  openai: 'fake-model',
  yandexgpt: 'yandexgpt-lite',
  ollama: 'qwen3:0.6b',
};

/** Reads the data block the LLM client wraps untrusted content in (`<untrusted_data_NONCE>…`), parsed as JSON when possible. */
export function userDataOf(user: string): unknown {
  const m = /<(untrusted_data_[0-9a-f]+)>\n?([\s\S]*?)\n?<\/\1>/.exec(user);
  if (!m) return undefined;
  try {
    return JSON.parse(m[2]!) as unknown;
  } catch {
    return m[2];
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

function errorBody(wire: FakeLlmWire, status: number, message: string): unknown {
  if (wire === 'yandexgpt') {
    return {
      error: { grpcCode: status === 401 ? 16 : 3, httpCode: status, message, httpStatus: 'Error', details: [] },
    };
  }
  if (wire === 'ollama') return { error: message };
  return { error: { message, type: 'invalid_request_error', param: null, code: null } };
}

class Rejection extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function startFakeLlm(
  opts: { wire?: FakeLlmWire; apiKey?: string; folderId?: string; model?: string } = {},
): Promise<FakeLlm> {
  const wire = opts.wire ?? 'openai';
  const apiKey = opts.apiKey ?? (wire === 'ollama' ? undefined : 'fake-llm-key');
  const model = opts.model ?? DEFAULT_MODEL[wire];
  const folderId = opts.folderId ?? 'b1gfakefolder0000000';
  let handler: (req: { system: string; user: string }) => unknown | Promise<unknown> = () => ({
    is_enough: true,
    response: 'Ответ фейковой модели',
  });
  const failures: FailureSpec[] = [];
  const sockets = new Set<Socket>();

  const fake: FakeLlm = {
    url: '',
    wire,
    apiKey,
    model,
    folderId,
    requests: [],
    healthRequests: [],
    reply(h) {
      handler = h;
    },
    failNext(count, failure) {
      for (let i = 0; i < count; i += 1) failures.push(failure);
    },
    delayMs: 0,
    pulledModels: [model],
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(typeof body === 'string' ? body : JSON.stringify(body));
  };

  function checkAuth(headers: Record<string, string>): void {
    if (apiKey === undefined) return;
    const auth = headers['authorization'] ?? '';
    if (wire === 'yandexgpt') {
      // The folder header is optional with API keys, but when sent it must match (the real API answers 400).
      const folderHeader = headers['x-folder-id'];
      if (folderHeader !== undefined && folderHeader !== folderId) {
        throw new Rejection(
          400,
          `Specified folder ID '${folderHeader}' does not match with service account folder ID '${folderId}'`,
        );
      }
      if (auth === `Api-Key ${apiKey}`) return;
      if (auth === `Bearer ${apiKey}`) {
        // IAM tokens of user accounts need the folder header; it must match the modelUri's folder.
        if (headers['x-folder-id'] !== folderId) throw new Rejection(400, `x-folder-id must be '${folderId}'`);
        return;
      }
      throw new Rejection(401, 'Unknown api key');
    }
    if (auth !== `Bearer ${apiKey}`) throw new Rejection(401, 'Incorrect API key provided');
  }

  /** Validates a generation request and returns its messages as {role, content}. */
  function checkGeneration(body: Record<string, unknown>): { role: string; content: string }[] {
    const rawMessages = body['messages'];
    if (!Array.isArray(rawMessages) || rawMessages.length < 2)
      throw new Rejection(400, 'messages must hold a system and a user message');
    const textField = wire === 'yandexgpt' ? 'text' : 'content';
    const messages = rawMessages.map((m: Record<string, unknown>) => {
      if (!['system', 'user', 'assistant'].includes(String(m['role'])))
        throw new Rejection(400, `bad role ${String(m['role'])}`);
      if (typeof m[textField] !== 'string') throw new Rejection(400, `each message needs a string '${textField}'`);
      return { role: String(m['role']), content: m[textField] as string };
    });
    if (messages[0]!.role !== 'system') throw new Rejection(400, 'the first message must be the system prompt');
    const last = messages[messages.length - 1]!;
    if (last.role !== 'user' || !last.content.trim())
      throw new Rejection(400, 'the last message must be a non-empty user message');

    if (wire === 'openai') {
      if (body['model'] !== model) throw new Rejection(404, `The model '${String(body['model'])}' does not exist`);
      if (body['stream'] === true) throw new Rejection(400, 'this fake does not stream');
      const format = body['response_format'] as
        { type?: string; json_schema?: { schema?: unknown; name?: unknown } } | undefined;
      if (format?.type === 'json_object') {
        // DeepSeek's documented rule for JSON mode.
        if (!messages.some((m) => /json/i.test(m.content)))
          throw new Rejection(400, "Prompt must contain the word 'json' in json_object mode");
      } else if (format?.type === 'json_schema') {
        if (typeof format.json_schema?.name !== 'string' || typeof format.json_schema.schema !== 'object')
          throw new Rejection(400, 'response_format.json_schema needs name and schema');
      } else throw new Rejection(400, 'expected response_format json_object or json_schema');
    } else if (wire === 'yandexgpt') {
      const expected = `gpt://${folderId}/${model}/latest`;
      if (body['modelUri'] !== expected) throw new Rejection(400, `invalid model_uri: expected ${expected}`);
      const options = body['completionOptions'] as { stream?: unknown } | undefined;
      if (!options || options.stream !== false) throw new Rejection(400, 'completionOptions.stream must be false');
      const schema = (body['jsonSchema'] as { schema?: unknown } | undefined)?.schema;
      if (body['jsonObject'] !== true && typeof schema !== 'object')
        throw new Rejection(400, 'expected jsonObject: true or jsonSchema.schema');
    } else {
      if (!fake.pulledModels.includes(String(body['model'])))
        throw new Rejection(404, `model "${String(body['model'])}" not found, try pulling it first`);
      if (body['stream'] !== false) throw new Rejection(400, 'stream must be false (the fake does not stream)');
      if (body['format'] !== 'json' && typeof body['format'] !== 'object')
        throw new Rejection(400, 'format must be "json" or a JSON schema');
      if (body['think'] !== false) throw new Rejection(400, 'think must be false');
    }
    return messages;
  }

  function answer(content: string, messages: { content: string }[], record: FakeLlmRequest): unknown {
    const input = tokensOf(messages.map((m) => m.content).join('\n'));
    const output = tokensOf(content);
    record.usage = { inputTokens: input, outputTokens: output };
    if (wire === 'yandexgpt') {
      return {
        result: {
          alternatives: [{ message: { role: 'assistant', text: content }, status: 'ALTERNATIVE_STATUS_FINAL' }],
          usage: {
            inputTextTokens: String(input),
            completionTokens: String(output),
            totalTokens: String(input + output),
          },
          modelVersion: '23.10.2025',
        },
      };
    }
    if (wire === 'ollama') {
      return {
        model,
        created_at: new Date().toISOString(),
        message: { role: 'assistant', content },
        done: true,
        done_reason: 'stop',
        total_duration: 1_000_000,
        prompt_eval_count: input,
        eval_count: output,
      };
    }
    return {
      id: `chatcmpl-fake-${fake.requests.length}`,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
      usage: { prompt_tokens: input, completion_tokens: output, total_tokens: input + output },
    };
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://fake').pathname;
    const headers = Object.fromEntries(
      Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]),
    );
    const raw = await readBody(req);
    const isHealth =
      (wire === 'openai' && req.method === 'GET' && path.endsWith('/models')) ||
      (wire === 'yandexgpt' && req.method === 'POST' && path === '/foundationModels/v1/tokenize') ||
      (wire === 'ollama' && req.method === 'GET' && path === '/api/tags');
    const isGeneration =
      req.method === 'POST' &&
      ((wire === 'openai' && path.endsWith('/chat/completions')) ||
        (wire === 'yandexgpt' && path === '/foundationModels/v1/completion') ||
        (wire === 'ollama' && path === '/api/chat'));

    try {
      if (isHealth) {
        fake.healthRequests.push({ path, headers });
        checkAuth(headers);
        if (wire === 'openai')
          return send(res, 200, { object: 'list', data: [{ id: model, object: 'model', owned_by: 'fake' }] });
        if (wire === 'ollama') {
          return send(res, 200, {
            models: fake.pulledModels.map((name) => ({
              name,
              model: name,
              modified_at: new Date().toISOString(),
              size: 1,
            })),
          });
        }
        const body = JSON.parse(raw || '{}') as { modelUri?: unknown; text?: unknown };
        const expected = `gpt://${folderId}/${model}/latest`;
        if (body.modelUri !== expected) throw new Rejection(400, `invalid model_uri: expected ${expected}`);
        return send(res, 200, {
          tokens: [{ id: '1', text: String(body.text ?? ''), special: false }],
          modelVersion: '23.10.2025',
        });
      }
      if (!isGeneration) throw new Rejection(404, `no route ${req.method} ${path}`);

      let body: Record<string, unknown>;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        throw new Rejection(400, 'request body is not JSON');
      }
      const record: FakeLlmRequest = { path, headers, body, system: '', user: '', messages: [] };
      fake.requests.push(record);
      const messages = (() => {
        checkAuth(headers);
        return checkGeneration(body);
      })();
      record.messages = messages;
      record.system = messages[0]!.content;
      record.user = [...messages].reverse().find((m) => m.role === 'user')!.content;

      if (fake.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, fake.delayMs));
      const failure = failures.shift();
      if (failure) {
        return send(
          res,
          failure.status,
          failure.body ?? errorBody(wire, failure.status, `fake failure ${failure.status}`),
          failure.headers,
        );
      }
      const result = await handler({ system: record.system, user: record.user });
      // undefined (a handler with nothing to say) becomes an empty answer, as a model may give.
      const content = typeof result === 'string' ? result : (JSON.stringify(result) ?? '');
      return send(res, 200, answer(content, messages, record));
    } catch (err) {
      if (err instanceof Rejection) return send(res, err.status, errorBody(wire, err.status, err.message));
      return send(res, 500, errorBody(wire, 500, `fake handler failed: ${String(err)}`));
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
  return fake;
}

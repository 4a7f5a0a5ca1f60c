// The provider bodies built from kept JSON escapes (provider-body.ts) are the JSON text JSON.stringify writes for
// the same body object, whatever the content holds; the caches compute once and stay bounded.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createMetrics, parseEnv } from '@workemon/service-kit';
import { createLlmClient, llmEnvSchema, llmSettingsFromEnv, sha256Hex } from '@workemon/llm';
import { memoizeBounded } from '../src/memoize-bounded.js';
import { KEPT_ESCAPES, contentJson, createFieldsCache, jsonFields, messagesJson } from '../src/provider-body.js';
import { KEPT_PERSONA_HASHES, personaSha256 } from '../src/prompt-version.js';
import type { ChatMessage, GenerateRequest } from '../src/provider-wire.js';

// Quotes, backslashes, control characters, Cyrillic, an emoji, lone surrogates and U+2028: everything JSON escapes
// or must not mangle.
const AWKWARD = 'Он сказал "да" \\ C:\\path\n\ttab \u0001\u001f 😀 lone \ud800 and \udc00 \u2028 end';
const LONG_PROMPT = `Ты — системный аналитик. ${AWKWARD} `.repeat(40);

function systemMessage(parts: string[]): ChatMessage {
  return { role: 'system', content: parts.join(''), parts };
}

describe('provider bodies from kept escapes', () => {
  it('writes a message with parts exactly as JSON.stringify writes its content', () => {
    const parts = [LONG_PROMPT, `\n\nnotice ${AWKWARD}\n\n`, `Формат ответа: ${'{"type":"object"}'.repeat(30)}`];
    const message = systemMessage(parts);
    expect(contentJson(message)).toBe(JSON.stringify(message.content));
    // Kept escapes answer the second time with the same text.
    expect(contentJson(message)).toBe(JSON.stringify(message.content));
  });

  it('keeps a surrogate pair split between two parts: the JSON decodes to the same string', () => {
    const message = systemMessage([`${LONG_PROMPT}\ud83d`, '\ude00 tail']);
    expect(JSON.parse(contentJson(message))).toBe(message.content);
    expect(message.content).toContain('😀 tail');
  });

  it('writes the messages array as JSON.stringify does, with the content key a wire names', () => {
    const messages: ChatMessage[] = [
      systemMessage([LONG_PROMPT, '\n\nshort notice\n\n', 'format']),
      { role: 'user', content: `data ${AWKWARD}` },
      { role: 'assistant', content: '' },
    ];
    const plain = messages.map(({ role, content }) => ({ role, content }));
    expect(messagesJson(messages)).toBe(JSON.stringify(plain));
    expect(messagesJson(messages, 'text')).toBe(
      JSON.stringify(plain.map(({ role, content }) => ({ role, text: content }))),
    );
    expect(messagesJson([])).toBe('[]');
  });

  it('serialises a wire’s constant fields once per schema and variant', () => {
    let builds = 0;
    const fieldsOf = createFieldsCache((req) => {
      builds += 1;
      return { temperature: req.temperature, format: req.jsonSchema, name: req.schemaName };
    });
    const schema = { type: 'object', properties: { a: { type: 'string' } } };
    const request = (over: Partial<GenerateRequest> = {}): GenerateRequest => ({
      messages: [],
      jsonSchema: schema,
      schemaName: 'answer',
      timeoutMs: 1000,
      maxOutputTokens: 100,
      temperature: 0.2,
      ...over,
    });
    const text = fieldsOf(request());
    expect(text).toBe(jsonFields({ temperature: 0.2, format: schema, name: 'answer' }));
    expect(`{${text}}`).toBe(JSON.stringify({ temperature: 0.2, format: schema, name: 'answer' }));
    expect(fieldsOf(request())).toBe(text);
    expect(builds).toBe(1);
    expect(fieldsOf(request({ temperature: 0.7 }))).toContain('"temperature":0.7');
    expect(fieldsOf(request({ jsonSchema: { type: 'string' } }))).toContain('"format":{"type":"string"}');
    expect(builds).toBe(3);
    expect(jsonFields({})).toBe('');
  });
});

describe('bounded memos', () => {
  it('computes once per key and forgets the key computed longest ago beyond the limit', () => {
    const computed: string[] = [];
    const memo = memoizeBounded(2, (key) => {
      computed.push(key);
      return key.toUpperCase();
    });
    expect([memo('a'), memo('b'), memo('a')]).toEqual(['A', 'B', 'A']);
    expect(computed).toEqual(['a', 'b']);
    memo('c'); // 'a' goes
    memo('b');
    memo('a');
    expect(computed).toEqual(['a', 'b', 'c', 'a']);
    expect(KEPT_ESCAPES).toBeGreaterThan(0);
  });

  it('hashes a persona as sha256Hex does, also past the kept ones', () => {
    expect(personaSha256('Отдел платежей')).toBe(sha256Hex('Отдел платежей'));
    for (let i = 0; i <= KEPT_PERSONA_HASHES; i += 1) personaSha256(`persona ${i}`);
    expect(personaSha256('Отдел платежей')).toBe(sha256Hex('Отдел платежей'));
    expect(personaSha256('persona 7')).toBe(sha256Hex('persona 7'));
  });
});

// What an OpenAI-compatible server receives: the raw body text, byte for byte.
type Received = { body: string };
const servers: { close: () => void }[] = [];
afterEach(() => {
  while (servers.length) servers.pop()!.close();
});

async function rawBodyServer(received: Received[]): Promise<string> {
  const server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ body: Buffer.concat(chunks).toString('utf8') });
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          choices: [{ message: { content: '{"is_enough":true,"response":"ok"}' }, finish_reason: 'stop' }],
          usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ close: () => server.close() });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
}

describe('the OpenAI wire’s body', () => {
  it('is the JSON of the documented body object, key for key and in order, on every call', async () => {
    const received: Received[] = [];
    const url = await rawBodyServer(received);
    const settings = llmSettingsFromEnv(
      parseEnv(z.object(llmEnvSchema), {
        LLM_PROVIDER: 'openai',
        LLM_BASE_URL: url,
        LLM_API_KEY: 'k',
        LLM_MODEL: 'model-"x"',
        LLM_MAX_RETRIES: '0',
      }),
    );
    const client = createLlmClient(settings, { metrics: createMetrics('t') });
    const schema = z.object({ is_enough: z.boolean(), response: z.string() });
    for (const text of ['первый', `второй ${AWKWARD}`]) {
      await client.complete({ system: LONG_PROMPT, userContent: text, schema, schemaName: 'answer' });
    }
    expect(received).toHaveLength(2);
    for (const { body } of received) {
      const parsed = JSON.parse(body) as Record<string, unknown>;
      expect(Object.keys(parsed)).toEqual([
        'model',
        'messages',
        'stream',
        'temperature',
        'response_format',
        'max_tokens',
      ]);
      // Re-serialising the parsed object gives the same text: nothing but JSON.stringify's own output was sent.
      expect(body).toBe(JSON.stringify(parsed));
      const [system, user] = parsed['messages'] as { role: string; content: string }[];
      expect(system!.content.startsWith(LONG_PROMPT.trim())).toBe(true);
      expect(system!.content).toMatch(/untrusted_data_[0-9a-f]{12}/);
      expect(user!.role).toBe('user');
      expect(parsed['model']).toBe('model-"x"');
      expect(parsed['response_format']).toMatchObject({ type: 'json_schema', json_schema: { name: 'answer' } });
    }
    // A fresh nonce per call: the two system messages differ only there.
    const systems = received.map(
      (r) => (JSON.parse(r.body) as { messages: { content: string }[] }).messages[0]!.content,
    );
    expect(systems[0]).not.toBe(systems[1]);
    expect(systems[0]!.replace(/untrusted_data_[0-9a-f]{12}/g, 'N')).toBe(
      systems[1]!.replace(/untrusted_data_[0-9a-f]{12}/g, 'N'),
    );
  });
});

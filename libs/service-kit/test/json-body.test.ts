// The service app's JSON body reader (json-body.ts) keeps body-parser's outcomes for every kind of body, and its
// lean res.json (json-response.ts) writes the headers Express's own would.
import http from 'node:http';
import { deflateSync, gzipSync } from 'node:zlib';
import express from 'express';
import request from 'supertest';
import Transport from 'winston-transport';
import { afterEach, describe, expect, it } from 'vitest';
import { listen, waitFor, type Listening } from '@workemon/testkit';
import { createLogger, createMetrics, createServiceApp, getRequestId } from '@workemon/service-kit';
import { parseJsonBody } from '../src/json-body.js';

class MemoryTransport extends Transport {
  lines: Record<string, unknown>[] = [];
  override log(info: Record<string, unknown>, next: () => void): void {
    this.lines.push(JSON.parse(JSON.stringify(info)) as Record<string, unknown>);
    next();
  }
}

const LIMIT = '1kb';

const PAYLOAD = { text: 'ответ '.repeat(300), n: 1, nested: { ok: true } };

function buildApp() {
  const sink = new MemoryTransport();
  const logger = createLogger({ service: 'body-test', stdout: sink, level: 'debug' });
  const metrics = createMetrics('body-test');
  const app = createServiceApp({ service: 'body-test', version: '0.0.0', logger, metrics, bodyLimit: LIMIT }, (a) => {
    a.post('/echo', (req, res) => res.json({ body: req.body === undefined ? '(none)' : (req.body as unknown) }));
    // A route reading a body type the JSON reader leaves alone, as the communicator's webhooks do.
    a.get('/answer', (_req, res) => res.status(201).json(PAYLOAD));
    a.post('/request-id', (req, res) => res.json({ requestId: getRequestId() ?? null, body: req.body as unknown }));
    a.post('/raw', express.raw({ type: 'text/plain' }), (req, res) => res.json({ bytes: (req.body as Buffer).length }));
  });
  return { app, sink, metrics };
}

const opened: Listening[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((l) => l.close()));
});

async function serve(app: express.Express): Promise<Listening> {
  const listening = await listen(app);
  opened.push(listening);
  return listening;
}

/** A POST whose body is written in `chunks` (no Content-Length unless given: chunked transfer coding). */
function rawPost(
  url: string,
  headers: Record<string, string>,
  chunks: Buffer[],
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/echo`, { method: 'POST', headers }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode!, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }),
      );
    });
    req.on('error', reject);
    for (const chunk of chunks) req.write(chunk);
    req.end();
  });
}

describe('JSON request bodies', () => {
  it("keeps the request's id in async context for the handler of a JSON body, read on either path", async () => {
    const { app } = buildApp();
    const { url } = await serve(app);
    for (const type of ['application/json', 'application/vnd.api+json']) {
      const res = await request(app)
        .post('/request-id')
        .set('Content-Type', type)
        .set('X-Request-Id', 'req-b1')
        .send('{"a":1}');
      expect(res.body, type).toEqual({ requestId: 'req-b1', body: { a: 1 } });
    }
    // A body that arrives in pieces, after the handler chain has started waiting for it.
    const streamed = await new Promise<unknown>((resolve, reject) => {
      const req = http.request(
        `${url}/request-id`,
        {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-request-id': 'req-b2' },
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve(JSON.parse(Buffer.concat(parts).toString('utf8'))));
        },
      );
      req.on('error', reject);
      req.write('{"a":');
      setTimeout(() => req.end('2}'), 30);
    });
    expect(streamed).toEqual({ requestId: 'req-b2', body: { a: 2 } });
  });

  it('parses application/json with and without a UTF-8 charset, a BOM, and +json types', async () => {
    const { app } = buildApp();
    for (const type of ['application/json', 'application/json; charset=utf-8', 'Application/JSON; Charset="UTF-8"']) {
      const res = await request(app).post('/echo').set('Content-Type', type).send('{"a":"б"}');
      expect(res.status, type).toBe(200);
      expect(res.body, type).toEqual({ body: { a: 'б' } });
    }
    const vendor = await request(app).post('/echo').set('Content-Type', 'application/vnd.api+json').send('[1,2]');
    expect(vendor.body).toEqual({ body: [1, 2] });
    const { url } = await serve(app);
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a":1}')]);
    expect(await rawPost(url, { 'content-type': 'application/json' }, [bom])).toEqual({
      status: 200,
      body: { body: { a: 1 } },
    });
    const utf16 = Buffer.from('{"a":"ю"}', 'utf16le');
    expect(await rawPost(url, { 'content-type': 'application/json; charset=utf-16le' }, [utf16])).toEqual({
      status: 200,
      body: { body: { a: 'ю' } },
    });
  });

  it('answers 413 payload_too_large for a declared Content-Length over the limit and for a chunked body past it', async () => {
    const { app, sink } = buildApp();
    const declared = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ text: 'x'.repeat(2000) }));
    expect(declared.status).toBe(413);
    expect(declared.body).toEqual({
      error: 'Payload Too Large',
      message: 'Request body exceeds the limit of 1024 bytes',
      statusCode: 413,
    });
    expect(declared.headers['x-workemon-error-code']).toBe('payload_too_large');
    const { url } = await serve(app);
    const piece = Buffer.from(`"${'y'.repeat(300)}",`);
    const streamed = await rawPost(url, { 'content-type': 'application/json', 'x-request-id': 'req-413' }, [
      Buffer.from('['),
      piece,
      piece,
      piece,
      piece,
      Buffer.from('"z"]'),
    ]);
    expect(streamed).toEqual({
      status: 413,
      body: { error: 'Payload Too Large', message: 'Request body exceeds the limit of 1024 bytes', statusCode: 413 },
    });
    // The rejection's log line keeps the request's id, though it is written once the rest of the body was read.
    const rejected = sink.lines.filter(
      (l) => l['message'] === 'rejected: Request body exceeds the limit of 1024 bytes',
    );
    expect(rejected.map((l) => l['trace'])).toContainEqual({ id: 'req-413' });
    // Under the limit, the same chunked transfer is read whole.
    expect(
      await rawPost(url, { 'content-type': 'application/json' }, [Buffer.from('['), piece, Buffer.from('"z"]')]),
    ).toEqual({ status: 200, body: { body: ['y'.repeat(300), 'z'] } });
  });

  it('answers 400 invalid_json for broken JSON, a bare scalar and whitespace only; an empty body is {}', async () => {
    const { app } = buildApp();
    for (const text of ['{"a":', '"just a string"', '123', 'true', '  \n ', 'null']) {
      const res = await request(app).post('/echo').set('Content-Type', 'application/json').send(text);
      expect(res.status, text).toBe(400);
      // A well-formed scalar is JSON, just not an object: told so, not called invalid.
      const scalar = !['{"a":', '  \n '].includes(text);
      expect(res.body, text).toEqual({
        error: 'Bad Request',
        message: scalar ? 'Request body must be a JSON object' : 'Request body is not valid JSON',
        statusCode: 400,
      });
      expect(res.headers['x-workemon-error-code'], text).toBe('invalid_json');
    }
    const spaced = await request(app).post('/echo').set('Content-Type', 'application/json').send(' \t{"a":1}');
    expect(spaced.body).toEqual({ body: { a: 1 } });
    const empty = await request(app).post('/echo').set('Content-Type', 'application/json').set('Content-Length', '0');
    expect(empty.status).toBe(200);
    expect(empty.body).toEqual({ body: {} });
  });

  it('answers 415 for a charset JSON may not use and for an unknown Content-Encoding', async () => {
    const { app } = buildApp();
    const latin = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/json; charset=latin1')
      .send('{"a":"e"}');
    expect(latin.status).toBe(415);
    expect(latin.body).toEqual({
      error: 'Unsupported Media Type',
      message: 'Unsupported request encoding',
      statusCode: 415,
    });
    const coded = await request(app)
      .post('/echo')
      .set('Content-Type', 'application/json')
      .set('Content-Encoding', 'compress')
      .send('{"a":1}');
    expect(coded.status).toBe(415);
    expect(coded.headers['x-workemon-error-code']).toBe('unsupported_media_type');
  });

  it('inflates gzip and deflate bodies, as body-parser does', async () => {
    const { url } = await serve(buildApp().app);
    const text = JSON.stringify({ a: 'сжато' });
    for (const [coding, bytes] of [
      ['gzip', gzipSync(text)],
      ['deflate', deflateSync(text)],
    ] as const) {
      const res = await rawPost(url, { 'content-type': 'application/json', 'content-encoding': coding }, [bytes]);
      expect(res, coding).toEqual({ status: 200, body: { body: { a: 'сжато' } } });
    }
  });

  it('answers 400 for a body that is not what its Content-Encoding says, never a 500', async () => {
    const { url } = await serve(buildApp().app);
    for (const coding of ['gzip', 'deflate', 'br']) {
      const res = await rawPost(url, { 'content-type': 'application/json', 'content-encoding': coding }, [
        Buffer.from('{"a":1} is not compressed'),
      ]);
      expect(res, coding).toEqual({
        status: 400,
        body: {
          error: 'Bad Request',
          message:
            'Request body could not be decompressed: it is not valid for its Content-Encoding (send it uncompressed, or valid gzip, deflate or br)',
          statusCode: 400,
        },
      });
    }
  });

  it('leaves other content types unread, for the route that reads them', async () => {
    const { app } = buildApp();
    const plain = await request(app).post('/echo').set('Content-Type', 'text/plain').send('{"a":1}');
    expect(plain.body).toEqual({ body: '(none)' });
    const raw = await request(app).post('/raw').set('Content-Type', 'text/plain').send('hello');
    expect(raw.body).toEqual({ bytes: 5 });
    const none = await request(app).post('/echo');
    expect(none.body).toEqual({ body: '(none)' });
  });

  it('logs a body cut off by the client as request_aborted and leaves nothing in flight', async () => {
    const { app, sink, metrics } = buildApp();
    const { url } = await serve(app);
    await new Promise<void>((resolve) => {
      const req = http.request(`${url}/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': '500' },
      });
      req.on('error', () => resolve());
      req.write('{"a":"only the start');
      setTimeout(() => req.destroy(), 100);
    });
    const line = await waitFor(() => sink.lines.find((l) => l['message'] === 'rejected: Request aborted'), {
      what: 'the aborted request logged',
    });
    expect(line['error']).toEqual({ code: 'request_aborted' });
    await waitFor(async () => (await metrics.httpRequestsInFlight.get()).values[0]?.value === 0, {
      what: 'in-flight back to 0',
    });
  });
});

describe('parseJsonBody', () => {
  it('keeps body-parser strict rules', () => {
    expect(parseJsonBody('')).toEqual({});
    expect(parseJsonBody('\uFEFF')).toEqual({});
    expect(parseJsonBody('\r\n[1]')).toEqual([1]);
    expect(() => parseJsonBody('1')).toThrow('Request body must be a JSON object');
    expect(() => parseJsonBody(' nul')).toThrow('Request body is not valid JSON');
    expect(() => parseJsonBody('{')).toThrow('Request body is not valid JSON');
  });
});

describe('JSON answers', () => {
  it("writes the same status, headers and bytes as Express's own res.json", async () => {
    const { app } = buildApp();
    const plain = express();
    plain.set('etag', false);
    plain.get('/answer', (_req, res) => res.status(201).json(PAYLOAD));
    const ours = await request(app).get('/answer');
    const theirs = await request(plain).get('/answer');
    expect(ours.status).toBe(201);
    expect(ours.text).toBe(theirs.text);
    expect(ours.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(ours.headers['content-type']).toBe(theirs.headers['content-type']);
    expect(ours.headers['content-length']).toBe(theirs.headers['content-length']);
    expect(Number(ours.headers['content-length'])).toBe(Buffer.byteLength(ours.text));
    expect(ours.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(ours.headers['etag']).toBeUndefined();
    // What Express treats specially still goes through Express: HEAD has no body, a conditional GET may be a 304.
    const head = await request(app).head('/answer');
    expect(head.headers['content-length']).toBe(theirs.headers['content-length']);
    expect(head.text).toBeUndefined();
    const conditional = await request(app).get('/answer').set('If-None-Match', '*');
    const conditionalPlain = await request(plain).get('/answer').set('If-None-Match', '*');
    expect(conditional.status).toBe(conditionalPlain.status);
  });
});

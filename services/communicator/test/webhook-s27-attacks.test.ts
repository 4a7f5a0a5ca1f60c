// An unauthenticated attacker against the webhook routes, which must be reachable from the Internet for the
// providers to post (issue s27): large bodies held in memory. The real communicator app on a real socket, a fake
// secretary and a real SMTP listener; requests written byte by byte on raw connections, as an attacker would.
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '@workemon/testkit';
import { smtpSinkEnv, startSmtpSink } from '@workemon/testkit/smtp-sink';
import { startFakeSecretary } from './fake-secretary.js';
import { startCommunicator, type Running } from './harness.js';

const MAILGUN_KEY = 'key-mailgun-test-signing-0123456789';
const SENDGRID_SECRET = 'sendgrid-parse-secret-0123456789abcdef';
const MAX_BYTES = 100_000;

const open: Array<{ close?: () => Promise<void>; stop?: () => Promise<void> }> = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const item of open.splice(0).reverse()) await (item.stop ?? item.close)!();
});

async function setup(): Promise<Running> {
  const sink = await startSmtpSink();
  const secretary = await startFakeSecretary();
  open.push(sink, secretary);
  const communicator = await startCommunicator({
    secretaryUrl: secretary.url,
    env: {
      ...smtpSinkEnv(sink),
      MAILGUN_WEBHOOK_SIGNING_KEY: MAILGUN_KEY,
      SENDGRID_WEBHOOK_SECRET: SENDGRID_SECRET,
      WEBHOOK_MAX_BYTES: String(MAX_BYTES),
    },
  });
  open.push(communicator);
  return communicator;
}

/** A raw connection that sent a request's head (declaring `length` bytes of body) and `sent` of those bytes. */
function startPost(url: string, path: string, length: number, sent: number, headers: string[] = []) {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  sockets.push(socket);
  const answer = { text: '' };
  socket.on('data', (c: Buffer) => (answer.text += c.toString('utf8')));
  socket.on('error', () => undefined);
  socket.write(
    [
      `POST ${path} HTTP/1.1`,
      `Host: ${hostname}:${port}`,
      'Content-Type: multipart/form-data; boundary=xyz',
      `Content-Length: ${length}`,
      ...headers,
      '',
      '',
    ].join('\r\n') + 'a'.repeat(sent),
  );
  return { socket, answer, finish: () => socket.write('a'.repeat(length - sent)) };
}

const statusOf = (text: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]);

describe('webhook bodies an attacker sends (s27)', () => {
  it('SendGrid: no or a wrong secret is 401 before the body is read', async () => {
    const c = await setup();
    for (const path of ['/webhook/sendgrid', '/webhook/sendgrid?key=wrong-secret-0123456789']) {
      // The head and 10 bytes of a body declared 90 KB long: the answer must not wait for the rest.
      const post = startPost(c.http.url, path, 90_000, 10);
      await waitFor(() => post.answer.text.includes('\r\n\r\n'), {
        what: `an answer to ${path} before the body`,
        timeoutMs: 5000,
      });
      expect(statusOf(post.answer.text)).toBe(401);
      expect(post.answer.text).toContain('"statusCode":401');
    }
  });

  it('a flood of large bodies past a budget of 4 × WEBHOOK_MAX_BYTES in flight is 503 + Retry-After at once', async () => {
    const c = await setup();
    // Four posts of the largest size, their bodies held open: the budget is spent.
    const held = Array.from({ length: 4 }, () => startPost(c.http.url, '/webhook/mailgun', MAX_BYTES, 1000));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const refused = startPost(c.http.url, '/webhook/mailgun', MAX_BYTES, 10);
    await waitFor(() => refused.answer.text.includes('\r\n\r\n'), { what: 'the fifth post answered', timeoutMs: 5000 });
    expect(statusOf(refused.answer.text)).toBe(503);
    expect(refused.answer.text).toMatch(/\r\nRetry-After: \d+\r\n/i);
    expect(refused.answer.text).toContain('"statusCode":503');
    expect(held.every((p) => p.answer.text === '')).toBe(true);
    // The held posts end (not a form, unsigned: 400) and give their budget back: the next post is judged again.
    for (const p of held) p.finish();
    await waitFor(() => held.every((p) => statusOf(p.answer.text) === 400), { what: 'the held posts refused' });
    const after = startPost(c.http.url, '/webhook/mailgun', MAX_BYTES, MAX_BYTES);
    await waitFor(() => after.answer.text.includes('\r\n\r\n'), { what: 'a later post answered' });
    expect(statusOf(after.answer.text)).toBe(400);
  });
});

import { describe, expect, it } from 'vitest';
import { runWithRequestId } from '@workemon/service-kit';
import { withRequestId } from '../src/request-context.js';

describe('withRequestId', () => {
  it('adds the current request id as x-request-id to a copy of the headers', () => {
    const headers = { accept: 'text/plain' };
    const sent = runWithRequestId('req-42', () => withRequestId(headers));
    expect(sent).toEqual({ accept: 'text/plain', 'x-request-id': 'req-42' });
    expect(headers).toEqual({ accept: 'text/plain' });
  });

  it("keeps the caller's own X-Request-Id, in any case, and adds nothing outside a request", () => {
    const own = { 'X-Request-Id': 'caller-1' };
    expect(runWithRequestId('req-42', () => withRequestId(own))).toEqual({ 'X-Request-Id': 'caller-1' });
    expect(withRequestId({ accept: 'a' })).toEqual({ accept: 'a' });
    expect(runWithRequestId('req-43', () => withRequestId())).toEqual({ 'x-request-id': 'req-43' });
  });
});

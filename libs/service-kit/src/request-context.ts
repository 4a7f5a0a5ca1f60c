import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

export const REQUEST_ID_HEADER = 'x-request-id';

type RequestContext = { requestId: string };

const storage = new AsyncLocalStorage<RequestContext>();

/** Runs `fn` with `requestId` as the current request id (for logs and outgoing calls). */
export function runWithRequestId<T>(requestId: string, fn: () => T): T {
  return storage.run({ requestId }, fn);
}

export function getRequestId(): string | undefined {
  return storage.getStore()?.requestId;
}

// A caller-supplied id is echoed into logs and headers: keep it short and printable.
const SAFE_REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

export function acceptOrCreateRequestId(incoming: unknown): string {
  return typeof incoming === 'string' && SAFE_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * An outgoing request's headers with the current request id added as `X-Request-Id` (lower-case name), unless
 * there is no current id or the caller set the header already (any case). Returns a new object when it adds the
 * id, `headers` itself otherwise. Used by every outgoing exchange (`exchange()`, `openHttpStream()`).
 */
export function withRequestId(headers: Record<string, string> = {}): Record<string, string> {
  const requestId = getRequestId();
  if (!requestId || Object.keys(headers).some((h) => h.toLowerCase() === REQUEST_ID_HEADER)) return headers;
  return { ...headers, [REQUEST_ID_HEADER]: requestId };
}

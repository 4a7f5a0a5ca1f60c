import { hash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Request, RequestHandler } from 'express';
import { ConfigError } from './config.js';
import { errors } from './errors.js';
import { takeDeferredBodyError } from './json-body.js';

/**
 * The three key classes (ARCHITECTURE.md, "Secure by default"): `client` keys (`API_KEYS`) call
 * `/analyze-request`; `admin` keys (`ADMIN_API_KEYS`) run the directory, rules, approvals and history;
 * `service` keys (`SERVICE_API_KEYS`) are what the services send each other.
 */
export type KeyClass = 'client' | 'admin' | 'service';
export const KEY_CLASSES: readonly KeyClass[] = ['client', 'admin', 'service'];

/** Who called: set as `res.locals.principal` by `auth.require(...)` on every request it lets through. */
export type Principal = {
  keyClass: KeyClass;
  /**
   * The key's name (`name:key` in the list), or `sha256:<first 8 hex digits of the key's SHA-256>` for an unnamed
   * key; `anonymous` when the class is open (no keys configured, loopback only).
   */
  name: string;
  /**
   * The key's identifier for scoping what it owns: `sha256:` and the first 16 hex digits (64 bits) of the key's
   * SHA-256 (`keyId`). It depends on the key alone, not on its name or its place in the list, so renaming or
   * reordering keys keeps what a key owns; not secret (a generated key cannot be found from it). Absent for
   * anonymous callers.
   */
  keyId?: string;
  /** True when no key was checked: the class is open (loopback, no keys). Such a caller vouches for nothing. */
  anonymous?: true;
};

/** One configured key: its name (never secret) and the key itself (secret). */
export type ApiKeyEntry = { name: string; key: string };
export type ApiKeys = Record<KeyClass, readonly ApiKeyEntry[]>;

/** The environment variable holding each class's keys (`<VAR>_FILE` names a file with more of them). */
export const KEY_CLASS_VARIABLES: Record<KeyClass, string> = {
  client: 'API_KEYS',
  admin: 'ADMIN_API_KEYS',
  service: 'SERVICE_API_KEYS',
};

const ANONYMOUS = 'anonymous';
// Names show up in logs and in approvals' `decided_by`: a plain, short identifier.
/**
 * A key copied from an example instead of generated: the placeholder of `.env.example` (`long-random-key`) or a
 * whole `<…>` left in place (`<your-key>`; a generated key may hold `<` or `>` inside, and is taken). Such a value
 * is known to every reader of the documentation, so it is never taken as a key.
 */
const PLACEHOLDER_KEY = /^(long-random-key|\.\.\.|…|<[^<>]*>)$/i;
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/;

// One-shot `crypto.hash` (Node ≥ 20.12): no Hash object per request, as `createHash().update().digest()` makes.
const digest = (value: string) => hash('sha256', value, 'buffer');

/** The non-secret name of an unnamed key: `sha256:` and the first 8 hex digits of its SHA-256 (a fingerprint). */
export function keyFingerprint(key: string): string {
  return `sha256:${digest(key).toString('hex').slice(0, 8)}`;
}

/**
 * The non-secret identifier of a key that owns data (`Principal.keyId`): `sha256:` and the first 16 hex digits of
 * its SHA-256 — 64 bits, so two configured keys do not share one by chance; never the key itself.
 */
export function keyId(key: string): string {
  return `sha256:${digest(key).toString('hex').slice(0, 16)}`;
}

/**
 * Parses one class's key list: entries separated by commas or whitespace (newlines in a file); in a file, lines
 * starting with `#` are comments. An entry is `key` or `name:key` (split at the first `:`; a key containing `:`
 * therefore needs a name). Problems name `variable` and the entry's position, never its value.
 */
export function parseApiKeyList(text: string, variable: string): { keys: ApiKeyEntry[]; problems: string[] } {
  const keys: ApiKeyEntry[] = [];
  const problems: string[] = [];
  const entries = text
    .split(/\r?\n/)
    .filter((line) => !line.trimStart().startsWith('#'))
    .flatMap((line) => line.split(/[\s,]+/))
    .filter(Boolean);
  entries.forEach((entry, i) => {
    const colon = entry.indexOf(':');
    const placeholder = `${variable}: entry ${i + 1} is a placeholder from the documentation, not a key: generate one with openssl rand -base64 32`;
    if (colon < 0) {
      if (PLACEHOLDER_KEY.test(entry)) problems.push(placeholder);
      else keys.push({ name: keyFingerprint(entry), key: entry });
      return;
    }
    const name = entry.slice(0, colon);
    const key = entry.slice(colon + 1);
    if (PLACEHOLDER_KEY.test(key)) problems.push(placeholder);
    else if (!KEY_NAME.test(name))
      problems.push(
        `${variable}: entry ${i + 1} has an invalid name before ':' (use letters, digits and . _ @ + -, at most 64)`,
      );
    else if (!key) problems.push(`${variable}: entry ${i + 1} (${name}) has no key after ':'`);
    else keys.push({ name, key });
  });
  return { keys, problems };
}

/** The `*_API_KEYS` and `*_API_KEYS_FILE` values of a parsed configuration (see `authEnvSchema`). */
export type AuthEnv = Partial<
  Record<`${'' | 'ADMIN_' | 'SERVICE_'}API_KEYS`, string | readonly string[] | undefined> &
    Record<`${'' | 'ADMIN_' | 'SERVICE_'}API_KEYS_FILE`, string | undefined>
>;

/**
 * Reads the three key classes from the environment: each from its list variable and from its `_FILE` (both
 * count). Throws ConfigError naming every bad variable (an unreadable file, a bad entry, one key in two
 * classes); messages carry paths and positions, never key material.
 */
export function readApiKeys(source: AuthEnv): ApiKeys {
  const problems: string[] = [];
  const out = {} as Record<KeyClass, ApiKeyEntry[]>;
  for (const keyClass of KEY_CLASSES) {
    const variable = KEY_CLASS_VARIABLES[keyClass];
    const listed = source[variable as keyof AuthEnv];
    const inline = parseApiKeyList(typeof listed === 'string' ? listed : (listed ?? []).join(','), variable);
    const keys = [...inline.keys];
    problems.push(...inline.problems);
    const file = source[`${variable}_FILE` as keyof AuthEnv] as string | undefined;
    if (file) {
      try {
        const fromFile = parseApiKeyList(readFileSync(file, 'utf8'), `${variable}_FILE (${file})`);
        keys.push(...fromFile.keys);
        problems.push(...fromFile.problems);
      } catch (err) {
        problems.push(`${variable}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
    }
    out[keyClass] = keys;
  }
  // One key in two classes would make its class a guess: each class gets its own keys.
  const seen = new Map<string, KeyClass>();
  for (const keyClass of KEY_CLASSES) {
    for (const { key } of out[keyClass]) {
      const other = seen.get(key);
      if (other && other !== keyClass)
        problems.push(
          `${KEY_CLASS_VARIABLES[keyClass]}: a key is also listed in ${KEY_CLASS_VARIABLES[other]}; give each class its own keys`,
        );
      seen.set(key, keyClass);
    }
  }
  if (problems.length) throw new ConfigError([...new Set(problems)]);
  return out;
}

/** Every key of every class (for the logger's `secrets`). */
export function allKeys(keys: Partial<ApiKeys>): string[] {
  return KEY_CLASSES.flatMap((c) => (keys[c] ?? []).map((e) => e.key));
}

/** The key a service sends to another service: the first service key (rotate by adding a new key last everywhere,
 * then moving it first, then removing the old one). */
export function serviceKeyToSend(keys: Partial<ApiKeys>): string | undefined {
  return keys.service?.[0]?.key;
}

/** Whether a bind address is a loopback one (127.0.0.0/8, ::1, localhost): only there may a class stay open. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '');
  return h === 'localhost' || isLoopbackAddress(h);
}

/**
 * Whether an IP address is a loopback one: 127.0.0.0/8 (RFC 1122 §3.2.1.3), ::1 (RFC 4291 §2.5.3), or an IPv4
 * loopback address mapped into IPv6 (`::ffff:127.x.y.z`, RFC 4291 §2.5.5.2: how a dual-stack socket reports an IPv4
 * peer). Takes addresses, not names: a socket's `remoteAddress` is always one.
 */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:(?=\d+\.)/, '');
  return a === '::1' || /^127(\.\d{1,3}){3}$/.test(a);
}

/** `localhost`, a `.localhost` name (RFC 6761 §6.3: always loopback) or a loopback address. */
const isLoopbackName = (hostname: string) => isLoopbackHost(hostname) || /\.localhost\.?$/i.test(hostname);

/**
 * Fields an HTTP intermediary adds to what it forwards: `Forwarded` (RFC 7239), `Via` (RFC 9110 §7.6.3: a proxy
 * must send it, though nginx does not), and the de-facto `X-Forwarded-For`, `-Host`, `-Proto`, `-Port`, `-Server`
 * (nginx's and Apache mod_proxy's usual settings, HAProxy `option forwardfor`, Caddy, Traefik) and `X-Real-IP`
 * (nginx's realip convention), and the client-address fields of CDNs and load balancers (`True-Client-IP`,
 * `CF-Connecting-IP`, `Fastly-Client-IP`, `X-Client-IP`, `X-Cluster-Client-IP`). A call carrying any of them came through a proxy: whoever sent it to the proxy may
 * be anywhere on the network, whatever the proxy's own connection and Host say.
 */
const PROXY_FIELDS = [
  'forwarded',
  'via',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-server',
  'x-real-ip',
  'x-client-ip',
  'x-cluster-client-ip',
  'true-client-ip',
  'cf-connecting-ip',
  'fastly-client-ip',
  // ingress-nginx adds it with the client's address when a proxy before it already set X-Forwarded-For.
  'x-original-forwarded-for',
] as const;

/**
 * Whether the connection itself was made by a client on this machine: a loopback TCP peer, HTTP/1.1 or later (nginx's
 * proxy_pass speaks HTTP/1.0 by default, adding no forwarding field; curl, browsers, scripts and the services' own
 * clients speak 1.1), none of `PROXY_FIELDS`.
 */
function connectedLocally(req: Request): boolean {
  const peer = req.socket?.remoteAddress;
  if (peer === undefined || !isLoopbackAddress(peer)) return false;
  if (req.httpVersionMajor < 1 || (req.httpVersionMajor === 1 && req.httpVersionMinor < 1)) return false;
  return PROXY_FIELDS.every((field) => req.headers[field] === undefined);
}

/**
 * Whether a call without a key comes from a client on this machine, rather than from the network through a reverse
 * proxy on this machine or from a browser page of another site. All of these must hold:
 * - the TCP peer (`req.socket.remoteAddress`) is a loopback address: the connection itself was made on this
 *   machine (the Host field alone is whatever the sender wrote: nginx's default `proxy_pass http://127.0.0.1:8000`
 *   sends `Host: 127.0.0.1:8000` for every caller on the network);
 * - the call carries none of `PROXY_FIELDS`: a proxied call is not this machine's, whatever else it says;
 * - it is HTTP/1.1 or later: nginx's default `proxy_pass` forwards as HTTP/1.0 with none of those fields;
 * - the Host field names loopback (a page that rebinds its own DNS name to 127.0.0.1 still sends that name);
 * - an Origin or a Referer, when sent, is a loopback one, and Sec-Fetch-Site (Fetch Metadata), when sent, says
 *   same-origin or none. curl, scripts and the services' clients send none of them.
 * An open class is reachable on loopback only (authForStart), so any web page the user opens, or any proxy in front,
 * could otherwise read or change it. A proxy that forwards without adding any of `PROXY_FIELDS` cannot be told from
 * a local client: an installation without keys must never sit behind one (docs/operations.md).
 */
function fromThisMachine(req: Request): boolean {
  if (!connectedLocally(req)) return false;
  const hostname = (field: string | undefined) => {
    try {
      return field ? new URL(field.includes('://') ? field : `http://${field}`).hostname : undefined;
    } catch {
      return undefined;
    }
  };
  const host = hostname(req.headers.host);
  if (!host || !isLoopbackName(host)) return false;
  const origin = req.headers.origin;
  if (origin !== undefined && !isLoopbackName(hostname(origin) ?? '')) return false;
  // A browser older than Origin on every request and Fetch Metadata (before 2020) still names the page: a Referer of
  // another site is a cross-site call. curl and scripts send none.
  const referer = req.headers.referer;
  if (referer !== undefined && !isLoopbackName(hostname(referer) ?? '')) return false;
  const site = req.headers['sec-fetch-site'];
  return site === undefined || site === 'same-origin' || site === 'none';
}

export type AuthenticatorOptions = {
  /** Classes that let a call without a key through when they have no keys (loopback only: see `authForStart`). */
  open?: readonly KeyClass[];
};

export type Authenticator = {
  /**
   * Middleware for a route that accepts `classes`: `Authorization: Bearer <key>` must hold a key of one of them.
   * No key, or a key of no class: 401 (with `WWW-Authenticate: Bearer`); a valid key of another class: 403.
   * Two or more Authorization fields: 401, whatever they hold (RFC 9110 §11.6.2: one field). A call without a
   * key on an open class is also 401 unless it comes from a client on this machine (`fromThisMachine`): a loopback
   * TCP peer and Host, no proxy's forwarding fields, no web page of another site.
   * On success `res.locals.principal` is the caller's `Principal`. A call without a key passes as
   * `{keyClass, name: 'anonymous'}` when one of `classes` is open.
   */
  require: (classes: readonly KeyClass[]) => RequestHandler;
  /**
   * Whether `req` would pass `require(classes)`, asked without answering it: one Authorization field holding a key
   * of one of `classes`, or none while one of them is open and the call comes from this machine (the same
   * `fromThisMachine` as `require`, so a proxied keyless call sees no more than it may do). Never throws; for
   * open routes that show more to some callers (GET /health's details).
   */
  allows: (req: Request, classes: readonly KeyClass[]) => boolean;
  /** The classes that are open (no keys, loopback). */
  readonly open: readonly KeyClass[];
};

const article = (keyClass: KeyClass) => (keyClass === 'admin' ? 'an admin' : `a ${keyClass}`);
const describeClasses = (classes: readonly KeyClass[]) =>
  classes
    .map(article)
    .join(classes.length > 2 ? ', ' : ' or ')
    .replace(/, ([^,]*)$/, ' or $1');

/**
 * Checks bearer keys against the configured classes. Keys are compared as SHA-256 digests with
 * `timingSafeEqual`, against every configured key (no early exit), so timing tells nothing about a key; keys are
 * never logged or echoed. A class with no keys rejects every call unless it is listed in `options.open`.
 */
export function createAuthenticator(keys: Partial<ApiKeys>, options: AuthenticatorOptions = {}): Authenticator {
  const entries = KEY_CLASSES.flatMap((keyClass) =>
    (keys[keyClass] ?? []).map((e) => ({ keyClass, name: e.name, keyId: keyId(e.key), digest: digest(e.key) })),
  );
  const open = (options.open ?? []).filter((c) => (keys[c] ?? []).length === 0);
  // One request may be asked about twice (the body stage's `allows`, then the route's `require`): its key is
  // hashed and compared once, the answer kept on the request for that key string.
  const identified = new WeakMap<Request, { key: string; principal: Principal | undefined }>();
  const identify = (key: string, req: Request): Principal | undefined => {
    const kept = identified.get(req);
    if (kept?.key === key) return kept.principal;
    const given = digest(key);
    let found: Principal | undefined;
    for (const e of entries) {
      if (timingSafeEqual(e.digest, given) && !found) found = { keyClass: e.keyClass, name: e.name, keyId: e.keyId };
    }
    identified.set(req, { key, principal: found });
    return found;
  };
  return {
    open,
    allows(req, classes) {
      if ((req.headersDistinct['authorization']?.length ?? 0) > 1) return false;
      const header = req.get('authorization');
      if (header === undefined || /^\s*(Bearer\s*)?$/i.test(header))
        return classes.some((c) => open.includes(c)) && fromThisMachine(req);
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const principal = match ? identify(match[1]!, req) : undefined;
      return principal !== undefined && classes.includes(principal.keyClass);
    },
    require(classes) {
      if (classes.length === 0) throw new Error('auth.require needs at least one key class');
      const allowed = new Set(classes);
      const openHere = classes.find((c) => open.includes(c));
      const wanted = describeClasses(classes);
      return (req, res, next) => {
        // Authorization is a singleton field (RFC 9110 §11.6.2). Node keeps the first of two and drops the rest,
        // while a proxy in front may check the other: refuse the ambiguity instead of picking one.
        if ((req.headersDistinct['authorization']?.length ?? 0) > 1)
          throw errors.unauthorized('Send one Authorization header, not several');
        const header = req.get('authorization');
        // `Bearer ` with nothing after it (curl with an unset $WORKEMON_API_KEY) counts as no key.
        if (header === undefined || /^\s*(Bearer\s*)?$/i.test(header)) {
          if (openHere && !fromThisMachine(req))
            throw errors.unauthorized(
              `Missing API key: a call without a key is taken only from a client on this machine (connected over ` +
                `loopback with Host localhost or 127.0.0.1, not through a proxy, not from a web page of another site); ` +
                `send Authorization: Bearer <key> with ${wanted} key`,
            );
          if (openHere) {
            res.locals['principal'] = { keyClass: openHere, name: ANONYMOUS, anonymous: true } satisfies Principal;
            return next(takeDeferredBodyError(req));
          }
          throw errors.unauthorized(`Missing API key: send Authorization: Bearer <key> with ${wanted} key`);
        }
        const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
        if (!match) throw errors.unauthorized(`Authorization must be 'Bearer <key>' with ${wanted} key`);
        const principal = identify(match[1]!, req);
        if (!principal) throw errors.unauthorized('Invalid API key');
        if (!allowed.has(principal.keyClass))
          throw errors.forbidden(`This route needs ${wanted} key; the key given is ${article(principal.keyClass)} key`);
        res.locals['principal'] = principal;
        // Only now is the body judged (json-body.ts deferBodyErrors): 400/413/415 for a caller with a good key.
        next(takeDeferredBodyError(req));
      };
    },
  };
}

/** The principal `auth.require(...)` set for this request (undefined on routes without authentication). */
export function principalOf(res: { locals: Record<string, unknown> }): Principal | undefined {
  return res.locals['principal'] as Principal | undefined;
}

/**
 * Keys shorter than this, in characters, are named as weak at every start: an operator who typed `test-key` or a
 * word meant a placeholder, and such a key falls to guessing. (NIST SP 800-63B asks memorised secrets for at least 8
 * characters with rate limiting; a bearer key sent on every call gets no such shield.) They are not refused: an
 * installation or a test harness keyed that way keeps running, and the warning says what to do.
 */
export const MIN_API_KEY_LENGTH = 16;
/** Keys shorter than this (but at least `MIN_API_KEY_LENGTH`) start with a milder warning: `openssl rand -base64 32` makes 44. */
export const RECOMMENDED_API_KEY_LENGTH = 32;

/**
 * The length rule on every configured key of every class (`MIN_API_KEY_LENGTH`, `RECOMMENDED_API_KEY_LENGTH`):
 * one warning per key shorter than recommended, saying "weak" under `MIN_API_KEY_LENGTH`. Each names the variable,
 * the key's position in its class and its name when it has one — never the key, its fingerprint (a short key's
 * digest is easy to reverse) or its length.
 */
export function checkApiKeyLengths(keys: Partial<ApiKeys>): { warnings: string[] } {
  const warnings: string[] = [];
  const generate = 'generate one with openssl rand -base64 32';
  for (const keyClass of KEY_CLASSES) {
    (keys[keyClass] ?? []).forEach((entry, i) => {
      const which = `${KEY_CLASS_VARIABLES[keyClass]}: key ${i + 1}${entry.name.startsWith('sha256:') ? '' : ` (${entry.name})`}`;
      if (entry.key.length < MIN_API_KEY_LENGTH)
        warnings.push(`${which} is weak: shorter than ${MIN_API_KEY_LENGTH} characters; ${generate}`);
      else if (entry.key.length < RECOMMENDED_API_KEY_LENGTH)
        warnings.push(`${which} is shorter than ${RECOMMENDED_API_KEY_LENGTH} characters; ${generate}`);
    });
  }
  return { warnings };
}

/**
 * The start-time rule: a service listening beyond loopback refuses to start while a class it serves has no key
 * (ConfigError naming the variables to set); on loopback such a class is open and `warning` says so (log it once).
 * Keys shorter than `RECOMMENDED_API_KEY_LENGTH` (weak under `MIN_API_KEY_LENGTH`) are named in `warning`
 * (`checkApiKeyLengths`: the variable and the key's position, never the key); the parts of `warning` are joined
 * by `; `.
 */
export function authForStart(options: { host: string; keys: ApiKeys; served: readonly KeyClass[] }): {
  auth: Authenticator;
  warning?: string;
} {
  const missing = options.served.filter((c) => options.keys[c].length === 0);
  const lengths = checkApiKeyLengths(options.keys);
  const problems: string[] = [];
  if (missing.length && !isLoopbackHost(options.host)) {
    problems.push(
      ...missing.map(
        (c) =>
          `${KEY_CLASS_VARIABLES[c]}: required when HOST (${options.host}) is not a loopback address: set ${KEY_CLASS_VARIABLES[c]} or ${KEY_CLASS_VARIABLES[c]}_FILE (${c} keys), or HOST=127.0.0.1`,
      ),
    );
  }
  if (problems.length) throw new ConfigError(problems);
  const auth = createAuthenticator(options.keys, { open: missing });
  const openWarning = missing.length
    ? `${missing.map((c) => KEY_CLASS_VARIABLES[c]).join(', ')} not set: ${missing.join(', ')} routes are open to anyone on this machine (HOST=${options.host}); set them before listening beyond loopback`
    : undefined;
  const parts = [openWarning, ...lengths.warnings].filter((w): w is string => w !== undefined);
  return { auth, warning: parts.length ? parts.join('; ') : undefined };
}

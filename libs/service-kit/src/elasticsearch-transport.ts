import { ElasticsearchTransport } from 'winston-elasticsearch';
import { backoffMs, sleep } from './resilience.js';
import { ecsStringify } from './ecs-format.js';
import {
  LOG_DATA_STREAM,
  LOG_INDEX_TEMPLATE,
  logIndexTemplate,
  type ElasticsearchLogOptions,
} from './elasticsearch-options.js';

// Loaded only through logger.ts's dynamic import (ELASTICSEARCH_URL set): never import this module statically
// from the kit's index, or every service loads winston-elasticsearch, the Elasticsearch client and apache-arrow.

// What we touch of winston-elasticsearch's BulkWriter (bulk_writer.js, 0.19.0) and of the v8 client: private
// internals, so package.json pins that exact version; upgrading it means re-reading bulk_writer.js.
type EsClient = {
  cluster: { health: (params: Record<string, unknown>) => Promise<unknown> };
  indices: { putIndexTemplate: (params: Record<string, unknown>) => Promise<unknown> };
  close: () => Promise<void>;
};
type BulkWriter = {
  client: EsClient;
  esConnection: boolean;
  running: boolean;
  bulk: unknown[];
  tick: () => void;
  stop: () => void;
  write: (body: unknown[]) => PromiseLike<unknown>;
  checkEsConnection: (retryLimit?: number) => PromiseLike<unknown>;
};

// winston's formatted line (triple-beam's MESSAGE).
const MESSAGE = Symbol.for('message');
const writers = new WeakMap<object, BulkWriter>();
const HEALTH_RETRY_MIN_MS = 1000;
const HEALTH_RETRY_MAX_MS = 30_000;

/**
 * winston-elasticsearch with the behaviour we need while Elasticsearch is down:
 * - one health-check loop at a time, retried forever with backoff on unref'd timers, stopped on end()
 *   (the library starts a new loop of up to `retryLimit` checks after every failed bulk, and gives up for good
 *   after the first loop fails);
 * - no bulk attempts while the cluster is known to be unreachable (the library tries one per log line);
 * - our index template is put before the first bulk (the library's ensureIndexTemplate never creates it with
 *   the v8 client: `existsIndexTemplate` returns a boolean, issue #203);
 * - its 'error' events become 'warning's: a logging transport must never error the logger stream (winston
 *   rethrows unhandled 'error's, and the library re-pipes the logger into itself on every error).
 * The buffer (bufferLimit) keeps the first documents and drops newer ones once full, as the library does.
 * Documents are the same ECS JSON as the stdout line (`useTransformer: false`, ecsStringify's output parsed).
 */
export class WorkemonElasticsearchTransport extends ElasticsearchTransport {
  constructor(options: ElasticsearchLogOptions & { level?: string }) {
    super({
      // internalLogger is read by the library but missing from its typings.
      ...({
        internalLogger: (...args: unknown[]) =>
          options.onWarning?.(
            new Error(`elasticsearch rejected a log document: ${JSON.stringify(args[1] ?? args[0])}`),
          ),
      } as object),
      level: options.level ?? 'info',
      format: ecsStringify(),
      clientOpts: {
        node: options.url,
        ...(options.username ? { auth: { username: options.username, password: options.password ?? '' } } : {}),
        requestTimeout: 10_000,
        // Retries are ours (the health-check backoff below), not the client's.
        maxRetries: 0,
      },
      dataStream: true,
      index: options.dataStream ?? LOG_DATA_STREAM,
      useTransformer: false,
      ensureIndexTemplate: false,
      bufferLimit: options.bufferLimit ?? 5000,
      flushInterval: options.flushIntervalMs ?? 2000,
      // Bulk attempts of one document while the cluster answers health checks; with the backoff below a
      // document the cluster keeps rejecting is dropped after about three minutes.
      retryLimit: 10,
    });
    if (options.onWarning) this.on('warning', options.onWarning);
  }

  // The library's constructor assigns `this.bulkWriter` and starts it at once: harden it on assignment.
  set bulkWriter(writer: BulkWriter) {
    writers.set(this, writer);
    hardenBulkWriter(this, writer);
  }

  get bulkWriter(): BulkWriter {
    return writers.get(this)!;
  }

  /** Documents waiting to be sent (bounded by bufferLimit). */
  get buffered(): number {
    return this.bulkWriter.bulk.length;
  }

  override log(info: Record<string | symbol, unknown>, callback: () => void): void {
    const line = info[MESSAGE];
    const doc = typeof line === 'string' ? (JSON.parse(line) as Record<string, unknown>) : { ...info };
    void super.log!(doc, callback);
  }

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    if (event === 'error') return super.emit('warning', ...args);
    return super.emit(event, ...args);
  }

  override end(...args: unknown[]): this {
    stopping.add(this);
    this.once('finish', () => {
      this.bulkWriter.stop();
      void this.bulkWriter.client.close().catch(() => undefined);
    });
    return super.end(...(args as [])) as this;
  }
}

const stopping = new WeakSet<object>();

function hardenBulkWriter(transport: WorkemonElasticsearchTransport, writer: BulkWriter): void {
  const originalTick = writer.tick.bind(writer);
  writer.tick = () => {
    // Stays `running`; the health check restarts ticking once the cluster answers.
    if (!writer.esConnection) return;
    originalTick();
  };

  // Bulks that failed in a row: the next health check waits 1 s, 2 s, 4 s … so a cluster that is up but
  // refuses documents (503, rejections) is not hammered and does not burn through retryLimit in a second.
  let failedBulks = 0;
  let started = false;
  const originalWrite = writer.write.bind(writer);
  writer.write = async (body) => {
    await originalWrite(body);
    failedBulks = writer.esConnection ? 0 : failedBulks + 1;
  };

  const wait = (ms: number) => sleep(ms, { unref: true });
  // Without jitter: one process, one cluster; the steps are for not hammering it, not for spreading a herd.
  const step = (n: number) => backoffMs(n, { baseMs: HEALTH_RETRY_MIN_MS, maxMs: HEALTH_RETRY_MAX_MS, jitter: 0 });
  let checking: Promise<void> | undefined;
  writer.checkEsConnection = () => {
    writer.esConnection = false;
    checking ??= (async () => {
      let failedChecks = 0;
      if (started) await wait(step(failedBulks));
      started = true;
      while (!stopping.has(transport)) {
        try {
          await writer.client.cluster.health({ timeout: '5s', wait_for_status: 'yellow' });
          try {
            await writer.client.indices.putIndexTemplate({ name: LOG_INDEX_TEMPLATE, ...logIndexTemplate });
          } catch (err) {
            // Without the right privilege the built-in `logs-*-*` template still makes a data stream.
            transport.emit('warning', err);
          }
          writer.esConnection = true;
          writer.running = true;
          writer.tick();
          return;
        } catch (err) {
          transport.emit('warning', err);
          await wait(step(failedChecks));
          failedChecks += 1;
        }
      }
    })().finally(() => {
      checking = undefined;
    });
    return checking;
  };
}

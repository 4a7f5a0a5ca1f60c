#!/usr/bin/env node
// One-shot import of Workemon's Kibana saved objects (data view `logs-workemon-*`, saved searches, the logs
// dashboard) through the saved objects API, retried until Kibana is up. Run by the compose service
// `kibana-setup`; safe to run again (overwrite=true). Node 20: global fetch, FormData and Blob.
//   KIBANA_URL (http://kibana:5601), KIBANA_USERNAME / KIBANA_PASSWORD (optional),
//   SAVED_OBJECTS_FILE (saved-objects.ndjson beside this script), KIBANA_SETUP_TIMEOUT_S (600)
import { readFile } from 'node:fs/promises';

const kibanaUrl = (process.env.KIBANA_URL || 'http://kibana:5601').replace(/\/+$/, '');
const file = process.env.SAVED_OBJECTS_FILE || new URL('./saved-objects.ndjson', import.meta.url).pathname;
const deadline = Date.now() + Number(process.env.KIBANA_SETUP_TIMEOUT_S || 600) * 1000;
const headers = { 'kbn-xsrf': 'workemon-setup' };
if (process.env.KIBANA_USERNAME) {
  const token = Buffer.from(`${process.env.KIBANA_USERNAME}:${process.env.KIBANA_PASSWORD ?? ''}`).toString('base64');
  headers.authorization = `Basic ${token}`;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const log = (message) => process.stdout.write(`[kibana-setup] ${message}\n`);

/** Kibana answers /api/status with 503 while it starts and 200 with overall level `available` once ready. */
async function waitForKibana() {
  let last = '';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`${kibanaUrl}/api/status`, { headers, signal: AbortSignal.timeout(10_000) });
      const body = await res.json().catch(() => ({}));
      const level = body?.status?.overall?.level ?? body?.status?.overall?.state;
      if (res.ok && (level === 'available' || level === 'green')) return;
      last = `HTTP ${res.status}, status ${level ?? 'unknown'}`;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    log(`waiting for Kibana at ${kibanaUrl} (${last})`);
    await sleep(5000);
  }
  throw new Error(`Kibana did not become available in time (${last})`);
}

async function importObjects() {
  const ndjson = await readFile(file, 'utf8');
  const form = new FormData();
  form.append('file', new Blob([ndjson], { type: 'application/ndjson' }), 'workemon.ndjson');
  const res = await fetch(`${kibanaUrl}/api/saved_objects/_import?overwrite=true`, {
    method: 'POST',
    headers,
    body: form,
    signal: AbortSignal.timeout(60_000),
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || body.success !== true) {
    throw new Error(`import failed: HTTP ${res.status} ${JSON.stringify(body.errors ?? body)}`);
  }
  log(`imported ${body.successCount} saved objects`);
}

/** Makes the Workemon data view Discover's default; cosmetic, so a failure only warns. */
async function setDefaultDataView() {
  const res = await fetch(`${kibanaUrl}/api/data_views/default`, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({ data_view_id: 'logs-workemon', force: true }),
    signal: AbortSignal.timeout(30_000),
  });
  if (!res.ok) log(`could not set the default data view: HTTP ${res.status}`);
}

try {
  await waitForKibana();
  // Kibana can report available a moment before its saved objects service accepts imports: retry a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      await importObjects();
      break;
    } catch (err) {
      if (attempt >= 5 || Date.now() > deadline) throw err;
      log(`${err.message}; retrying`);
      await sleep(5000);
    }
  }
  await setDefaultDataView();
  log('done');
} catch (err) {
  log(err instanceof Error ? err.message : String(err));
  process.exit(1);
}

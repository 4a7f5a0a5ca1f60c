// The services' own shutdown deadlines, read from the code that sets them, for the tests that check a deployment
// (docker-compose.yml, the Kubernetes manifests) gives each more time between SIGTERM and SIGKILL.
import { readFile } from 'node:fs/promises';
import { loadConfig as loadCommunicatorConfig } from '@workemon/communicator';
import { repoPath } from './observability-files.js';

/** runService's default shutdown deadline in ms, read from its source (libs/service-kit/src/server.ts). */
export async function defaultShutdownDeadlineMs(): Promise<number> {
  const source = await readFile(repoPath('libs/service-kit/src/server.ts'), 'utf8');
  const match = /shutdownTimeoutMs \?\? ([\d_]+)/.exec(source);
  if (!match) throw new Error('no default shutdown deadline in server.ts');
  return Number(match[1]!.replace(/_/g, ''));
}

/**
 * The communicator's shutdown deadline in ms as its main.ts sets it (SHUTDOWN_TIMEOUT + 15 s), for the
 * SHUTDOWN_TIMEOUT in `environment` (its config's default when unset).
 */
export async function communicatorDeadlineMs(environment: Record<string, string> = {}): Promise<number> {
  const main = await readFile(repoPath('services/communicator/src/main.ts'), 'utf8');
  const match = /shutdownTimeoutMs: config\.shutdownTimeout \+ ([\d_]+)/.exec(main);
  if (!match) throw new Error('communicator main.ts no longer sets its deadline as SHUTDOWN_TIMEOUT + n');
  const config = loadCommunicatorConfig({ SHUTDOWN_TIMEOUT: environment['SHUTDOWN_TIMEOUT'] });
  return config.shutdownTimeout + Number(match[1]!.replace(/_/g, ''));
}

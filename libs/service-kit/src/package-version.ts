import { readFileSync } from 'node:fs';

/** The `version` of a package.json (services report it in /health and logs); pass its URL. */
export function packageVersion(packageJson: URL): string {
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}

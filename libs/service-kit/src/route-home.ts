import { SERVICE_NAMES, loadOpenApiDocument } from '@workemon/contracts';

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

type RouteHome = { service: string; pattern: RegExp; methods: string[]; url: string | undefined };

let homes: RouteHome[] | undefined;

/** Every path of the four contracts, as a pattern (`{name}` matches one segment) with its methods and default URL. */
function loadHomes(): RouteHome[] {
  const found: RouteHome[] = [];
  for (const service of SERVICE_NAMES) {
    const doc = loadOpenApiDocument(service);
    const url = (doc['servers'] as { url?: string }[] | undefined)?.[0]?.url;
    for (const [template, item] of Object.entries(doc.paths)) {
      const source = template
        .split(/\{[^}]+\}/)
        .map((part) => part.replace(/[.*+?^$()|[\]\\]/g, '\\$&'))
        .join('[^/]+');
      const methods = Object.keys(item)
        .filter((m) => HTTP_METHODS.includes(m))
        .map((m) => m.toUpperCase());
      found.push({ service, pattern: new RegExp(`^${source}$`), methods, url });
    }
  }
  return found;
}

/**
 * What to add to "No route for METHOD /path" on `service` so a caller on the wrong port or with the wrong method
 * knows what to do: the service whose contract (libs/contracts) has the path, with its default URL and its
 * `<SERVICE>_PORT` key (README, "Quick start"), or the methods this service takes on the path. `''` when no
 * contract has the path (or the contracts cannot be read). The contracts are read once, on the first 404.
 */
export function routeHomeHint(service: string, method: string, path: string): string {
  try {
    homes ??= loadHomes();
  } catch {
    return '';
  }
  const matches = homes.filter((h) => h.pattern.test(path));
  const own = matches.find((h) => h.service === service);
  if (own) return `; ${path} takes ${own.methods.join(', ')}`;
  const other = matches.find((h) => h.methods.includes(method)) ?? matches[0];
  if (!other) return '';
  const portKey = `${other.service.toUpperCase().replace('-', '_')}_PORT`;
  const where = other.url ? ` (${other.url} by default; its port is set by ${portKey})` : ` (its port: ${portKey})`;
  return `: ${path} is a route of the ${other.service}${where}`;
}

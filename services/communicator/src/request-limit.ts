import { loadOpenApiDocument } from '@workemon/contracts';

type Schema = { properties?: Record<string, { maxLength?: number }> };

/**
 * The longest `request` the secretary accepts, read from its contract (`AnalyzeRequest.request.maxLength` in
 * libs/contracts/openapi/secretary.yaml): the one source of that limit. Characters (UTF-16 code units, as the
 * secretary's JSON Schema validation counts them).
 */
export function secretaryRequestMaxLength(): number {
  const schemas = loadOpenApiDocument('secretary').components?.['schemas'] as Record<string, Schema> | undefined;
  const max = schemas?.['AnalyzeRequest']?.properties?.['request']?.maxLength;
  if (typeof max !== 'number' || max < 100)
    throw new Error('secretary contract: AnalyzeRequest.request has no maxLength');
  return max;
}

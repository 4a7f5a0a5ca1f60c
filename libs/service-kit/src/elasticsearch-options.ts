// What a service needs to know about log shipping without loading the Elasticsearch transport itself
// (winston-elasticsearch and the Elasticsearch client are imported only when ELASTICSEARCH_URL is set: logger.ts).

/** Where logs go besides stdout. Built from ELASTICSEARCH_URL / _USERNAME / _PASSWORD (`elasticsearchFromEnv`). */
export type ElasticsearchLogOptions = {
  url: string;
  username?: string;
  password?: string;
  /** Data stream the documents are created in. Default `logs-workemon-default`. */
  dataStream?: string;
  /** Most log documents held in memory while Elasticsearch is unreachable; newer ones are dropped. Default 5000. */
  bufferLimit?: number;
  /** How often buffered documents are sent. Default 2000 ms. */
  flushIntervalMs?: number;
  /** Called (rate-limited by the caller's choice) when Elasticsearch is unreachable or rejects documents. */
  onWarning?: (problem: Error) => void;
};

export const LOG_DATA_STREAM = 'logs-workemon-default';
/** Our index template; its priority beats Elasticsearch's built-in `logs` template (100). */
export const LOG_INDEX_TEMPLATE = 'logs-workemon';

/**
 * The mapping of `logs-workemon-*`: ECS names, strings as keywords (so Kibana can aggregate on service.name,
 * log.level, trace.id) except the free-text fields.
 */
export const logIndexTemplate = {
  index_patterns: ['logs-workemon-*'],
  data_stream: {},
  priority: 200,
  template: {
    settings: { number_of_replicas: 0 },
    mappings: {
      dynamic_templates: [
        { strings_as_keyword: { match_mapping_type: 'string', mapping: { type: 'keyword', ignore_above: 1024 } } },
      ],
      properties: {
        '@timestamp': { type: 'date' },
        message: { type: 'text' },
        log: { properties: { level: { type: 'keyword' } } },
        service: { properties: { name: { type: 'keyword' }, version: { type: 'keyword' } } },
        trace: { properties: { id: { type: 'keyword' } } },
        error: { properties: { message: { type: 'text' }, stack_trace: { type: 'text' } } },
        event: { properties: { duration: { type: 'long' } } },
        http: { properties: { response: { properties: { status_code: { type: 'long' } } } } },
      },
    },
  },
  _meta: { description: 'Workemon service logs (ECS), written by @workemon/service-kit' },
};

/** The ELASTICSEARCH_* keys of `commonEnvSchema`, as a service's camelCase config carries them (`camelCaseKeys`). */
export type ElasticsearchEnv = {
  elasticsearchUrl?: string | undefined;
  elasticsearchUsername?: string | undefined;
  elasticsearchPassword?: string | undefined;
};

/** `createLogger({ ..., elasticsearch: elasticsearchFromEnv(config) })`: undefined (stdout only) when no URL is set. */
export function elasticsearchFromEnv(config: ElasticsearchEnv): ElasticsearchLogOptions | undefined {
  if (!config.elasticsearchUrl) return undefined;
  return {
    url: config.elasticsearchUrl,
    ...(config.elasticsearchUsername ? { username: config.elasticsearchUsername } : {}),
    ...(config.elasticsearchPassword ? { password: config.elasticsearchPassword } : {}),
  };
}

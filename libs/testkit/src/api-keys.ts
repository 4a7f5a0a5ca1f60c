/**
 * One set of keys for the whole test world, the way `npm start` gives every service the same service key: a
 * client, an admin and a service key, with names. Harnesses configure services with them (`TEST_KEY_ENV` or
 * `TEST_API_KEYS`) and tests send them (`bearer('admin')`).
 */

/** The service kit's key classes and key lists (libs/service-kit/src/auth.ts); the testkit depends on no other package. */
type KeyClass = 'client' | 'admin' | 'service';
type ApiKeys = Record<KeyClass, readonly { name: string; key: string }[]>;

export const TEST_KEYS: Record<KeyClass, string> = {
  client: 'test-client-key-7f3c9a1e5b2d4c6a',
  admin: 'test-admin-key-2b8e4d6f1a3c5e7b',
  service: 'test-service-key-9d1f3b5a7c2e4a6d',
};

/** The names the keys carry (`name:key`): an approval by the admin key records `test-admin`. */
export const TEST_KEY_NAMES: Record<KeyClass, string> = {
  client: 'test-client',
  admin: 'test-admin',
  service: 'test-service',
};

export const TEST_API_KEYS: ApiKeys = {
  client: [{ name: TEST_KEY_NAMES.client, key: TEST_KEYS.client }],
  admin: [{ name: TEST_KEY_NAMES.admin, key: TEST_KEYS.admin }],
  service: [{ name: TEST_KEY_NAMES.service, key: TEST_KEYS.service }],
};

/** The same keys as environment variables (`name:key` entries). */
export const TEST_KEY_ENV = {
  API_KEYS: `${TEST_KEY_NAMES.client}:${TEST_KEYS.client}`,
  ADMIN_API_KEYS: `${TEST_KEY_NAMES.admin}:${TEST_KEYS.admin}`,
  SERVICE_API_KEYS: `${TEST_KEY_NAMES.service}:${TEST_KEYS.service}`,
};

/** `{Authorization: 'Bearer <key>'}` for a class's test key. */
export function bearer(keyClass: KeyClass): { Authorization: string } {
  return { Authorization: `Bearer ${TEST_KEYS[keyClass]}` };
}

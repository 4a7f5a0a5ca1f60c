import { Router } from 'express';
import { errors, validated, type Authenticator, type OpenApi } from '@workemon/service-kit';
import type { RuleRepository, RuleStatsOptions } from './rule-repository.js';
import { validateRule, type RuleInput } from './rules.js';

/**
 * What the rule routes need: the OpenAPI document, the key check (every rule route needs an admin key) and the
 * rule repository (`rules`, made by `createRuleRepository(db)`).
 */
export type RuleRoutesDeps = { openapi: OpenApi; auth: Authenticator; rules: RuleRepository };

type IdParams = { params: { id: number } };

/** `/rules` CRUD, `/rules/{id}/toggle` and `/rules/stats`; mount with `app.use(createRuleRoutes(deps))`. */
export function createRuleRoutes(deps: RuleRoutesDeps): Router {
  const { openapi, rules } = deps;
  const auth = deps.auth.require(['admin']);
  const router = Router();

  router.get('/rules', auth, openapi.validate('listRules'), async (_req, res) => {
    const { query } = validated<{ query: { enabled?: boolean } }>(res);
    res.json({ rules: await rules.listRules({ enabled: query.enabled }) });
  });
  router.post('/rules', auth, openapi.validate('createRule'), async (_req, res) => {
    const rule = validateRule(validated<{ body: RuleInput }>(res).body);
    res.status(201).json(await rules.createRule(rule));
  });
  // Before /rules/:id, which would take "stats" for an id.
  router.get('/rules/stats', auth, openapi.validate('getRuleStats'), async (_req, res) => {
    const { query } = validated<{ query: RuleStatsOptions }>(res);
    if (query.from && query.to && new Date(query.from) >= new Date(query.to))
      throw errors.invalidParameter('to', "must be later than 'from'");
    res.json({ rules: await rules.ruleStats(query) });
  });
  router.get('/rules/:id', auth, openapi.validate('getRule'), async (_req, res) => {
    res.json(await rules.getRule(validated<IdParams>(res).params.id));
  });
  router.put('/rules/:id', auth, openapi.validate('replaceRule'), async (_req, res) => {
    const { params, body } = validated<IdParams & { body: RuleInput }>(res);
    res.json(await rules.replaceRule(params.id, validateRule(body)));
  });
  router.delete('/rules/:id', auth, openapi.validate('deleteRule'), async (_req, res) => {
    await rules.deleteRule(validated<IdParams>(res).params.id);
    res.status(204).end();
  });
  router.post('/rules/:id/toggle', auth, openapi.validate('toggleRule'), async (_req, res) => {
    res.json(await rules.toggleRule(validated<IdParams>(res).params.id));
  });
  return router;
}

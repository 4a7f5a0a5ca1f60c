import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import request from 'supertest';
import { createOpenApi } from '@workemon/service-kit';
import { loadOpenApiDocument } from '@workemon/contracts';
import { type LlmServices } from '@workemon/testkit/llm-stack';
import { startLlmServices } from './llm-services.js';
import { bearer } from '@workemon/testkit/api-keys';

// The stack other services' tests run against: the real guesser and analyst apps over fake LLMs.
describe('startLlmServices', () => {
  let stack: LlmServices;
  const guesserApi = createOpenApi(loadOpenApiDocument('guesser'));
  const analystApi = createOpenApi(loadOpenApiDocument('system-analyst'));
  beforeAll(async () => {
    stack = await startLlmServices();
  });
  afterAll(async () => {
    await stack.close();
  });

  it('answers a short request with a clarifying question and a full one with a context', async () => {
    const short = await request
      .agent(stack.guesserUrl)
      .set(bearer('service'))
      .get('/get-context')
      .query({ username: 'smirnovanton', department: 'ДКС', position: 'аналитик', request: 'Нужна аналитика' });
    expect(short.status).toBe(200);
    expect(guesserApi.responseProblems('getContext', 200, short.body)).toEqual([]);
    expect(short.body.is_enough).toBe(false);

    const full = await request.agent(stack.guesserUrl).set(bearer('service')).get('/get-context').query({
      username: 'smirnovanton',
      department: 'Департамент клиентского сервиса',
      position: 'младший аналитик',
      request: 'Я хочу получать аналитику об авторизационных операциях наших кошельков',
    });
    expect(full.body).toMatchObject({ is_enough: true });
    expect(full.body.response).toContain('Департамент клиентского сервиса');
    expect(stack.guesserLlm.requests).toHaveLength(2);
  });

  it('picks the analyst action by keywords', async () => {
    const res = await request
      .agent(stack.analystUrl)
      .set(bearer('service'))
      .get('/prepare-analititcs')
      .query({ context: 'b2c кошельки', request: 'Создайте задачу в Jira на доработку куба' });
    expect(res.status).toBe(200);
    expect(analystApi.responseProblems('prepareAnalytics', 200, res.body)).toEqual([]);
    expect(res.body).toMatchObject({ is_enough: true, action: 'создать jira-task' });
  });

  it('lets a test replace the answers', async () => {
    stack.analystLlm.reply(() => ({ is_enough: false, response: 'Какой период?', action: 'уточнить' }));
    const res = await request
      .agent(stack.analystUrl)
      .set(bearer('service'))
      .get('/prepare-analytics')
      .query({ context: 'b2c', request: 'Отчёт' });
    expect(res.body).toEqual({
      is_enough: false,
      response: 'Какой период?',
      action: 'уточнить',
      llm: expect.objectContaining({ provider: 'openai', model: stack.analystLlm.model }),
    });
  });
});

// The bare-Node reference of Workemon's request path, for `npm run bench` to measure the real chain against
// (issue: "the chain within 25 % of bare Node"). Same architecture, nothing else: three node:http servers, the
// secretary → guesser → system-analyst hops over keep-alive http.request, each LLM service calling the fake LLM
// (OpenAI chat-completions wire) once, and the secretary's four SQL statements as named (prepared) pg queries.
// No framework, no validation, no logging, no metrics: the floor that the product's extra work is measured on.
//
//   node bench/reference.mjs guesser|analyst   PORT, LLM_URL, LLM_API_KEY, LLM_MODEL
//   node bench/reference.mjs secretary         PORT, DATABASE_URL, GUESSER_URL, ANALYST_URL
// Each prints one JSON line {"url": …} when it listens, and exits on SIGTERM.
import http from 'node:http';
import pg from 'pg';

const role = process.argv[2];
const port = Number(process.env.PORT ?? 0);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** POSTs JSON over the keep-alive agent; resolves with the parsed answer. */
function postJson(url, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const payload = Buffer.from(JSON.stringify(body));
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': payload.length, ...headers },
      },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
          } catch (err) {
            reject(err);
          }
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res, status, body) {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function llmService(system) {
  const url = `${process.env.LLM_URL}/v1/chat/completions`;
  const headers = { authorization: `Bearer ${process.env.LLM_API_KEY}` };
  return async (req, res) => {
    const input = JSON.parse(await readBody(req));
    const answer = await postJson(
      url,
      {
        model: process.env.LLM_MODEL,
        response_format: { type: 'json_object' },
        messages: [
          { role: 'system', content: system },
          { role: 'user', content: `<user_data>${input.request}</user_data>` },
        ],
      },
      headers,
    );
    const parsed = JSON.parse(answer.choices[0].message.content);
    send(res, 200, { is_enough: Boolean(parsed.is_enough), response: String(parsed.response ?? '') });
  };
}

async function secretary() {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 20 });
  await pool.query(`
    create table if not exists ref_employees (username text primary key, department text, position text);
    create table if not exists ref_messages (id bigserial primary key, channel text not null, sender text not null,
      text text not null, state text not null default 'pending', created_at timestamptz not null default now());
    create table if not exists ref_analyses (id bigserial primary key, message_id bigint not null, is_enough boolean,
      action text, response text, created_at timestamptz not null default now());
    insert into ref_employees values ('bench', 'Аналитика', 'аналитик') on conflict do nothing;`);
  const guesser = `${process.env.GUESSER_URL}/get-context`;
  const analyst = `${process.env.ANALYST_URL}/prepare-analytics`;
  return async (req, res) => {
    const query = new URL(req.url, 'http://x').searchParams;
    const channel = query.get('channel');
    const username = query.get('username');
    const request = query.get('request');
    const employee = (
      await pool.query({
        name: 'employee',
        text: 'select department, position from ref_employees where username = $1',
        values: [username],
      })
    ).rows[0];
    const message = (
      await pool.query({
        name: 'claim',
        text: 'insert into ref_messages (channel, sender, text) values ($1, $2, $3) returning id',
        values: [channel, username, request],
      })
    ).rows[0];
    const context = await postJson(guesser, {
      username,
      department: employee?.department ?? '',
      position: employee?.position ?? '',
      request,
    });
    const analysis = context.is_enough ? await postJson(analyst, { context: context.response, request }) : undefined;
    const decision = {
      is_enough: Boolean(context.is_enough && analysis?.is_enough),
      request,
      action: context.is_enough ? 'ответить сообщением' : 'уточнить',
      question: context.is_enough ? '' : context.response,
      response: analysis?.response ?? '',
    };
    await pool.query({
      name: 'record',
      text: 'insert into ref_analyses (message_id, is_enough, action, response) values ($1, $2, $3, $4)',
      values: [message.id, decision.is_enough, decision.action, decision.response],
    });
    await pool.query({
      name: 'answered',
      text: "update ref_messages set state = 'answered' where id = $1",
      values: [message.id],
    });
    send(res, 200, decision);
  };
}

const handlers = {
  guesser: () => llmService('Определи, достаточно ли контекста. Ответь JSON {"is_enough": bool, "response": str}.'),
  analyst: () => llmService('Подготовь аналитику. Ответь JSON {"is_enough": bool, "response": str}.'),
  secretary,
};
if (!handlers[role]) {
  process.stderr.write('usage: node bench/reference.mjs guesser|analyst|secretary\n');
  process.exit(2);
}
const handle = await handlers[role]();
const server = http.createServer((req, res) => {
  if (req.url === '/health') return send(res, 200, { status: 'ok' });
  handle(req, res).catch((err) => send(res, 500, { error: String(err) }));
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${server.address().port}` })}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  process.exit(0);
});

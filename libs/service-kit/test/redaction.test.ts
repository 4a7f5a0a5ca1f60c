import Transport from 'winston-transport';
import { describe, expect, it } from 'vitest';
import { createLogger } from '@workemon/service-kit';

class MemoryTransport extends Transport {
  lines: string[] = [];
  override log(info: unknown, next: () => void): void {
    this.lines.push(JSON.stringify(info));
    next();
  }
}

function loggerWith(secrets: string[]) {
  const sink = new MemoryTransport();
  return { logger: createLogger({ service: 't', stdout: sink, secrets }), sink };
}

describe('redaction of secret values', () => {
  it('redacts a short secret as a whole token, never inside other words', () => {
    const { logger, sink } = loggerWith(['pass', 'k1', '8000']);
    logger.info('password reset for passenger; key k1 used; k1x and xk1 are other words; port 8000, port 18000');
    const line = sink.lines.join('\n');
    expect(line).toContain('password reset for passenger');
    expect(line).toContain('key [REDACTED] used');
    expect(line).toContain('k1x and xk1 are other words');
    expect(line).toContain('port [REDACTED], port 18000');
  });

  it('redacts a short secret at punctuation: quotes, =, :, URL parts, end of sentence', () => {
    const { logger, sink } = loggerWith(['hunter2']);
    logger.info('login "hunter2" failed: password=hunter2&x=1 https://u:hunter2@host/ said hunter2.', {
      detail: { note: 'hunter2' },
    });
    const line = sink.lines.join('\n');
    expect(line).not.toContain('hunter2');
  });

  it('redacts a long secret wherever it occurs, inside other text too', () => {
    const secret = 'abcdefghij0123456789';
    const { logger, sink } = loggerWith([secret]);
    logger.warn(`token=x${secret}y in the middle`, { nested: [`pre${secret}`] });
    expect(sink.lines.join('\n')).not.toContain(secret);
  });

  it('redacts secrets with characters that are special in regular expressions', () => {
    const { logger, sink } = loggerWith(['a+b(c)', 'x.y*']);
    logger.info('keys a+b(c) and x.y* and axy');
    const line = sink.lines.join('\n');
    expect(line).not.toContain('a+b(c)');
    expect(line).not.toContain('x.y*');
    expect(line).toContain('axy');
  });
});

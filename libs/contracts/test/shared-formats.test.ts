import { describe, it, expect } from 'vitest';
import {
  approvalCallbackData,
  parseApprovalCallbackData,
  rateLimitAnswerOf,
  rateLimitVerdictOf,
} from '@workemon/contracts';

describe('approval button callback_data', () => {
  it('reads back what it builds, for both verdicts', () => {
    expect(approvalCallbackData('approve', 42)).toBe('action:approve:42');
    expect(approvalCallbackData('reject', 7)).toBe('action:reject:7');
    expect(parseApprovalCallbackData(approvalCallbackData('approve', 42))).toEqual({ decision: 'approve', id: 42 });
    expect(parseApprovalCallbackData(approvalCallbackData('reject', 7))).toEqual({ decision: 'reject', id: 7 });
  });

  it('stays within the 64 bytes the Bot API allows for the largest id', () => {
    expect(Buffer.byteLength(approvalCallbackData('reject', Number.MAX_SAFE_INTEGER))).toBeLessThanOrEqual(64);
  });

  it('rejects other data', () => {
    for (const data of [undefined, '', 'action:approve:', 'action:approve:x', 'action:maybe:1', 'x action:reject:1'])
      expect(parseApprovalCallbackData(data)).toBeUndefined();
  });
});

describe('rate-limit verdicts', () => {
  it('convert between the wire form and the in-process form', () => {
    expect(rateLimitAnswerOf({ allowed: true })).toEqual({ allowed: true });
    expect(rateLimitAnswerOf({ allowed: false, key: 'email:a@b.example', retryAfterSeconds: 12 })).toEqual({
      allowed: false,
      key: 'email:a@b.example',
      retry_after_seconds: 12,
    });
    expect(rateLimitVerdictOf({ allowed: false, key: 'telegram:5', retry_after_seconds: 3 })).toEqual({
      allowed: false,
      key: 'telegram:5',
      retryAfterSeconds: 3,
    });
    expect(rateLimitVerdictOf({ allowed: true })).toEqual({ allowed: true });
  });
});

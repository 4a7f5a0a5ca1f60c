/**
 * Per-sender sliding window of one hour, in memory: a restart forgets it, which only ever lets a sender through
 * sooner (the limit protects the LLM budget and stops reply storms, it is not a security boundary).
 */
export function createSenderRateLimit(limitPerHour: number, now: () => number = Date.now) {
  const windowMs = 3_600_000;
  const seen = new Map<string, number[]>();
  return {
    /** Counts one message from `sender`; false when the sender is over the limit (the message is not counted). */
    tryTake(sender: string): boolean {
      const t = now();
      const recent = (seen.get(sender) ?? []).filter((at) => t - at < windowMs);
      if (recent.length >= limitPerHour) {
        seen.set(sender, recent);
        return false;
      }
      recent.push(t);
      seen.set(sender, recent);
      if (seen.size > 10_000) {
        for (const [key, times] of seen) if (times.every((at) => t - at >= windowMs)) seen.delete(key);
      }
      return true;
    },
  };
}

export type SenderRateLimit = ReturnType<typeof createSenderRateLimit>;

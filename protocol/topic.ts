/**
 * Topic names are dot-separated tokens of [A-Za-z0-9_-] (NATS-subject safe: no wildcards, no
 * spaces), e.g. `chat.room-1`. The first token is the namespace, which carries policy.
 */
export const MAX_TOPIC_LENGTH = 200;
const TOPIC_RE = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

export function topicError(topic: unknown, maxLength = MAX_TOPIC_LENGTH): string | null {
  if (typeof topic !== 'string') return 'topic must be a string';
  if (topic.length === 0) return 'topic must not be empty';
  if (topic.length > maxLength) return `topic longer than ${maxLength} characters`;
  if (!TOPIC_RE.test(topic)) return 'topic must be dot-separated tokens of letters, digits, "_" and "-"';
  return null;
}

export function isValidTopic(topic: unknown, maxLength = MAX_TOPIC_LENGTH): topic is string {
  return topicError(topic, maxLength) === null;
}

export function namespaceOf(topic: string): string {
  const dot = topic.indexOf('.');
  return dot < 0 ? topic : topic.slice(0, dot);
}

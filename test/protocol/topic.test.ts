/** Topic-name rules (NATS-subject safe) and namespaces. */
import { describe, expect, it } from 'vitest';
import { Topic } from '../../protocol/frames.ts';
import { MAX_TOPIC_LENGTH, isValidTopic, namespaceOf, topicError } from '../../protocol/topic.ts';

describe('topicError / isValidTopic', () => {
  it.each([
    'chat',
    'chat.room-1',
    'game.42.score',
    'A-Z_a-z_0-9',
    '_.-',
    '1',
    'a'.repeat(MAX_TOPIC_LENGTH),
    'a.'.repeat(99) + 'bb', // 200 characters, 100 tokens
  ])('accepts %j', (topic) => {
    expect(topicError(topic)).toBeNull();
    expect(isValidTopic(topic)).toBe(true);
    expect(Topic.safeParse(topic).success).toBe(true);
  });

  it('allows 200 characters and no more', () => {
    expect(MAX_TOPIC_LENGTH).toBe(200);
    expect(topicError('a'.repeat(201))).toBe('topic longer than 200 characters');
    expect(Topic.safeParse('a'.repeat(201)).success).toBe(false);
  });

  it.each<[string, unknown, string]>([
    ['empty', '', 'topic must not be empty'],
    ['wildcard *', '*', 'tokens'],
    ['wildcard * token', 'chat.*', 'tokens'],
    ['wildcard > token', 'chat.>', 'tokens'],
    ['wildcard >', '>', 'tokens'],
    ['a space', 'chat room', 'tokens'],
    ['a trailing space', 'chat ', 'tokens'],
    ['a newline', 'chat\n', 'tokens'],
    ['a leading dot', '.chat', 'tokens'],
    ['a trailing dot', 'chat.', 'tokens'],
    ['a double dot', 'chat..room', 'tokens'],
    ['only a dot', '.', 'tokens'],
    ['a colon', 'chat:room', 'tokens'],
    ['a slash', 'chat/room', 'tokens'],
    ['a non-ASCII letter', 'café', 'tokens'],
    ['a NUL', 'chat\u0000', 'tokens'],
    ['a number', 42, 'topic must be a string'],
    ['null', null, 'topic must be a string'],
    ['undefined', undefined, 'topic must be a string'],
    ['an array', ['chat'], 'topic must be a string'],
  ])('rejects %s', (_name, topic, message) => {
    expect(topicError(topic)).toContain(message);
    expect(isValidTopic(topic)).toBe(false);
    expect(Topic.safeParse(topic).success).toBe(false);
  });

  it('takes a tighter length limit (a namespace policy may set one)', () => {
    expect(topicError('abcdef', 5)).toBe('topic longer than 5 characters');
    expect(isValidTopic('abcde', 5)).toBe(true);
    expect(isValidTopic('abcdef', 5)).toBe(false);
  });
});

describe('namespaceOf', () => {
  it.each([
    ['chat.room-1', 'chat'],
    ['game.42.score', 'game'],
    ['solo', 'solo'],
    ['a-b_c.x', 'a-b_c'],
  ])('%s -> %s', (topic, ns) => {
    expect(namespaceOf(topic)).toBe(ns);
  });
});

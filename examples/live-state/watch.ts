/**
 * A Node client that subscribes to one topic and prints its live state whenever it changes.
 *
 *   npx tsx examples/live-state/watch.ts [ws-url] [topic]
 *
 * Defaults: ws://127.0.0.1:9001/ws (`npm start`) and demo.board, the demo page's board: paint a
 * cell at http://127.0.0.1:9001/ and watch it arrive here. Ctrl-C stops.
 */
import { pathToFileURL } from 'node:url';
import { WebSocket } from 'ws';
import { SymphonicClient } from '../../sdk/index.ts';

export interface Watch {
  readonly client: SymphonicClient;
  stop(): void;
}

/** Connects to `url`, subscribes to `topic` and hands every line worth showing to `print`. */
export function watch(url: string, topic: string, print: (line: string) => void = console.log): Watch {
  // Node 20 has no global WebSocket: give the SDK the `ws` package's (browsers need nothing).
  const client = new SymphonicClient(url, { WebSocket, name: 'examples/live-state' });
  client.on('state', ({ newState, code }) => print(`connection ${newState}${code ? ` (close code ${code})` : ''}`));
  client.subscribe(topic, {
    // After a reconnect the SDK resumes from its position and says whether anything was lost.
    onSubscribed: ({ wasRecovering, recovered, position }) =>
      print(
        `${topic}: subscribed at seq ${position.seq}${wasRecovering ? (recovered ? ', resumed with nothing lost' : ', resumed from a fresh snapshot (messages were lost)') : ''}`,
      ),
    onChange: ({ state, seq }) => print(`${topic} @ ${seq}: ${state === undefined ? '(no state yet)' : JSON.stringify(state)}`),
    onError: (e) => print(`${topic}: error ${e.code} ${e.message}`),
  });
  client.connect();
  return { client, stop: () => client.close() };
}

// Run as a command (the examples test imports `watch` instead).
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [url = 'ws://127.0.0.1:9001/ws', topic = 'demo.board'] = process.argv.slice(2);
  const w = watch(url, topic);
  process.once('SIGINT', () => w.stop());
}

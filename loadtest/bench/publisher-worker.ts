/**
 * Worker thread entry: opens the publisher socket of a target and publishes on command, with its
 * own event loop (see publisher.ts for why). Messages from the parent: {type:'run', rate,
 * durationMs} and {type:'close'}; to the parent: {type:'ready'}, {type:'done', report}, {type:'error', message}.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { connectRawWs } from '../lib/raw-ws.ts';
import { Publisher } from './publisher.ts';
import { TARGETS } from './targets/index.ts';

export interface PublisherWorkerData {
  target: string;
  topic: string;
  port: number;
}
export type PublisherCommand = { type: 'run'; rate: number; durationMs: number } | { type: 'close' };

const port = parentPort!;
const { target, topic, port: serverPort } = workerData as PublisherWorkerData;

try {
  const client = TARGETS[target]!.client(topic);
  const ws = await connectRawWs({ host: '127.0.0.1', port: serverPort, path: client.publisherPath, protocol: client.subprotocol, decode: true });
  const publisher = new Publisher(ws, client);
  await client.preparePublisher(ws);
  port.on('message', (cmd: PublisherCommand) => {
    if (cmd.type === 'close') {
      ws.destroy();
      port.close();
      return;
    }
    publisher.run(cmd.rate, cmd.durationMs).then(
      (sent) => port.postMessage({ type: 'done', report: publisher.report(sent) }),
      (e: Error) => port.postMessage({ type: 'error', message: e.message }),
    );
  });
  port.postMessage({ type: 'ready' });
} catch (e) {
  port.postMessage({ type: 'error', message: (e as Error).message });
  port.close();
}

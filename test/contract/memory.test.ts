/** The in-process engine against the shared Bus contract. */
import { createMemoryBus } from '../../gateway/bus/memory/bus.ts';
import { runBusContract } from './bus.contract.ts';

runBusContract('memory', async (options) => {
  const bus = createMemoryBus({ history: options?.history ?? {}, ...(options?.historyFor ? { historyFor: options.historyFor } : {}) });
  return { bus, cleanup: () => bus.close() };
});

import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describeRequiring } from './index';
import { javaPresent, repoRoot } from './services';
import { startStallProxy, type StallProxy } from './stall-proxy';

// A Kafka broker of a test's own, which it may stop and start again without disturbing the broker
// the other suites share: `infra/kafka/kafka.sh` on free ports with a work directory of its own (the
// jars of the shared broker's work directory are used when they are there).

const run = promisify(execFile);
const script = path.join(repoRoot, 'infra', 'kafka', 'kafka.sh');

export type OwnKafka = {
  brokers: string[];
  /** With `throughProxy`: every connection to the broker goes through it (the broker advertises it). */
  proxy?: StallProxy;
  /** Stops the broker (TERM): its data stays, so `start` brings the same topics back. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and deletes its work directory. */
  remove(): Promise<void>;
};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Java is there to run `infra/kafka/kafka.sh` (Maven too, unless its jars were resolved before). */
export function ownKafkaPossible(): boolean {
  return existsSync(script) && javaPresent();
}

export async function startOwnKafka(options: { throughProxy?: boolean } = {}): Promise<OwnKafka> {
  const workDir = await mkdtemp(path.join(tmpdir(), 'gatehouse-kafka-'));
  const [port, controllerPort] = [await freePort(), await freePort()];
  // Started first: the broker tells its clients (its own tools among them) to connect to it.
  const proxy = options.throughProxy ? await startStallProxy({ host: '127.0.0.1', port }) : undefined;
  const sharedLib = path.join(repoRoot, 'infra', 'kafka', '.work', 'lib');
  const env = {
    ...process.env,
    KAFKA_PORT: String(port),
    KAFKA_CONTROLLER_PORT: String(controllerPort),
    KAFKA_WORK_DIR: workDir,
    ...(proxy && { KAFKA_ADVERTISED_PORT: String(proxy.port) }),
    ...(existsSync(path.join(sharedLib, '.pom.sha256')) && { KAFKA_LIB_DIR: sharedLib }),
  };
  const kafka = async (command: 'start' | 'stop') => {
    try {
      await run('bash', [script, command], { env, timeout: 300_000 });
    } catch (err) {
      const { stdout, stderr } = err as { stdout?: string; stderr?: string };
      throw new Error(`kafka.sh ${command} failed: ${String(err)}\n${stdout ?? ''}${stderr ?? ''}`);
    }
  };
  try {
    await kafka('start');
  } catch (err) {
    // Nothing of a broker that did not start is left behind (its process, its files, the proxy).
    await kafka('stop').catch(() => undefined);
    await proxy?.close();
    await rm(workDir, { recursive: true, force: true });
    throw err;
  }
  return {
    brokers: [`127.0.0.1:${proxy?.port ?? port}`],
    proxy,
    stop: () => kafka('stop'),
    start: () => kafka('start'),
    async remove() {
      proxy?.heal();
      await kafka('stop').catch(() => undefined);
      await proxy?.close();
      await rm(workDir, { recursive: true, force: true });
    },
  };
}

/** `describe` for a suite that runs a broker of its own (see `describeRequiring`). */
export function describeOwnKafka(name: string, fn: () => void): void {
  describeRequiring(
    name,
    'Java, to run a Kafka broker of its own',
    'install Java 17 for infra/kafka/kafka.sh',
    ownKafkaPossible(),
    fn,
  );
}

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';

// Where the tests find PostgreSQL and Kafka, in this order: URLs from the environment, Testcontainers
// where a Docker engine answers, else an embedded PostgreSQL and the local broker from infra/kafka.

export const repoRoot = path.resolve(__dirname, '..', '..');

export function dockerAnswers(): boolean {
  if (process.env.GATEHOUSE_TEST_NO_DOCKER === '1') return false;
  const r = spawnSync('docker', ['info', '--format', '{{.ServerVersion}}'], {
    timeout: 5000,
    encoding: 'utf8',
  });
  return r.status === 0 && r.stdout.trim().length > 0;
}

export function javaPresent(): boolean {
  const r = spawnSync('java', ['-version'], { timeout: 10000 });
  return r.status === 0;
}

export function startLocalKafka(): string | undefined {
  const script = path.join(repoRoot, 'infra', 'kafka', 'kafka.sh');
  if (!existsSync(script) || !javaPresent()) return undefined;
  execFileSync('bash', [script, 'start'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  return `127.0.0.1:${process.env.KAFKA_PORT ?? '9092'}`;
}

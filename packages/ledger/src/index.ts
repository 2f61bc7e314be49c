export * from './ledger.port';
export * from './ledger.errors';
export {
  envelopeSchema,
  MAX_EVENT_BYTES,
  assertValidEnvelope,
  prepareEnvelopes,
  type CommunityExists,
} from './envelope';
export {
  canonicalEvent,
  chainHash,
  verifyChain,
  GENESIS_HASH,
  type ChainedEvent,
  type BrokenLink,
} from './hash-chain';
export {
  PostgresLedger,
  type HeldBackReport,
  type PostgresLedgerOptions,
} from './adapters/postgres/postgres-ledger';
export { isPostgresUnavailable, refusedAsReadOnly } from './adapters/postgres/postgres-errors';
export {
  clientWithAnswerDeadline,
  setAnswerDeadline,
  readOnlySession,
  whenReadOnly,
  PostgresNoAnswerError,
  PostgresReadOnlyError,
  type AnswerDeadlineClient,
} from './adapters/postgres/answer-deadline';
export { ledgerContract, type LedgerHarness } from './ledger.contract';
export { KafkaLedger, type KafkaLedgerOptions } from './adapters/kafka/kafka-ledger';
export { exportJsonl, type ExportFilter, type ExportOptions, type ExportProgress } from './export-jsonl';
export { runLedgerBench, type LedgerBenchOptions, type BenchFigure } from './bench/ledger.bench';
export { AppendBatcher } from './append-batcher';
export { withDeadline, DeadlineExceededError } from './deadline';

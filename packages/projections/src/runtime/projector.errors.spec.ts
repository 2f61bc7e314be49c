import { QueryFailedError } from 'typeorm';
import { CheckpointConflictError, isInfrastructureError, ProjectionAnomalyError } from './projector.errors';

function pgError(code: string, message = 'pg error'): Error {
  return Object.assign(new Error(message), { code });
}

describe('isInfrastructureError', () => {
  it.each([
    ['a lost connection (08006)', pgError('08006')],
    ['an administrator shutdown (57P01)', pgError('57P01')],
    ['a serialization failure (40001)', pgError('40001')],
    ['a deadlock (40P01)', pgError('40P01')],
    ['a missing table, i.e. a migration not run (42P01)', pgError('42P01')],
    ['a refused TCP connection', pgError('ECONNREFUSED')],
    ['a pool that lost its client', new Error('Connection terminated unexpectedly')],
    ['a checkpoint moved by another projector', new CheckpointConflictError('p', null, '1')],
    ['a TypeORM-wrapped connection loss', new QueryFailedError('SELECT 1', [], pgError('57P01'))],
  ])('stops and retries on %s', (_what, err) => {
    expect(isInfrastructureError(err)).toBe(true);
  });

  it.each([
    ['a rejected fact', new ProjectionAnomalyError('unknown tier')],
    ['a not-null violation (23502)', new QueryFailedError('INSERT', [], pgError('23502'))],
    ['invalid JSON for jsonb (22P02)', pgError('22P02')],
    ['a bug in the fold', new TypeError("Cannot read properties of undefined (reading 'tier')")],
    ['a thrown string', 'oops'],
  ])('records an anomaly for %s', (_what, err) => {
    expect(isInfrastructureError(err)).toBe(false);
  });
});

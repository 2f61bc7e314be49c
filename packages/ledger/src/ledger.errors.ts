export type LedgerErrorCode =
  'LEDGER_INVALID_EVENT' | 'LEDGER_PAYLOAD_TOO_LARGE' | 'LEDGER_UNAVAILABLE' | 'LEDGER_UNKNOWN_COMMUNITY';

/** Base of every error the ledger reports on purpose; `code` is stable. */
export class LedgerError extends Error {
  constructor(
    readonly code: LedgerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }

  /** True when the same call may succeed later unchanged. */
  get retryable(): boolean {
    return false;
  }
}

/** An event breaks the envelope schema; `fields` maps each failing field to the problem. */
export class LedgerValidationError extends LedgerError {
  constructor(
    readonly fields: Readonly<Record<string, string>>,
    /** Index of the refused event in the appended batch. */
    readonly index: number,
  ) {
    const summary = Object.entries(fields)
      .map(([f, p]) => `${f} ${p}`)
      .join('; ');
    super('LEDGER_INVALID_EVENT', `Invalid ledger event #${index}: ${summary}`);
  }
}

export class LedgerPayloadTooLargeError extends LedgerError {
  constructor(
    readonly bytes: number,
    readonly limit: number,
    readonly index: number,
  ) {
    super(
      'LEDGER_PAYLOAD_TOO_LARGE',
      `Ledger event #${index} is ${bytes} bytes serialized; the limit is ${limit}`,
    );
  }
}

/** The backing store (database or broker) could not be reached; nothing is known to be written. */
export class LedgerUnavailableError extends LedgerError {
  constructor(message: string, cause?: unknown) {
    super('LEDGER_UNAVAILABLE', message, { cause });
  }

  override get retryable(): boolean {
    return true;
  }
}

export class UnknownCommunityError extends LedgerError {
  constructor(readonly communityId: string) {
    super('LEDGER_UNKNOWN_COMMUNITY', `Unknown community ${communityId}`);
  }
}

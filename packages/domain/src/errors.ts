export type DomainErrorCode = 'BAD_USER_INPUT' | 'NOT_FOUND' | 'CONFLICT' | 'FORBIDDEN';

/** Base of every rule violation; `code` is stable and maps one-to-one to GraphQL `extensions.code`. */
export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly fields?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that breaks a rule; `fields` maps each failing input field to what is wrong with it. */
export class BadUserInputError extends DomainError {
  constructor(message: string, fields: Readonly<Record<string, string>>) {
    super('BAD_USER_INPUT', message, fields);
  }
}

export class NotFoundError extends DomainError {
  constructor(message: string) {
    super('NOT_FOUND', message);
  }
}

export class ConflictError extends DomainError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

export class ForbiddenError extends DomainError {
  constructor(message: string) {
    super('FORBIDDEN', message);
  }
}

/** Collects field problems and throws them together, so a form shows every mistake at once. */
export class FieldChecks {
  private readonly problems: Record<string, string> = {};

  check(ok: boolean, field: string, problem: string): this {
    if (!ok && !(field in this.problems)) this.problems[field] = problem;
    return this;
  }

  throwIfAny(): void {
    const fields = Object.keys(this.problems);
    if (fields.length > 0) {
      const summary = fields.map((f) => `${f} ${this.problems[f]}`).join('; ');
      throw new BadUserInputError(`Invalid input: ${summary}`, { ...this.problems });
    }
  }
}

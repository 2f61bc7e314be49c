/** A tenant id that cannot scope reads: empty, or the system wildcard. */
export class InvalidTenantError extends Error {
  readonly code = 'INVALID_TENANT';
  constructor(readonly communityId: string) {
    super(`"${communityId}" is not a community id that can scope reads`);
    this.name = new.target.name;
  }
}

/** The API role exists but could bypass row-level security, so isolation cannot be guaranteed. */
export class UnsafeAppRoleError extends Error {
  readonly code = 'UNSAFE_APP_ROLE';
  constructor(
    readonly role: string,
    reason: string,
  ) {
    super(`Role ${role} ${reason}: drop it or fix it so that row-level security applies to it`);
    this.name = new.target.name;
  }
}

// Test-only helper (excluded from the build): `given(facts).when(command).then(facts | error)`.
export const FIXED_NOW = Date.UTC(2026, 0, 15, 12, 0, 0);

type ErrorClass = new (...args: never[]) => Error;

export function specFor<Command, Event, State>(
  decide: (command: Command, state: State, now: number) => Event[],
  evolve: (state: State, event: Event) => State,
  initial: () => State,
) {
  return {
    given(events: Event[]) {
      return {
        when(command: Command, now: number = FIXED_NOW) {
          const run = () => decide(command, events.reduce(evolve, initial()), now);
          return {
            then(expected: Event[]): void {
              expect(run()).toEqual(expected);
            },
            thenThrows(type: ErrorClass, expected?: { code?: string; fields?: string[] }): void {
              expect(run).toThrow(type);
              try {
                run();
              } catch (error) {
                const e = error as { code?: string; fields?: Record<string, string> };
                if (expected?.code) expect(e.code).toBe(expected.code);
                if (expected?.fields)
                  expect(Object.keys(e.fields ?? {}).sort()).toEqual([...expected.fields].sort());
              }
            },
          };
        },
      };
    },
  };
}

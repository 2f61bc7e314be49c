import { killLeftRunning } from './children';

// After every test file (its own afterAll hooks first): what it started and left running is killed.
afterAll(() => {
  for (const command of killLeftRunning())
    process.stderr.write(`killed a process the tests left running: ${command}\n`);
});

import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify, stripVTControlCharacters } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// What a user reads when a call or a handler does not type-check: types.test.ts proves that these lines do
// not compile; this test runs tsc on them and checks that each diagnostic points at the offending field.
const root = fileURLToPath(new URL('../../../', import.meta.url));

const source = `import { CommandBus, defineCommand, handle } from '@cqrs-pool/core';
import { z } from 'zod';

const CreateUser = defineCommand('CreateUser', {
  input: z.object({ userId: z.number().int(), username: z.string() }),
  output: z.object({ id: z.number(), username: z.string() }),
});

export async function calls(commands: CommandBus): Promise<void> {
  await commands.execute(CreateUser, { userId: '1', username: 'ann' });
  await commands.execute(CreateUser, { userId: 1 });
  commands.registerHandler(CreateUser, () => ({ id: 'one', username: 'ann' }));
  handle(CreateUser, () => ({ id: 1, username: 2 }));
  await commands.execute(CreateUser, { userId: 1, username: 'ann' });
  await commands.execute('CreateUser', { anything: true });
}
`;
const lines = source.split('\n');
/** 1-based line and column of `needle` on the line that contains `lineMark`. */
function at(lineMark: string, needle: string): string {
  const index = lines.findIndex((l) => l.includes(lineMark));
  return `${index + 1}:${(lines[index] as string).indexOf(needle) + 1}`;
}

let dir: string;
/** tsc's diagnostics on `source`, by `line:column`, each with its related information. */
const diagnostics = new Map<string, string>();

beforeAll(async () => {
  // Inside the repository (node_modules/.cache), so that @cqrs-pool/core and zod resolve as in the sources.
  mkdirSync(join(root, 'node_modules', '.cache'), { recursive: true });
  dir = mkdtempSync(join(root, 'node_modules', '.cache', 'type-errors-'));
  writeFileSync(join(dir, 'wrong.ts'), source);
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({
      extends: join(root, 'tsconfig.json'),
      include: ['wrong.ts', join(root, 'packages/core/src/types')],
    }),
  );
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  // tsc exits 2 on type errors: the output is what matters. --pretty prints each error's related information.
  const output = await promisify(execFile)(process.execPath, [tsc, '-p', dir, '--pretty', 'true']).then(
    () => '',
    (err: { stdout?: string }) => err.stdout ?? '',
  );
  const plain = stripVTControlCharacters(output);
  for (const block of plain.split(/\n(?=\S*wrong\.ts:\d+:\d+ - error)/)) {
    const head = /wrong\.ts:(\d+):(\d+) - error/.exec(block);
    if (head) diagnostics.set(`${head[1]}:${head[2]}`, block);
  }
}, 60_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('type errors name the field that is wrong', () => {
  it('a wrong input type: at the field, whose declaration tsc names', () => {
    const message = diagnostics.get(at("userId: '1'", 'userId'));
    expect(message).toContain("Type 'string' is not assignable to type 'number'");
    expect(message).toContain("The expected type comes from property 'userId'");
    // The overload by name is not the one reported.
    expect(message).not.toContain("parameter of type 'string'");
  });

  it('a missing input field: by name', () => {
    const message = diagnostics.get(at('{ userId: 1 });', '{ userId'));
    expect(message).toContain("Property 'username' is missing");
  });

  it('a wrong result from an inline handler: by field', () => {
    const message = diagnostics.get(at("id: 'one'", '() =>'));
    expect(message).toContain("Types of property 'id' are incompatible");
  });

  it('a wrong result from handle(): at the field', () => {
    const message = diagnostics.get(at('username: 2', 'username'));
    expect(message).toContain("Type 'number' is not assignable to type 'string'");
  });

  it('and nothing else: the correct calls, by definition and by name, compile', () => {
    expect([...diagnostics.keys()].sort()).toEqual(
      [
        at("userId: '1'", 'userId'),
        at('{ userId: 1 });', '{ userId'),
        at("id: 'one'", '() =>'),
        at('username: 2', 'username'),
      ].sort(),
    );
  });
});
